"""`memos-cluster bench fidelity`: how closely does a memory tier reproduce a full prefill?

F1 on a few dozen LoCoMo questions moves about 2 points per changed answer, so it cannot tell
settings apart. This bench compares next-token distributions instead, which every question
informs at every answer token. For each (memory set, question) pair drawn from the LoCoMo
conversations (a question's retrieved top-k memories plus its evidence turns), the reference
is a full prefill of the prompt: its greedy answer (up to 16 tokens, with the end of turn when
it stops) and its logits along that answer. Each arm then scores the same answer tokens
through `ActivationEngine.score` (the serving path's composition, teacher-forced), giving:

- kl_first / kl_mean: KL(full || arm) in nats at the first answer token / over the answer;
- top1: percent of pairs whose first token is the full prefill's;
- greedy: percent of the answer's tokens the arm reproduces before its first different greedy
  pick (teacher forcing makes this exact: up to that token the arm's own greedy decoding would
  have produced the same tokens); exact: percent of pairs whose whole answer is reproduced;
- pass_ms: the mean time of the arm's composition and pass, and its ratio to the full prefill's
  (a cost proxy; `bench qa` measures time to first token).

Intervals are 95% bootstrap intervals over pairs. Figures are also given per conversation, so
settings can be chosen on four conversations and reported on the fifth (`--holdout`).

Arms are written `compose[+anchor][@ratio][:rule]`: "prefix" (exact: KL 0 up to rounding),
"segments" (composition alone), "segments@0.15" (15% recomputed, chosen by deviation),
"segments+anchor@0.1:attention" (each memory cached after a neutral memory line, 10% chosen by
the question's attention); rules are those of tiers/activation/select.py. In-process, like
`bench qa`. Not a test: it asserts nothing.
"""
from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from memos_cluster.bench.qa import BENCH_BUDGETS, CATEGORIES, LocomoRetriever
from memos_cluster.bench.stats import bootstrap_interval
from memos_cluster.core.config import DEFAULT_SEGMENT_ANCHOR as NEUTRAL_MEMORY, MemosConfig
from memos_cluster.core.tier_types import BlockMemory, SamplingParams

ANSWER_TOKENS = 16  # the first answer tokens compared (LoCoMo answers are a few words)
# "+anchor" is the configured default line; the others were tried on the tuning conversations
# (docs/activation.md has their figures).
ANCHORS = {"anchor": NEUTRAL_MEMORY,
           "anchor-note": "Note: the conversation continues.",
           "anchor-notes": "Note: the conversation continues.\nNote: more of it follows.",
           "anchor-two": NEUTRAL_MEMORY + "\n(1 January 2023) Alex: Thanks, you too. How "
                                          "have you been?",
           "anchor-bye": "(1 January 2023) Alex: Thanks, talk to you soon."}
DEFAULT_ARMS = "prefix,segments,segments@0.15"
METRICS = ("kl_first", "kl_mean", "top1", "greedy", "exact", "pass_ms")


@dataclass(frozen=True)
class ArmSpec:
    name: str  # as written on the command line
    compose: str  # "prefix" or "segments"
    ratio: float = 0.0  # activation.recompute_ratio
    rule: str = "deviation"  # activation.recompute_select
    anchor: str = ""  # activation.segment_anchor
    instruction: bool = False  # activation.cache_instruction


def parse_arm(text: str) -> ArmSpec:
    """"segments+anchor@0.1:attention" -> ArmSpec; SystemExit naming the arm if malformed."""
    rest, _, rule = text.partition(":")
    rest, _, ratio = rest.partition("@")
    compose, *extras = rest.split("+")
    anchors = [e for e in extras if e in ANCHORS]
    try:
        spec = ArmSpec(text, compose, float(ratio or 0), rule or "deviation",
                       ANCHORS[anchors[0]] if anchors else "", "instruction" in extras)
    except ValueError:
        raise SystemExit(f"arm {text!r}: the ratio after '@' is a number") from None
    if compose not in ("prefix", "segments") or len(anchors) > 1 or \
            set(extras) - set(ANCHORS) - {"instruction"} or \
            (compose == "prefix" and (extras or ratio or rule)) or not 0 <= spec.ratio <= 1:
        raise SystemExit(f"arm {text!r} is not compose[+anchor][+instruction][@ratio][:rule] "
                         f"(compose: prefix or segments; prefix takes nothing more; ratio in "
                         f"[0, 1])")
    return spec


@dataclass(frozen=True)
class Pair:
    conversation: str
    category: str
    question: str
    memories: tuple[BlockMemory, ...]


