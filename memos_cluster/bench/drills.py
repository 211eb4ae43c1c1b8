"""Failure drills under load (`memos-cluster bench drills`, and tests/integration/
test_under_fire.py): writers and a reader run against the gateway while one part of the system
is broken on purpose; each drill reports the errors clients saw (by status), how long until the
system answered again, and an audit that every acknowledged write is stored exactly once.

The drills: a shard actor killed, the scheduler killed, a gateway (Serve) replica killed, and
activation memory filled past its KV budget while Generate runs. Losing a node is
`bench cluster`'s drill (it needs a simulated multi-node cluster).
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from memos_cluster.bench.write_load import (
    PROBE_ID, WriteLoad, audit, seed_cubes, wait_answering, wait_writable)
from memos_cluster.client import MemosClient
from memos_cluster.core.errors import MemosError

WARM_S = 1.5  # load before the failure (seconds)
AFTER_S = 2.0  # load after recovery, so the audit covers writes on both sides
RECOVERY_DEADLINE_S = 120.0


@dataclass(frozen=True)
class DrillOps:
    """What breaks things (actors/drill_ops.py, over Ray); each returns what it broke."""

    kill_shard: Callable[[str], str]  # shard id -> shard id
    kill_scheduler: Callable[[], str]
    kill_gateway_replica: Callable[[], str]


def _fill_kv(client: MemosClient, cubes: Sequence[str], ids: Mapping[str, set[str]],
             generations: int = 6) -> dict[str, Any]:
    """Activate every cube's memories (past the KV budgets of a drill cluster), then generate
    over them; what Generate did (errors by status: there should be none)."""
    errors: dict[str, int] = {}
    done = 0
    for cube in cubes:
        client.activate(cube, sorted(ids[cube] - {PROBE_ID}), replace=True)
    for i in range(generations):
        try:
            list(client.generate(cubes[i % len(cubes)], "what do the notes say?",
                                 max_new_tokens=4))
            done += 1
        except MemosError as exc:
            errors[exc.status] = errors.get(exc.status, 0) + 1
    return {"generations_ok": done, "generation_errors": errors}


def _drill(address: str, client: MemosClient, cubes: Sequence[str], tag: str,
           fail: Callable[[], Any], answering: Callable[[], Any],
           written: dict[str, set[str]]) -> dict[str, Any]:
    with WriteLoad(address, cubes, writers=2, tag=tag) as load:
        time.sleep(WARM_S)
        began = time.monotonic()
        broke = fail()
        started = time.monotonic()  # recovery counts from the end of the failure
        recovery = wait_answering(answering, started, RECOVERY_DEADLINE_S)
        writable = wait_writable(client, cubes[0], started, RECOVERY_DEADLINE_S)
        time.sleep(AFTER_S)
    for cube in cubes:
        written[cube] |= load.report.acked[cube] | ({PROBE_ID} if cube == cubes[0] else set())
    result = audit(client, written)
    return {"broke": broke if isinstance(broke, str) else "",
            "failure_s": round(started - began, 2), "recovery_s": recovery,
            "writes_back_s": writable, "client_errors": dict(load.report.errors),
            "failed_writers": len(load.report.failures), "searches": load.report.searches,
            "longest_write_stall_s": max((s for _, s in load.report.stalls), default=0.0),
            "acknowledged": result.acknowledged, "missing": len(result.missing),
            "unexpected": result.unexpected,
            **(broke if isinstance(broke, dict) else {})}


def run_drills(address: str, ops: DrillOps, drills: Sequence[str] = (
        "shard_kill", "scheduler_kill", "replica_kill", "kv_budget"),
        say: Callable[[str], None] = print) -> dict[str, Any]:
    """Every drill in turn on fresh cubes; the figures `bench drills --out` writes."""
    client = MemosClient(address, timeout_s=60)
    cubes, written = seed_cubes(client, f"drill-{uuid.uuid4().hex[:6]}", 3, 20)
    plans: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
        "shard_kill": (lambda: ops.kill_shard(client.get_cube(cubes[0]).shard_id),
                       lambda: client.get_cube(cubes[0])),
        "scheduler_kill": (ops.kill_scheduler, lambda: client.scheduler("status")),
        "replica_kill": (ops.kill_gateway_replica, client.ping),
        "kv_budget": (lambda: _fill_kv(client, cubes, written), client.ping),
    }
    results = {}
    try:
        for name in drills:
            fail, answering = plans[name]
            results[name] = _drill(address, client, cubes, name[:2], fail, answering, written)
            r = results[name]
            say(f"{name:<15} answering again after {r['recovery_s']:>6.2f} s, writes after "
                f"{r['writes_back_s']:>6.2f} s; client errors {r['client_errors'] or 'none'}; "
                f"{r['missing']} of {r['acknowledged']} acknowledged writes missing, "
                f"{r['unexpected']} unexpected")
    finally:
        for cube in cubes:
            client.delete_cube(cube)
    return {"drills": results, "cubes": len(cubes)}
