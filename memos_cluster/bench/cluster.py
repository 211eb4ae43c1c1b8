"""`memos-cluster bench cluster`: Add and Search throughput with 1, 2 and 4 shards on a
simulated multi-node cluster (the same cubes resharded between rounds, so the move time is
measured too), then two failure drills under write load: a shard actor killed and a node
removed, each with its recovery time and an audit that every acknowledged write is there once.

On one 2-core machine every shard shares the same cores, so more shards do not add speed: the
point is that it works and what the extra hops cost. Not a test: it asserts nothing about speed.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Sequence

from memos_cluster.bench.stats import percentiles_ms
from memos_cluster.bench.write_load import (
    PROBE_ID, WriteLoad, audit, wait_rebalanced, wait_writable)
from memos_cluster.client import MemosClient
from memos_cluster.core.types import NewMemory
from memos_cluster.placement.shardmap import shard_names

RECOVERY_DEADLINE_S = 120.0


def _threads(count: int, work: Callable[[int], None]) -> float:
    """Run work(i) on `count` threads at once; wall seconds."""
    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - started


def _round(address: str, cubes: Sequence[str], texts: Sequence[str], tag: str, clients: int,
           batches: int, batch: int, searches: int,
           written: dict[str, set[str]]) -> dict[str, Any]:
    """Add then Search throughput, `clients` concurrent clients; acknowledged ids go into
    `written` (cube -> ids)."""
    lock = threading.Lock()

    def add(i: int) -> None:
        with MemosClient(address) as client:
            for b in range(batches):
                cube = cubes[(i + b) % len(cubes)]
                ids = client.add(cube, [NewMemory(texts[(b * batch + j) % len(texts)],
                                                  id=f"{tag}-{i}-{b}-{j}")
                                        for j in range(batch)]).ids
                with lock:
                    written[cube].update(ids)

    latencies: list[float] = []

    def search(i: int) -> None:
        with MemosClient(address) as client:
            for s in range(searches):
                query = " ".join(texts[(i * searches + s) % len(texts)].split()[:6])
                started = time.monotonic()
                client.search([cubes[(i + s) % len(cubes)]], query, top_k=10)
                latencies.append(time.monotonic() - started)

    add_s = _threads(clients, add)
    search_s = _threads(clients, search)
    return {"add_items_per_s": round(clients * batches * batch / add_s, 1),
            "search_per_s": round(clients * searches / search_s, 1),
            "search_ms": percentiles_ms(latencies)}


def _drill(sim: Any, client: MemosClient, cubes: Sequence[str], tag: str,
           fail: Callable[[str], None], written: dict[str, set[str]]) -> dict[str, Any]:
    """fail(shard of cubes[0]) under write load; recovery time and the audit of everything
    written so far (`written`, updated with this drill's writes)."""
    shard_id = client.get_cube(cubes[0]).shard_id
    with WriteLoad(sim.address, cubes, writers=2, tag=tag) as load:
        time.sleep(1.5)
        started = time.monotonic()
        fail(shard_id)
        recovery = wait_writable(client, cubes[0], started, RECOVERY_DEADLINE_S)
        time.sleep(1.5)
    for cube in cubes:
        written[cube] |= load.report.acked[cube] | ({PROBE_ID} if cube == cubes[0] else set())
    result = audit(client, written)
    return {"shard": shard_id, "recovery_s": recovery, "refused_writes": load.report.refused,
            "longest_write_stall_s": max((s for _, s in load.report.stalls), default=0.0),
            "acknowledged": result.acknowledged, "missing": len(result.missing),
            "unexpected": result.unexpected}


def run_cluster_bench(sim: Any, texts: Sequence[str], shard_counts: Sequence[int] = (1, 2, 4),
                      num_cubes: int = 16, clients: int = 4, batches: int = 12, batch: int = 16,
                      searches: int = 40, say: Callable[[str], None] = print) -> dict[str, Any]:
    client = MemosClient(sim.address, timeout_s=60)
    cubes = [f"bench-cluster-{i}" for i in range(num_cubes)]
    for cube in cubes:
        client.create_cube(cube)
    written: dict[str, set[str]] = {c: set() for c in cubes}
    rows = []
    for n in shard_counts:
        started = time.monotonic()
        client.reshard(shard_names(n))
        status = wait_rebalanced(client)
        row = {"shards": n, "nodes": len({s.node_id for s in status.shards}),
               "cubes_moved": status.rebalance.moves_done,
               "rebalance_s": round(time.monotonic() - started, 2),
               **_round(sim.address, cubes, texts, f"r{n}", clients, batches, batch, searches,
                        written)}
        rows.append(row)
        say(f"{n} shards on {row['nodes']} nodes: moved {row['cubes_moved']} cubes in "
            f"{row['rebalance_s']} s; Add {row['add_items_per_s']} items/s, Search "
            f"{row['search_per_s']}/s (p50 {row['search_ms']['p50']} ms, p95 "
            f"{row['search_ms']['p95']} ms)")
    kill = _drill(sim, client, cubes, "k", sim.kill_shard, written)
    say(f"shard actor killed: writes back after {kill['recovery_s']} s; "
        f"{kill['missing']} of {kill['acknowledged']} acknowledged writes missing, "
        f"{kill['unexpected']} unexpected")
    sim.add_worker()  # somewhere for the lost node's shards to go
    loss = _drill(sim, client, cubes, "n", sim.remove_node_of, written)
    say(f"node removed: writes back after {loss['recovery_s']} s; "
        f"{loss['missing']} of {loss['acknowledged']} acknowledged writes missing, "
        f"{loss['unexpected']} unexpected")
    return {"rounds": rows, "shard_kill": kill, "node_loss": loss, "clients": clients,
            "cubes": num_cubes}