def fidelity_pairs(samples: Sequence[dict], cubes: dict[str, list[BlockMemory]],
                   top: Callable[[str, str], tuple[BlockMemory, ...]],
                   per_conversation: int) -> list[Pair]:
    """`per_conversation` questions of each conversation (categories 1-4 with evidence, spread
    evenly over the file), each with its retrieved memories (`top(cube, question)`, in rank
    order) and then its evidence turns that retrieval missed."""
    pairs = []
    for sample in samples:
        cube_id = sample["sample_id"]
        by_id = {m.memory_id: m for m in cubes[cube_id]}
        usable = [q for q in sample.get("qa", []) if str(q.get("category")) in CATEGORIES
                  and q.get("evidence")]
        step = max(1, len(usable) // max(1, per_conversation))
        for qa in usable[::step][:per_conversation]:
            retrieved = list(top(cube_id, str(qa["question"])))
            seen = {m.memory_id for m in retrieved}
            evidence = [by_id[i] for i in (e.replace(":", "-") for e in qa["evidence"])
                        if i in by_id and i not in seen]
            pairs.append(Pair(cube_id, str(qa["category"]), str(qa["question"]),
                              tuple(retrieved + list(dict.fromkeys(evidence)))))
    return pairs


def compare(full: Any, arm: Any, answer: Sequence[int]) -> dict[str, float]:
    """The metrics of one arm on one pair: `full` and `arm` are [len(answer), vocab] logits
    along the full prefill's greedy `answer`."""
    import torch

    reference = torch.log_softmax(full.float(), dim=-1)
    candidate = torch.log_softmax(arm.float(), dim=-1)
    kl = (reference.exp() * (reference - candidate)).sum(dim=-1)
    picks = candidate.argmax(dim=-1).tolist()
    same = 0
    while same < len(answer) and picks[same] == answer[same]:
        same += 1
    return {"kl_first": float(kl[0]), "kl_mean": float(kl.mean()),
            "top1": 100.0 * (picks[0] == answer[0]), "greedy": 100.0 * same / len(answer),
            "exact": 100.0 * (same == len(answer))}


class _Engines:
    """One engine an arm over one model; arms that cache memories the same way share a store
    (the caches a ratio or a rule recomputes from are the same)."""

    def __init__(self, model: Any, tokenizer: Any, identity: Any, device: str, root: Path,
                 arms: Sequence[ArmSpec]):
        from memos_cluster.tiers.activation.blocks import Budgets
        from memos_cluster.tiers.activation.engine import ActivationEngine
        from memos_cluster.tiers.activation.kvstore import KVStore

        budgets, limit = Budgets(*BENCH_BUDGETS), \
            model.config.max_position_embeddings
        stores: dict[tuple[str, str, bool], Any] = {}
        self.arms: dict[str, Any] = {}
        for i, arm in enumerate(arms):
            store = stores.setdefault((arm.compose, arm.anchor, arm.instruction), KVStore(
                identity, device, budgets, root / f"kv-{i}"))
            self.arms[arm.name] = ActivationEngine(
                model, tokenizer, store, limit, compose=arm.compose, recompute_ratio=arm.ratio,
                recompute_select=arm.rule, anchor=arm.anchor,
                cache_instruction=arm.instruction)
        self.full = ActivationEngine(model, tokenizer, KVStore(
            identity, device, budgets, root / "kv-full"), limit, compose="segments")

    def answer(self, pair: Pair) -> list[int]:
        """The full prefill's greedy answer tokens, with the end of turn when it stopped."""
        from memos_cluster.tiers.activation.engine import GenerateRequest

        request = GenerateRequest((), pair.question, retrieved=pair.memories,
                                  sampling=SamplingParams(max_new_tokens=ANSWER_TOKENS),
                                  use_cache=False)
        stats = list(self.full.generate(request))[-1]
        end = self.full.format.end_id
        tail = [end] if stats.finish_reason == "eos" and end is not None else []
        return (list(stats.generated) + tail)[:ANSWER_TOKENS] or [end]

    def score(self, name: Optional[str], pair: Pair, answer: list[int]) -> tuple[Any, float]:
        """(logits along `answer`, seconds) for an arm, or the full prefill (name None); the
        arm's memories are promoted (built) first, untimed, as the scheduler does."""
        from memos_cluster.tiers.activation.engine import GenerateRequest

        if name is None:
            engine = self.full
            request = GenerateRequest((), pair.question, retrieved=pair.memories,
                                      use_cache=False)
        else:
            engine = self.arms[name]
            engine.build(pair.memories)
            request = GenerateRequest(pair.memories, pair.question)
        start = time.perf_counter()
        logits = engine.score(request, answer)
        return logits, time.perf_counter() - start


def run_fidelity_bench(config: MemosConfig, model_name: str, device: str,
                       samples: Sequence[dict], per_conversation: int, top_k: int,
                       arms: Sequence[ArmSpec], holdout: Optional[str] = None,
                       say: Callable[[str], None] = print) -> dict[str, Any]:
    from tqdm import tqdm

    from memos_cluster.tiers.llm.model import load_causal_lm, resolve_model

    path, identity = resolve_model(model_name, config.model_cache_dir())
    model, tokenizer = load_causal_lm(path, device)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="memos-bench-fidelity-") as scratch:
        root = Path(scratch)
        retriever = LocomoRetriever(config, root)
        try:
            cubes = {s["sample_id"]: retriever.load(s["sample_id"], s) for s in samples}
            pairs = fidelity_pairs(samples, cubes, lambda c, q: retriever.top(c, q, top_k),
                                   per_conversation)
        finally:
            retriever.close()
        engines = _Engines(model, tokenizer, identity, device, root, arms)
        say(f"{len(pairs)} pairs ({per_conversation} a conversation: {', '.join(cubes)}); "
            f"top {top_k} memories plus missed evidence; {model_name}; arms "
            f"{', '.join(a.name for a in arms)}")
        engines.score(arms[0].name, pairs[0], engines.answer(pairs[0]))  # warm-up, unscored
        for pair in tqdm(pairs, desc="fidelity", unit="pair"):
            answer = engines.answer(pair)
            full, full_s = engines.score(None, pair, answer)
            row = {"conversation": pair.conversation, "category": pair.category,
                   "memories": len(pair.memories), "answer_tokens": len(answer),
                   "full_ms": 1000 * full_s, "arms": {}}
            for arm in arms:
                logits, seconds = engines.score(arm.name, pair, answer)
                row["arms"][arm.name] = {**compare(full, logits, answer),
                                         "pass_ms": 1000 * seconds}
            rows.append(row)
    result = {"model": identity.as_metadata(), "pairs": len(rows), "top_k": top_k,
              "answer_tokens": ANSWER_TOKENS, "arms": [a.__dict__ for a in arms],
              "overall": summarize(rows, arms), "per_conversation": {
                  c: summarize([r for r in rows if r["conversation"] == c], arms)
                  for c in cubes}}
    if holdout:
        result["holdout"] = holdout
        result["tuning"] = summarize([r for r in rows if r["conversation"] != holdout], arms)
        result["held_out"] = result["per_conversation"][holdout]
    say_fidelity(result, say)
    return result


