"""`memos-cluster bench gateway`: ingest rate of one LoCoMo conversation through the gateway, and
Search latency against a no-op Ping through the same gateway, in the same run, per transport
(gRPC, and HTTP/JSON and the Ray transport when the bench runs its own cluster).

Sequential calls from one client (latency, not throughput); figures are printed and optionally
written as JSON. Not a test: it asserts nothing about speed.
"""
from __future__ import annotations

import functools
import re
import time
from typing import Any, Callable, Mapping, Optional

from memos_cluster.bench.stats import percentiles_ms, timed
from memos_cluster.client import MemosClient
from memos_cluster.data.locomo import load_locomo, locomo_memories


def _time_transport(client: MemosClient, cube: str, questions: list[str]) -> dict[str, list]:
    """One round: every question through Search, then as many no-op Pings."""
    search = [t for q in questions
              for t in timed(functools.partial(client.search, cube, q, top_k=10), 1)]
    return {"search": search, "ping": timed(client.ping, len(questions))}


def _wait_for_reader(client: MemosClient, start: float,
                     timeout_s: float = 600) -> Optional[float]:
    """Seconds from `start` until no shard has memories waiting for the deferred reader (its
    health detail says "N memories waiting for the reader"); None in inline mode."""
    deadline = time.perf_counter() + timeout_s
    deferred = False
    while time.perf_counter() < deadline:
        waiting = [re.search(r"(\d+) memories waiting", shard.detail)
                   for shard in client.health()]
        deferred = deferred or any(waiting)
        if not any(match and int(match.group(1)) for match in waiting):
            return time.perf_counter() - start if deferred else None
        time.sleep(0.05)
    raise TimeoutError(f"memories still waiting for the reader after {timeout_s} s")


def _figures(samples: dict[str, list[float]]) -> dict[str, Any]:
    figures = {"search_ms": percentiles_ms(samples["search"]),
               "ping_ms": percentiles_ms(samples["ping"])}
    figures["search_over_ping_p50"] = round(
        figures["search_ms"]["p50"] / max(figures["ping_ms"]["p50"], 1e-6), 2)
    return figures


def run_gateway_bench(clients: Mapping[str, MemosClient], data_path: str,
                      conversation: str = "conv-26", batch_size: int = 64, repeats: int = 3,
                      say: Callable[[str], None] = print) -> dict[str, Any]:
    """`clients` maps a transport name ("grpc", "http", "ray") to a client of the same gateway; the
    first ingests, all are timed in interleaved rounds so they see the same machine state."""
    samples = [s for s in load_locomo(data_path) if s["sample_id"] == conversation]
    if not samples:
        raise SystemExit(f"conversation {conversation} is not in {data_path}")
    memories = locomo_memories(samples[0])
    questions = [str(q["question"]) for q in samples[0]["qa"] if q.get("evidence")]
    first = next(iter(clients.values()))
    cube = f"bench-{conversation}-{int(time.time())}"
    first.create_cube(cube, description="bench gateway")
    try:
        start = time.perf_counter()
        first.add_many(cube, memories, batch_size=batch_size, in_flight=2)
        ingest_s = time.perf_counter() - start
        structure_s = _wait_for_reader(first, start)
        for client in clients.values():  # warm-up: models, indexes, handles and channels
            for question in questions[:5]:
                client.search(cube, question, top_k=10)
            client.ping()
        raw = {name: {"search": [], "ping": []} for name in clients}
        for _ in range(repeats):
            for name, client in clients.items():
                for kind, values in _time_transport(client, cube, questions).items():
                    raw[name][kind] += values
    finally:
        first.delete_cube(cube)
    transports = {name: _figures(samples) for name, samples in raw.items()}
    result = {"conversation": conversation, "items": len(memories),
              "ingest_items_per_s": round(len(memories) / ingest_s, 1),
              "ingest_batch_size": batch_size, "ingest_in_flight": 2,
              "reader_deferred": structure_s is not None,
              **next(iter(transports.values())),
              "transports": transports}
    if "http" in transports and "grpc" in transports:
        result["http_over_grpc_search_p50"] = round(
            transports["http"]["search_ms"]["p50"] / transports["grpc"]["search_ms"]["p50"], 2)
    say(f"ingest: {result['items']} items in {ingest_s:.2f} s = "
        f"{result['ingest_items_per_s']} items/s (batches of {batch_size}, 2 in flight)")
    if structure_s is not None:  # reader.mode deferred: when the structure caught up
        result["structure_ready_s"] = round(structure_s, 2)
        result["structure_items_per_s"] = round(len(memories) / structure_s, 1)
        say(f"structure (reader.mode deferred): every memory read {structure_s:.2f} s after the "
            f"ingest began = {result['structure_items_per_s']} items/s")
    for name, figures in transports.items():
        for rpc in ("search", "ping"):
            f = figures[f"{rpc}_ms"]
            say(f"{name:<5} {rpc.capitalize():<7} p50 {f['p50']} ms  p95 {f['p95']} ms  "
                f"p99 {f['p99']} ms  (n={f['n']})")
        say(f"{name:<5} Search/Ping p50 ratio: {figures['search_over_ping_p50']}x "
            "(Ping: the no-op through the same gateway, same run)")
    if "http_over_grpc_search_p50" in result:
        say(f"HTTP Search p50 / gRPC Search p50: {result['http_over_grpc_search_p50']}x")
    return result
