"""`memos-cluster bench tiers`: a Zipf-skewed workload of real LoCoMo questions against a
running cluster, with the scheduler off (plaintext: every prompt prefilled) and on (the upper
tiers serving), in the same run, scored for answers as well as speed.

The conversation's turns are loaded into one cube an arm (the same memories each). Requests
ask the conversation's questions (categories 1-4, with gold answers), each drawn by Zipf rank
(exponent s): a few questions are asked often, as a user's or an agent's are. Arms:

- off: the scheduler paused, Generate with retrieval and no activation memory (a full
  prefill of the retrieved memories every time): the baseline;
- auto (scheduler on): memory_mode auto, the system choosing the tiers;
- segments (scheduler on): explicit activation memory with retrieval, per-memory caches
  composed (approximate; `activation.compose: segments`).

Reported per arm after warm-up: token F1 and containment against the gold answers, agreement
with the off arm (percent of requests answered exactly as it answered the same question), with
a paired bootstrap interval of F1 minus off's; time to first token (mean, p95, ratio to off);
the share of prompt memories served from activation memory; migrations per minute.
Not a test: it asserts nothing.
"""
from __future__ import annotations

import random
import statistics
import time
from collections import Counter
from typing import Any, Callable, Sequence

from memos_cluster.bench.answers import AnswerTable, token_f1
from memos_cluster.bench.stats import bootstrap_interval, percentiles_ms
from memos_cluster.client import MemosClient
from memos_cluster.core.tier_types import GenerateStats, TokenEvent
from memos_cluster.core.types import NewMemory

ARMS = ("auto", "segments")  # besides "off", which always runs first
MAX_NEW_TOKENS = 16  # LoCoMo's gold answers are a few words


def zipf_ranks(num_items: int, exponent: float, count: int, seed: int) -> list[int]:
    weights = [1.0 / (rank + 1) ** exponent for rank in range(num_items)]
    return random.Random(seed).choices(range(num_items), weights=weights, k=count)


def _ask(client: MemosClient, cube: str, arm: str, question: str,
         top_k: int) -> tuple[str, GenerateStats]:
    flags = {"off": dict(use_activation_memory=False, use_retrieved_memories=True),
             "segments": dict(use_activation_memory=True, use_retrieved_memories=True),
             "auto": dict(memory_mode="auto")}[arm]
    text, stats = "", None
    for event in client.generate(cube, question, max_new_tokens=MAX_NEW_TOKENS,
                                 retrieval_top_k=top_k, **flags):
        if isinstance(event, TokenEvent):
            text += event.text
        else:
            stats = event
    return text, stats


def _arm(client: MemosClient, cube: str, arm: str, questions: Sequence[dict],
         ranks: Sequence[int], top_k: int,
         pace_s: float) -> tuple[list[str], list[GenerateStats]]:
    from tqdm import tqdm

    answers, stats = [], []
    for rank in tqdm(ranks, desc=arm, unit="request"):
        start = time.monotonic()
        text, last = _ask(client, cube, arm, questions[rank]["question"], top_k)
        answers.append(text)
        stats.append(last)
        time.sleep(max(0.0, pace_s - (time.monotonic() - start)))
    return answers, stats


def _figures(arm: str, answers: list[str], stats: list[GenerateStats], off: list[str],
             off_stats: list[GenerateStats], golds: list[dict]) -> dict[str, Any]:
    table = AnswerTable()
    for text, gold in zip(answers, golds):
        table.add(gold["category"], text, gold["answer"])
    differences = [100 * (token_f1(a, g["answer"]) - token_f1(b, g["answer"]))
                   for a, b, g in zip(answers, off, golds)]
    low, high = bootstrap_interval(differences)
    served = [m.tier for s in stats for m in s.memories]
    off_mean = statistics.fmean(s.ttft_ms for s in off_stats)
    ttft = percentiles_ms([s.ttft_ms / 1000 for s in stats])
    return {**table.scores(), "f1_minus_off": {"mean": round(statistics.fmean(differences), 1),
                                               "low": round(low, 1), "high": round(high, 1)},
            "agreement_with_off": round(100 * sum(a == b for a, b in zip(answers, off))
                                        / len(off), 1),
            "ttft_ms": ttft, "ttft_ratio": round(ttft["mean"] / off_mean, 3),
            "memories_from_activation": round(served.count("activation") / len(served), 3)
            if served else 0.0,
            "mean_prefill_tokens": round(statistics.fmean(s.prefill_tokens for s in stats), 1)}


