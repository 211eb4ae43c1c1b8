"""`memos-cluster bench qa`: does each memory tier keep answers as good, and make them sooner?
LoCoMo question answering on one model, in one run, every question of the chosen
conversations (categories 1-4), five ways:

- none: the question alone;
- plaintext: the top-k memories retrieved by the plaintext tier's hybrid search, prefilled in
  the prompt (the memories as lines of the system message, then the question);
- activation_segments: the same prompt, its memories served from their per-memory KV caches
  (segments composition with the configured anchor, recompute ratio and rule);
- activation_prefix: the same prompt, its memories served as one cached block (prefix
  composition: exact, so the answer is the plaintext arm's, only sooner);
- auto: what memory_mode auto does with the memories promoted (their own caches built) and the
  question asked for the first time: the retrieved list as an exact prefix, the longest cached
  part of it reused (the first memory's own cache), the rest prefilled.

Answers are scored against LoCoMo's gold answers (token F1 and containment, answers.py), per
category, and compared with the plaintext arm question by question (a paired bootstrap 95%
interval of the F1 difference; the share of identical answers); time to first token is
measured for every generation. In-process, like `bench kv`: the activation engine over the
plaintext tier (milvus-lite), as the KV and shard actors run them. Activation caches are built
before a question is timed (what promotion does ahead of a request). Parametric memory is
measured by `bench parametric`. Not a test: it asserts nothing.
"""
from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from memos_cluster.bench.answers import AnswerTable
from memos_cluster.core.config import MemosConfig, with_overrides
from memos_cluster.core.tier_types import BlockMemory, GenerateStats, SamplingParams, block_memory
from memos_cluster.core.types import CubeSpec, SearchQuery
from memos_cluster.data.locomo import locomo_memories

ARMS = ("none", "plaintext", "activation_segments", "activation_prefix", "auto")
CATEGORIES = ("1", "2", "3", "4")  # 5 (adversarial) has no gold answer to score against
MAX_NEW_TOKENS = 16  # LoCoMo's gold answers are a few words
# KV bytes per store (device, host RAM, disk): a run's caches stay in memory, bounded, the
# least recently used dropped (rebuilt, untimed, when promoted again).
BENCH_BUDGETS = (3 << 30, 1 << 30, 0)


def qa_questions(sample: dict, per_category: int = 0,
                 categories: Sequence[str] = CATEGORIES) -> list[dict]:
    """The first `per_category` questions (0: all) of each scored category (of `categories`)
    that have a gold answer, in file order: the sample a run answers."""
    taken: dict[str, int] = {}
    out = []
    for qa in sample.get("qa", []):
        category = str(qa.get("category"))
        if category in CATEGORIES and category in categories and "answer" in qa and \
                (not per_category or taken.get(category, 0) < per_category):
            taken[category] = taken.get(category, 0) + 1
            out.append({"question": str(qa["question"]), "answer": str(qa["answer"]),
                        "category": category, "conversation": sample["sample_id"]})
    return out


class LocomoRetriever:
    """The plaintext tier of one temporary shard holding the conversations, as Search runs it."""

    def __init__(self, config: MemosConfig, root: Path):
        from memos_cluster.embed import make_embedder
        from memos_cluster.tiers.plaintext.tier import PlaintextTier

        config = with_overrides(config, {"data_dir": str(root / "data")})
        self._tier = PlaintextTier(config, "shard-0",
                                   make_embedder(config.embedder, str(config.model_cache_dir())))
        self._tier.open()

    def load(self, cube_id: str, sample: dict) -> list[BlockMemory]:
        self._tier.create_cube(CubeSpec(cube_id))
        memories = locomo_memories(sample)
        for start in range(0, len(memories), 256):
            self._tier.add(cube_id, memories[start:start + 256])
        return [block_memory(m) for m in self._tier.get(cube_id, [m.id for m in memories]).items]

    def top(self, cube_id: str, question: str, k: int) -> tuple[BlockMemory, ...]:
        hits = self._tier.search(SearchQuery((cube_id,), question, k))
        return tuple(block_memory(h.item) for h in hits)

    def get(self, cube_id: str, ids: Sequence[str]) -> list:
        """The memories' current versions (MemoryItems); deleted ones are absent."""
        return list(self._tier.get(cube_id, list(ids)).items)

    def close(self) -> None:
        self._tier.close()


