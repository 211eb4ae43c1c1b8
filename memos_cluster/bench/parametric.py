"""`memos-cluster bench parametric`: does a question adapter answer a cube's frequent questions
as well as retrieval, sooner, and leave every other answer alone?

One conversation's cube (LoCoMo, default conv-26) is asked `--questions` of its questions often
(a seeded sample of categories 1-4): those are the cube's frequent questions, and its question
adapter is distilled on them (tiers/parametric/distill.py, through the real trainer and store).
Four splits are then answered:

- trained: the frequent questions themselves;
- rewrites: each one's held-out rule-made rewrite (never trained on);
- new: other questions of the conversation whose evidence turns are among the trained
  questions' memories (new questions on the same memories);
- other: another conversation's questions asked of this cube (the adapter must not touch them).

Arms: none (no memory), plaintext (retrieval, a full prefill: the adapter's teacher), adapter
(the adapter alone, no memories), auto (the gate, tiers/parametric/gate.py: the adapter alone
when the query is within `parametric.gate_similarity` of a trained question, else plaintext),
exact cache (the plaintext answer of the same question text, else plaintext) and semantic cache
(the plaintext answer of the nearest trained question within the same similarity, else
plaintext). Greedy decoding makes each arm's answer a function of its prompt, so auto and the
caches take the answers the plaintext and adapter arms computed, and add their own lookup
time (a query embedding) to the time to first token. Reported per split and arm: token F1 with
a paired bootstrap interval against plaintext, agreement with plaintext, mean TTFT, the share
served without retrieval. In-process; not a test.
"""
from __future__ import annotations

import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from memos_cluster.bench.answers import token_f1
from memos_cluster.bench.qa import LocomoRetriever, qa_questions
from memos_cluster.bench.stats import bootstrap_interval
from memos_cluster.core.config import MemosConfig
from memos_cluster.core.tier_types import SamplingParams
from memos_cluster.tiers.parametric.distill import Lesson, rewrites
from memos_cluster.tiers.parametric.gate import nearest_question

SPLITS = ("trained", "rewrites", "new", "other")
ARMS = ("none", "plaintext", "adapter", "auto", "exact_cache", "semantic_cache")
MAX_NEW_TOKENS = 16


def choose_splits(sample: dict, other: dict, count: int, seed: int,
                  top: Callable[[str], tuple]) -> dict[str, list[dict]]:
    """The questions of each split (dicts with question, answer, and for the trained ones
    their retrieved memories)."""
    asked = qa_questions(sample)
    random.Random(seed).shuffle(asked)
    trained = asked[:count]
    for q in trained:
        q["memories"] = top(q["question"])
    known = {m.memory_id for q in trained for m in q["memories"]}
    evidence = {qa["question"]: [e.replace(":", "-") for e in qa.get("evidence", [])]
                for qa in sample["qa"]}
    new = [q for q in asked[count:] if evidence.get(q["question"])
           and set(evidence[q["question"]]) <= known][:count]
    return {"trained": trained,
            "rewrites": [{**q, "question": rewrites(q["question"])[-1]} for q in trained],
            "new": new, "other": qa_questions(other)[:count]}


def run_parametric_bench(config: MemosConfig, model_name: str, device: str, sample: dict,
                         other: dict, count: int, top_k: int, spec: Any, seed: int = 0,
                         say: Callable[[str], None] = print) -> dict[str, Any]:
    from memos_cluster.embed import make_embedder
    from memos_cluster.tiers.llm.model import load_causal_lm, resolve_model
    from memos_cluster.tiers.parametric.store import AdapterStore
    from memos_cluster.tiers.parametric.trainer import AdapterTrainer

    path, identity = resolve_model(model_name, config.model_cache_dir())
    model, tokenizer = load_causal_lm(path, device)
    threshold = config.parametric.gate_similarity
    embedder = make_embedder(config.embedder, str(config.model_cache_dir()))
    cube = sample["sample_id"]
    with tempfile.TemporaryDirectory(prefix="memos-bench-parametric-") as scratch:
        root = Path(scratch)
        retriever = LocomoRetriever(config, root)
        try:
            retriever.load(cube, sample)
            splits = choose_splits(sample, other, count, seed,
                                   lambda q: retriever.top(cube, q, top_k))
            for name, questions in splits.items():
                if "memories" not in questions[0]:
                    for q in questions:
                        q["memories"] = retriever.top(cube, q["question"], top_k)
        finally:
            retriever.close()
        say(f"{cube}: {', '.join(f'{len(v)} {k}' for k, v in splits.items())} questions "
            f"(other: {other['sample_id']}'s); gate at cosine {threshold}; {model_name}")
        store = AdapterStore(str(root / "adapters"))
        trainer = AdapterTrainer(lambda: (model, tokenizer, identity), store)
        try:
            lessons = [Lesson(q["question"], q["memories"]) for q in splits["trained"]]
            job = trainer.wait(trainer.start_questions(cube, lessons, spec).job_id, 7200)
            if job.status != "succeeded":
                raise SystemExit(f"training the question adapter {job.status}: {job.error}")
            record = store.get(cube, job.version)
            say(f"adapter {record.name}: {record.metrics}")
            engine = _engine(model, tokenizer, identity, device, root)
            engine.adapters.load(record.name, store.fetch(record, root / "fetched"))
            gate_vectors = embedder.embed(list(record.questions))
            result = {name: _answer_split(engine, embedder, questions, record, gate_vectors,
                                          threshold, splits["trained"])
                      for name, questions in splits.items()}
        finally:
            trainer.shutdown()
    figures = {"model": identity.as_metadata(), "cube": cube, "other": other["sample_id"],
               "gate_similarity": threshold, "top_k": top_k, "adapter": record.metrics,
               "spec": spec.as_dict(), "splits": {k: _summary(v) for k, v in result.items()}}
    say_parametric(figures, say)
    return figures