def run_tiers_bench(client: MemosClient, memories: Sequence[NewMemory],
                    questions: Sequence[dict], arms: Sequence[str] = ARMS,
                    num_requests: int = 200, exponent: float = 1.1, top_k: int = 4,
                    warmup_fraction: float = 0.25, pace_s: float = 0.05, seed: int = 0,
                    say: Callable[[str], None] = print) -> dict[str, Any]:
    """`questions`: qa_questions() of the conversation whose `memories` these are."""
    unknown = sorted(set(arms) - set(ARMS))
    if unknown:
        raise SystemExit(f"unknown tiers arms {unknown}: the arms are {', '.join(ARMS)}")
    stamp = int(time.time())
    names = ["off", *arms]
    cubes = {arm: f"bench-tiers-{arm}-{stamp}" for arm in names}
    ranks = zipf_ranks(len(questions), exponent, num_requests, seed)
    warmup = int(warmup_fraction * num_requests)
    runs: dict[str, tuple[list[str], list[GenerateStats]]] = {}
    migrations: dict[str, dict[str, int]] = {}
    try:
        for arm in names:
            client.create_cube(cubes[arm], description="bench tiers")
            client.add_many(cubes[arm], list(memories))
        for arm in names:
            client.scheduler("pause" if arm == "off" else "resume")
            say(f"{arm}: {num_requests} Generate requests, Zipf s={exponent} over "
                f"{len(questions)} questions, {len(memories)} memories, top {top_k}")
            started = time.monotonic()
            runs[arm] = _arm(client, cubes[arm], arm, questions, ranks, top_k, pace_s)
            minutes = (time.monotonic() - started) / 60
            counted = Counter(m.action for m in client.tier_status(cubes[arm]).migrations)
            migrations[arm] = {"per_min": round(sum(counted.values()) / minutes, 1)
                               if minutes else 0.0, **counted}
    finally:
        client.scheduler("resume")
        for cube in cubes.values():
            client.delete_cube(cube)
    golds = [questions[r] for r in ranks[warmup:]]
    off_answers, off_stats = (x[warmup:] for x in runs["off"])
    result: dict[str, Any] = {"requests": num_requests, "warmup": warmup, "zipf_s": exponent,
                              "questions": len(questions), "distinct_asked": len(set(ranks)),
                              "memories": len(memories), "retrieval_top_k": top_k,
                              "max_new_tokens": MAX_NEW_TOKENS, "arms": {}}
    for arm in names:
        answers, stats = (x[warmup:] for x in runs[arm])
        result["arms"][arm] = {**_figures(arm, answers, stats, off_answers, off_stats, golds),
                               "migrations": migrations[arm]}
    say_tiers(result, say)
    return result


def say_tiers(result: dict[str, Any], say: Callable[[str], None]) -> None:
    say(f"after {result['warmup']} warm-up requests ({result['distinct_asked']} distinct "
        f"questions asked of {result['questions']}):")
    say(f"{'arm':<10}{'F1':>6}{'F1 - off [95%]':>22}{'same as off':>13}{'TTFT mean':>11}"
        f"{'p95':>9}{'ratio':>7}{'from activation':>17}")
    for arm, r in result["arms"].items():
        d = r["f1_minus_off"]
        say(f"{arm:<10}{r['f1']:>6}" + f"{d['mean']} [{d['low']}, {d['high']}]".rjust(22)
            + f"{r['agreement_with_off']:>12}%{r['ttft_ms']['mean']:>11}{r['ttft_ms']['p95']:>9}"
            f"{r['ttft_ratio']:>7}{100 * r['memories_from_activation']:>16.1f}%")