def summarize(rows: Sequence[dict[str, Any]], arms: Sequence[ArmSpec]) -> dict[str, Any]:
    """Per arm, each metric's mean and 95% bootstrap interval over `rows`; pass_ms also as
    a ratio to the full prefill's mean."""
    if not rows:
        return {}
    full_ms = sum(r["full_ms"] for r in rows) / len(rows)
    out: dict[str, Any] = {"pairs": len(rows), "full_ms": round(full_ms, 1)}
    for arm in arms:
        figures = {}
        for metric in METRICS:
            values = [r["arms"][arm.name][metric] for r in rows]
            mean = sum(values) / len(values)
            low, high = bootstrap_interval(values)
            digits = 4 if metric.startswith("kl") else 1
            figures[metric] = {"mean": round(mean, digits), "low": round(low, digits),
                               "high": round(high, digits)}
        figures["pass_ratio"] = round(figures["pass_ms"]["mean"] / full_ms, 3) \
            if full_ms else math.nan
        out[arm.name] = figures
    return out


def say_fidelity(result: dict[str, Any], say: Callable[[str], None]) -> None:
    for title, table in (("all pairs", result["overall"]), ("tuning", result.get("tuning")),
                         ("held out " + str(result.get("holdout")), result.get("held_out"))):
        if not table:
            continue
        say(f"{title} ({table['pairs']} pairs; full prefill pass {table['full_ms']} ms)")
        say(f"  {'arm':<34}{'KL first':>24}{'KL mean':>24}{'top-1 %':>24}{'greedy %':>24}"
            f"{'exact %':>8}{'cost':>7}")
        for arm in (a["name"] for a in result["arms"]):
            f = table[arm]

            def cell(metric: str, width: int = 24) -> str:
                m = f[metric]
                return f"{m['mean']} [{m['low']}, {m['high']}]".rjust(width)
            say(f"  {arm:<34}{cell('kl_first')}{cell('kl_mean')}{cell('top1')}"
                f"{cell('greedy')}{f['exact']['mean']:>8}{f['pass_ratio']:>7}")
