"""`memos-cluster bench tiers`: a Zipf-skewed Generate workload against a running cluster, with the
scheduler on and off in the same run (two cubes with the same memories: the "off" arm's cube is
never promoted because the scheduler is paused while that arm runs).

Each request picks a memory by Zipf rank (exponent s) and asks Generate about it, with activation
memory and `retrieval_top_k` retrieved memories. It is served from activation memory when the
memories it retrieves are already in the cube's activation block (their keys and values are
reused instead of prefilled); a request counts as served from activation memory only when every
memory it retrieves is in the block (none prefilled). Reported: the fraction of requests served
so after warm-up (and the fraction of retrieved memories served so), mean
and p95 time to first token per arm, promotion lag (seconds from a memory's `promote_frequency`-th
request to its first request served from activation memory), migrations per minute.
Not a test: it asserts nothing about speed.
"""
from __future__ import annotations

import random
import statistics
import time
from collections import Counter
from typing import Any, Callable, Sequence

from memos_cluster.bench.stats import percentiles_ms
from memos_cluster.client import MemosClient
from memos_cluster.core.tier_types import GenerateStats
from memos_cluster.core.types import NewMemory


def question(text: str, words: int = 8) -> str:
    """A short query about a memory: its first words (retrieval finds the memory by them)."""
    return " ".join(text.split()[:words])


def zipf_ranks(num_items: int, exponent: float, count: int, seed: int) -> list[int]:
    weights = [1.0 / (rank + 1) ** exponent for rank in range(num_items)]
    return random.Random(seed).choices(range(num_items), weights=weights, k=count)


def _ttft(stats: Sequence[GenerateStats]) -> dict[str, float]:
    return {**percentiles_ms([s.ttft_ms / 1000 for s in stats]),
            "mean_prompt_tokens": round(statistics.mean(s.prompt_tokens for s in stats), 1),
            "mean_prefill_tokens": round(statistics.mean(s.prefill_tokens for s in stats), 1)}


def _arm(client: MemosClient, cube: str, texts: Sequence[str], ranks: Sequence[int],
         top_k: int, pace_s: float) -> tuple[list[GenerateStats], list[float], dict[int, float]]:
    """Run the workload; returns stats, request times and first activation-served time a rank."""
    stats, times, served = [], [], {}
    for rank in ranks:
        start = time.monotonic()
        *_, last = client.generate(cube, question(texts[rank]), max_new_tokens=1,
                                   use_retrieved_memories=True, retrieval_top_k=top_k)
        stats.append(last)
        times.append(start)
        if last.retrieved_from_activation >= top_k and rank not in served:
            served[rank] = start
        time.sleep(max(0.0, pace_s - (time.monotonic() - start)))
    return stats, times, served


def group_turns(texts: Sequence[str], turns: int) -> list[str]:
    """Consecutive turns joined into one memory each (a stretch of dialogue, `turns` long)."""
    return ["\n".join(texts[i:i + turns]) for i in range(0, len(texts), turns)]


def run_tiers_bench(client: MemosClient, texts: Sequence[str], num_requests: int = 400,
                    exponent: float = 1.1, top_k: int = 3, warmup_fraction: float = 0.25,
                    promote_after: int = 3, pace_s: float = 0.05, seed: int = 0,
                    say: Callable[[str], None] = print) -> dict[str, Any]:
    stamp = int(time.time())
    cubes = {arm: f"bench-tiers-{arm}-{stamp}" for arm in ("on", "off")}
    memories = [NewMemory(t, id=f"m{i}") for i, t in enumerate(texts)]
    for cube in cubes.values():
        client.create_cube(cube, description="bench tiers")
        client.add(cube, memories)
    ranks = zipf_ranks(len(texts), exponent, num_requests, seed)
    warmup = int(warmup_fraction * num_requests)
    try:
        client.scheduler("pause")
        say(f"scheduler off: {num_requests} Generate requests, Zipf s={exponent} over "
            f"{len(texts)} memories ...")
        off, _, _ = _arm(client, cubes["off"], texts, ranks, top_k, pace_s)
        client.scheduler("resume")
        say("scheduler on ...")
        started = time.monotonic()
        on, times, served = _arm(client, cubes["on"], texts, ranks, top_k, pace_s)
        minutes = (time.monotonic() - started) / 60
        migrations = Counter(m.action for m in client.tier_status(cubes["on"]).migrations)
    finally:
        for cube in cubes.values():
            client.delete_cube(cube)
    # Promotion lag: from a rank's promote_after-th request to its first served request.
    lags, seen = [], {}
    for rank, at in zip(ranks, times):
        seen[rank] = seen.get(rank, 0) + 1
        if seen[rank] == promote_after and rank in served and served[rank] >= at:
            lags.append(served[rank] - at)
    after = on[warmup:]
    result = {"activation_hit_rate": round(sum(1 for s in after
                                               if s.retrieved_from_activation >= top_k)
                                           / len(after), 3),
              "retrieved_from_activation": round(sum(s.retrieved_from_activation for s in after)
                                                 / (top_k * len(after)), 3),
              "ttft_ms": {"on": _ttft(on[warmup:]), "off": _ttft(off[warmup:])},
              "promotion_lag_s": round(statistics.median(lags), 2) if lags else None,
              "migrations_per_min": round(sum(migrations.values()) / minutes, 1)
              if minutes else 0.0,
              "migrations": dict(migrations),
              "requests": num_requests, "warmup": warmup, "zipf_s": exponent,
              "memories": len(texts), "retrieval_top_k": top_k}
    ttft = result["ttft_ms"]
    say(f"served from activation memory after warm-up: {100 * result['activation_hit_rate']:.1f}%"
        f" of requests, {100 * result['retrieved_from_activation']:.1f}% of retrieved memories")
    say(f"TTFT mean/p95: scheduler on {ttft['on']['mean']} / {ttft['on']['p95']} ms, off "
        f"{ttft['off']['mean']} / {ttft['off']['p95']} ms "
        f"(on/off mean {ttft['on']['mean'] / ttft['off']['mean']:.2f})")
    say(f"promotion lag (median) {result['promotion_lag_s']} s; "
        f"{result['migrations_per_min']} migrations/min {result['migrations']}")
    return result