def _engine(model: Any, tokenizer: Any, identity: Any, device: str, root: Path) -> Any:
    from memos_cluster.bench.qa import BENCH_BUDGETS
    from memos_cluster.tiers.activation.blocks import Budgets
    from memos_cluster.tiers.activation.engine import ActivationEngine
    from memos_cluster.tiers.activation.kvstore import KVStore

    return ActivationEngine(model, tokenizer, KVStore(identity, device, Budgets(
        *BENCH_BUDGETS), root / "kv"), model.config.max_position_embeddings)


def _generate(engine: Any, question: str, memories: tuple, adapters: tuple) -> tuple[str, float]:
    from memos_cluster.tiers.activation.engine import GenerateRequest

    stats = list(engine.generate(GenerateRequest(
        (), question, retrieved=memories, sampling=SamplingParams(max_new_tokens=MAX_NEW_TOKENS),
        use_cache=False, adapters=adapters)))[-1]
    return engine._tokenizer.decode(list(stats.generated), skip_special_tokens=True), \
        stats.ttft_ms


def _answer_split(engine: Any, embedder: Any, questions: Sequence[dict], record: Any,
                  gate_vectors: Any, threshold: float, trained: Sequence[dict]) -> list[dict]:
    from tqdm import tqdm

    rows = []
    for q in tqdm(questions, desc="questions", unit="question"):
        plain, plain_ms = _generate(engine, q["question"], q["memories"], ())
        bare, bare_ms = _generate(engine, q["question"], (), ())
        alone, alone_ms = _generate(engine, q["question"], (), (record.name,))
        start = time.perf_counter()
        decision = nearest_question(embedder.embed([q["question"]])[0], gate_vectors, threshold)
        lookup_ms = 1000 * (time.perf_counter() - start)
        rows.append({"gold": q["answer"], "admitted": decision.admitted,
                     "similarity": round(decision.similarity, 3),
                     "answers": {"none": (bare, bare_ms), "plaintext": (plain, plain_ms),
                                 "adapter": (alone, alone_ms),
                                 "auto": (alone, alone_ms + lookup_ms) if decision.admitted
                                 else (plain, plain_ms + lookup_ms)},
                     "exact_hit": any(t["question"] == q["question"] for t in trained),
                     "semantic_hit": decision.admitted, "lookup_ms": lookup_ms,
                     "nearest": decision.nearest})
    _cached_answers(rows, questions, trained, engine, record)
    return rows


def _cached_answers(rows: list[dict], questions: Sequence[dict], trained: Sequence[dict],
                    engine: Any, record: Any) -> None:
    """The caches' answers: the plaintext answer of the trained question hit (computed once a
    trained question, as a cache would have stored it), else this question's plaintext."""
    cached: dict[str, str] = {}

    def answer_of(text: str) -> str:
        if text not in cached:
            memories = next(t["memories"] for t in trained if t["question"] == text)
            cached[text] = _generate(engine, text, memories, ())[0]
        return cached[text]

    # The gate's rows are each trained question and its trained rewrites (record.questions):
    # the semantic cache answers with the plaintext answer of the question that row came from.
    origin = {}
    for t in trained:
        for variant in [t["question"]] + rewrites(t["question"])[:-1]:
            origin[variant] = t["question"]
    for row, q in zip(rows, questions):
        plain, plain_ms = row["answers"]["plaintext"]
        row["answers"]["exact_cache"] = (answer_of(q["question"]), 0.0) if row["exact_hit"] \
            else (plain, plain_ms)
        if row["semantic_hit"]:
            source = origin[record.questions[row["nearest"]]]
            row["answers"]["semantic_cache"] = (answer_of(source), row["lookup_ms"])
        else:
            row["answers"]["semantic_cache"] = (plain, plain_ms + row["lookup_ms"])


def _summary(rows: Sequence[dict]) -> dict[str, Any]:
    out: dict[str, Any] = {"questions": len(rows),
                           "gate_admitted": round(100 * sum(r["admitted"] for r in rows)
                                                  / len(rows), 1) if rows else 0.0}
    for arm in ARMS:
        f1 = [100 * token_f1(r["answers"][arm][0], r["gold"]) for r in rows]
        diff = [a - 100 * token_f1(r["answers"]["plaintext"][0], r["gold"])
                for a, r in zip(f1, rows)]
        low, high = bootstrap_interval(diff)
        out[arm] = {"f1": round(statistics.fmean(f1), 1) if f1 else 0.0,
                    "f1_minus_plaintext": {"mean": round(statistics.fmean(diff), 1)
                                           if diff else 0.0,
                                           "low": round(low, 1), "high": round(high, 1)},
                    "agreement": round(100 * sum(r["answers"][arm][0] ==
                                                 r["answers"]["plaintext"][0] for r in rows)
                                       / len(rows), 1) if rows else 0.0,
                    "ttft_ms": round(statistics.fmean(r["answers"][arm][1] for r in rows), 1)
                    if rows else 0.0}
    return out


def say_parametric(result: dict[str, Any], say: Callable[[str], None]) -> None:
    for split, table in result["splits"].items():
        say(f"{split} ({table['questions']} questions; the gate admitted "
            f"{table['gate_admitted']}%)")
        for arm in ARMS:
            r, d = table[arm], table[arm]["f1_minus_plaintext"]
            say(f"  {arm:<16}F1 {r['f1']:>5}  - plaintext {d['mean']:>6} [{d['low']}, "
                f"{d['high']}]  same as plaintext {r['agreement']:>5}%  TTFT {r['ttft_ms']} ms")
