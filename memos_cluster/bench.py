"""`memos-cluster bench gateway`: ingest rate of one LoCoMo conversation through the gateway, and
Search latency over gRPC against a no-op Ping through the same gateway, in the same run.

Sequential calls from one client (latency, not throughput); figures are printed and optionally
written as JSON. Not a test: it asserts nothing about speed.
"""
from __future__ import annotations

import functools
import json
import statistics
import time
from typing import Any, Callable, Optional

from memos_cluster.client import MemosClient
from memos_cluster.ingest import batches, load_locomo, locomo_memories


def percentiles_ms(samples_s: list[float]) -> dict[str, float]:
    ordered = sorted(samples_s)

    def pick(q: float) -> float:
        return 1000.0 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50": round(pick(0.50), 2), "p95": round(pick(0.95), 2),
            "p99": round(pick(0.99), 2), "mean": round(1000 * statistics.fmean(ordered), 2),
            "n": len(ordered)}


def timed(call: Callable[[], Any], repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def run_gateway_bench(client: MemosClient, data_path: str, conversation: str = "conv-26",
                      batch_size: int = 64, repeats: int = 3,
                      say: Callable[[str], None] = print) -> dict[str, Any]:
    samples = [s for s in load_locomo(data_path) if s["sample_id"] == conversation]
    if not samples:
        raise SystemExit(f"conversation {conversation} is not in {data_path}")
    sample = samples[0]
    memories = locomo_memories(sample)
    questions = [str(q["question"]) for q in sample["qa"] if q.get("evidence")]
    cube = f"bench-{conversation}-{int(time.time())}"
    client.create_cube(cube, description="bench gateway")
    try:
        start = time.perf_counter()
        for batch in batches(memories, batch_size):
            client.add(cube, batch)
        ingest_s = time.perf_counter() - start
        for question in questions[:5]:  # warm-up: models and indexes loaded, caches filled
            client.search(cube, question, top_k=10)
        client.ping()
        search: list[float] = []
        ping: list[float] = []
        for _ in range(repeats):  # interleaved, so both see the same machine state
            for question in questions:
                search += timed(functools.partial(client.search, cube, question, top_k=10), 1)
            ping += timed(client.ping, len(questions))
    finally:
        client.delete_cube(cube)
    result = {
        "conversation": conversation,
        "items": len(memories),
        "ingest_items_per_s": round(len(memories) / ingest_s, 1),
        "ingest_batch_size": batch_size,
        "search_ms": percentiles_ms(search),
        "ping_ms": percentiles_ms(ping),
    }
    result["search_over_ping_p50"] = round(
        result["search_ms"]["p50"] / max(result["ping_ms"]["p50"], 1e-6), 2)
    say(f"ingest: {result['items']} items in {ingest_s:.2f} s = "
        f"{result['ingest_items_per_s']} items/s (batches of {batch_size})")
    say(f"Search p50 {result['search_ms']['p50']} ms  p95 {result['search_ms']['p95']} ms  "
        f"p99 {result['search_ms']['p99']} ms  (n={result['search_ms']['n']})")
    say(f"Ping   p50 {result['ping_ms']['p50']} ms  p95 {result['ping_ms']['p95']} ms  "
        f"p99 {result['ping_ms']['p99']} ms  (no-op baseline, same gateway, same run)")
    say(f"Search/Ping p50 ratio: {result['search_over_ping_p50']}x")
    return result


def write_json(result: dict[str, Any], out: Optional[str]) -> None:
    if out:
        with open(out, "w") as handle:
            json.dump(result, handle, indent=2)