def _ttft(stats: Sequence[GenerateStats]) -> dict[str, float]:
    ordered = sorted(s.ttft_ms for s in stats)
    return {"mean": round(statistics.fmean(ordered), 1),
            "p50": round(ordered[len(ordered) // 2], 1),
            "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1)}


class _Arms:
    """The engines the arms run on, over one loaded model: segments composition (also the
    full prefills of none and plaintext, and auto's exact prefix) and prefix composition."""

    def __init__(self, model: Any, tokenizer: Any, identity: Any, device: str, root: Path,
                 activation: Any):
        from memos_cluster.tiers.activation.blocks import Budgets
        from memos_cluster.tiers.activation.engine import ActivationEngine, segment_options
        from memos_cluster.tiers.activation.kvstore import KVStore

        budgets = Budgets(*BENCH_BUDGETS)
        limit = model.config.max_position_embeddings
        self.segments = ActivationEngine(model, tokenizer, KVStore(
            identity, device, budgets, root / "kv-segments"), limit,
            **{**segment_options(activation), "compose": "segments"})
        self.prefix = ActivationEngine(model, tokenizer, KVStore(
            identity, device, budgets, root / "kv-prefix"), limit, compose="prefix")
        self._tokenizer = tokenizer
        self.max_new_tokens = MAX_NEW_TOKENS

    def answer(self, arm: str, question: str,
               hits: tuple[BlockMemory, ...]) -> tuple[str, GenerateStats]:
        from memos_cluster.tiers.activation.engine import GenerateRequest

        sampling = SamplingParams(max_new_tokens=self.max_new_tokens)
        if arm.startswith("activation") or arm == "auto":
            engine = self.prefix if arm == "activation_prefix" else self.segments
            engine.build(hits)  # promotion, ahead of the request: not timed
            request = GenerateRequest(hits, question, sampling=sampling,
                                      compose="prefix" if arm == "auto" else "")
        else:  # a full prefill: the question, after the retrieved memories if the arm has them
            engine = self.segments
            request = GenerateRequest(
                (), question, retrieved=hits if arm == "plaintext" else (),
                sampling=sampling, use_cache=False)
        events = list(engine.generate(request))
        stats = events[-1]
        return self._tokenizer.decode(list(stats.generated), skip_special_tokens=True), stats

    def warm_up(self, hits: tuple[BlockMemory, ...]) -> None:
        """One untimed answer on each engine: the first forward passes of a process pay for
        allocation and kernel selection (seconds on CPU), which no arm should be charged."""
        for arm in ("plaintext", "activation_segments", "activation_prefix"):
            self.answer(arm, "warm-up", hits)


def run_qa_bench(config: MemosConfig, model_name: str, device: str, samples: Sequence[dict],
                 per_category: int, top_k: int, say: Callable[[str], None] = print,
                 plot_path: Optional[str] = None,
                 arms_run: Sequence[str] = ARMS,
                 categories: Sequence[str] = CATEGORIES,
                 max_new_tokens: int = MAX_NEW_TOKENS) -> dict[str, Any]:
    """The `arms_run` arms (plaintext always among them: the others are compared with it) on
    every sampled question of `samples` (LoCoMo conversations); the figures `bench qa --out`
    writes (F1 and containment in percent, TTFT in ms)."""
    from memos_cluster.tiers.llm.model import load_causal_lm, resolve_model

    unknown = sorted(set(arms_run) - set(ARMS))
    if unknown:
        raise SystemExit(f"unknown arms {unknown}; the arms are {', '.join(ARMS)}")
    arms_run = [a for a in ARMS if a in arms_run or a == "plaintext"]
    path, identity = resolve_model(model_name, config.model_cache_dir())
    model, tokenizer = load_causal_lm(path, device)
    tables = {arm: AnswerTable() for arm in arms_run}
    stats: dict[str, list[GenerateStats]] = {arm: [] for arm in arms_run}
    answers: dict[str, list[str]] = {arm: [] for arm in arms_run}
    questions = [q for s in samples for q in qa_questions(s, per_category, categories)]
    with tempfile.TemporaryDirectory(prefix="memos-bench-qa-") as scratch:
        root = Path(scratch)
        retriever, arms = LocomoRetriever(config, root), _Arms(
            model, tokenizer, identity, device, root, config.activation)
        arms.max_new_tokens = max_new_tokens
        try:
            for sample in samples:
                retriever.load(sample["sample_id"], sample)
            hits = [retriever.top(q["conversation"], q["question"], top_k) for q in questions]
        finally:
            retriever.close()
        say(f"{len(questions)} questions (of {', '.join(s['sample_id'] for s in samples)}); "
            f"top {top_k} memories; {model_name}; arms {', '.join(arms_run)}")
        arms.warm_up(hits[0])
        _run_arms(arms, arms_run, questions, hits, tables, stats, answers)
    result = _figures(tables, stats, answers, questions, identity, top_k, max_new_tokens)
    result["segments"] = {k: v for k, v in vars(config.activation).items()
                          if k in ("recompute_ratio", "recompute_select", "segment_anchor")}
    say_qa(result, say)
    if plot_path:
        plot_qa(result, plot_path)
        result["plot"] = plot_path
    return result


def _run_arms(arms: _Arms, names: Sequence[str], questions: list[dict], hits: list,
              tables: dict, stats: dict, answers: dict) -> None:
    from tqdm import tqdm

    for question, retrieved in tqdm(list(zip(questions, hits)), desc=", ".join(names),
                                    unit="question"):
        for arm in names:
            text, generated = arms.answer(arm, question["question"], retrieved)
            tables[arm].add(question["category"], text, question["answer"])
            stats[arm].append(generated)
            answers[arm].append(text)


def _against_plaintext(questions: list[dict], answers: dict[str, list[str]],
                       arm: str) -> dict[str, float]:
    """The arm's F1 minus the plaintext arm's, question by question: mean and 95% paired
    bootstrap interval, in F1 points."""
    from memos_cluster.bench.answers import token_f1
    from memos_cluster.bench.stats import bootstrap_interval

    gold = [q["answer"] for q in questions]
    differences = [100 * (token_f1(a, g) - token_f1(p, g))
                   for a, p, g in zip(answers[arm], answers["plaintext"], gold)]
    low, high = bootstrap_interval(differences)
    return {"mean": round(sum(differences) / len(differences), 1), "low": round(low, 1),
            "high": round(high, 1)}


def _agreement(answers: dict[str, list[str]], arm: str) -> float:
    """Percent of questions on which `arm` answered exactly what the plaintext arm did."""
    pairs = list(zip(answers[arm], answers["plaintext"]))
    return round(100 * sum(a == b for a, b in pairs) / len(pairs), 1) if pairs else 0.0


def _dates_named(questions: list[dict], answers: list[str]) -> dict[str, float]:
    """Of the questions whose gold answer is a period the date rules resolve: the percent of
    answers that name a period within it (answers.names_gold_date)."""
    from memos_cluster.bench.answers import names_gold_date

    judged = [names_gold_date(a, q["answer"]) for q, a in zip(questions, answers)]
    judged = [j for j in judged if j is not None]
    return {"n": len(judged),
            "percent": round(100 * sum(judged) / len(judged), 1) if judged else 0.0}


def _figures(tables, stats, answers, questions, identity, top_k,
             max_new_tokens: int = MAX_NEW_TOKENS) -> dict[str, Any]:
    result = {"model": identity.as_metadata(), "questions": len(questions),
              "sample": sorted({q["conversation"] for q in questions}), "top_k": top_k,
              "max_new_tokens": max_new_tokens, "arms": {}}
    for arm in tables:
        overall = tables[arm].scores()
        result["arms"][arm] = {
            "f1": overall["f1"], "contains": overall["contains"], "ttft_ms": _ttft(stats[arm]),
            "prompt_tokens": round(statistics.fmean(s.prompt_tokens for s in stats[arm]), 1),
            "prefill_tokens": round(statistics.fmean(s.prefill_tokens for s in stats[arm]), 1),
            "per_category": {c: tables[arm].scores(c) for c in CATEGORIES}}
        result["arms"][arm]["ttft_ratio"] = round(
            result["arms"][arm]["ttft_ms"]["mean"] / _ttft(stats["plaintext"])["mean"], 3)
        result["arms"][arm]["agreement_with_plaintext"] = _agreement(answers, arm)
        result["arms"][arm]["f1_minus_plaintext"] = _against_plaintext(questions, answers, arm)
        result["arms"][arm]["names_gold_date"] = _dates_named(questions, answers[arm])
    result["answers"] = [{"question": q["question"], "category": q["category"],
                          "gold": q["answer"], **{arm: answers[arm][i] for arm in tables}}
                         for i, q in enumerate(questions)]
    return result


def say_qa(result: dict[str, Any], say: Callable[[str], None]) -> None:
    say(f"{'arm':<22}{'F1':>6}{'F1 - plaintext [95%]':>22}{'same':>7}{'contains':>10}"
        f"{'TTFT mean':>11}{'ratio':>7}{'p50':>8}{'p95':>8}{'prompt':>8}{'prefilled':>10}")
    for arm, r in result["arms"].items():
        t, d = r["ttft_ms"], r["f1_minus_plaintext"]
        say(f"{arm:<22}{r['f1']:>6}{d['mean']:>7} [{d['low']}, {d['high']}]".ljust(50)
            + f"{r['agreement_with_plaintext']:>7}{r['contains']:>10}{t['mean']:>11}"
            f"{r['ttft_ratio']:>7}{t['p50']:>8}{t['p95']:>8}{r['prompt_tokens']:>8}"
            f"{r['prefill_tokens']:>10}")
    say("same: percent of questions answered exactly as the plaintext arm did")
    for arm, r in result["arms"].items():
        named = r["names_gold_date"]
        if named["n"]:
            say(f"{arm}: names the gold date in {named['percent']}% of the {named['n']} "
                "answers whose gold answer is a date")


def plot_qa(result: dict[str, Any], path: str) -> None:
    """Bars: F1 and containment per arm, and mean time to first token."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    arms = list(result["arms"])
    figure, (scores, ttft) = pyplot.subplots(1, 2, figsize=(13, 4.5))
    x = range(len(arms))
    scores.bar([i - 0.2 for i in x], [result["arms"][a]["f1"] for a in arms], 0.4, label="F1")
    scores.bar([i + 0.2 for i in x], [result["arms"][a]["contains"] for a in arms], 0.4,
               label="contains gold")
    scores.set_ylabel("percent")
    ttft.bar(list(x), [result["arms"][a]["ttft_ms"]["mean"] for a in arms], 0.6,
             color="tab:green")
    ttft.set_ylabel("time to first token, mean (ms)")
    for axis in (scores, ttft):
        axis.set_xticks(list(x), arms, rotation=25, ha="right")
    scores.legend()
    figure.suptitle(f"LoCoMo QA, {result['questions']} questions, "
                    f"{result['model']['model_id']}")
    figure.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
