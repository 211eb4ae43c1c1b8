"""One load run (`memos-cluster bench load`): seed, the no-op phase, the mix phase, the audit of
acknowledged writes, the figures and the latency plot. The pieces live in
`memos_cluster.bench.load`.
"""
from __future__ import annotations

import random
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Optional

from tqdm import tqdm

from memos_cluster.bench.load import (
    SEED_BATCH, Sample, Scenario, Seeded, Workload, run_phase, summarize, synthetic_text)
from memos_cluster.client import MemosClient
from memos_cluster.core.types import NewMemory

# (cube_id, items) -> None: writes items with synthetic vectors, bypassing the embedder (a Ray
# driver's path to the shards; see actors/load_seed.py).
WriteEmbedded = Callable[[str, list[NewMemory]], None]


def seed(admin: MemosClient, scenario: Scenario, write_embedded: Optional[WriteEmbedded],
         quiet: bool = False) -> Seeded:
    """Create the scenario's cubes (and agents: users with keys and write grants) and fill
    them. Who calls it: run_load, with the process's admin client."""
    run = uuid.uuid4().hex[:6]
    if scenario.vectors == "synthetic" and write_embedded is None:  # before any cube is made
        raise SystemExit("synthetic vectors are written by a Ray driver: run the scenario on a "
                         "local cluster (no --address)")
    cubes = [f"load-{scenario.name.replace('_', '-')}-{run}-{i}" for i in range(scenario.cubes)]
    rng = random.Random(7)
    for cube in cubes:
        admin.create_cube(cube, description=f"load scenario {scenario.name}")
        with tqdm(total=scenario.items_per_cube, desc=f"seed {cube}", unit="item",
                  disable=quiet) as bar:
            for start in range(0, scenario.items_per_cube, SEED_BATCH):
                items = [NewMemory(synthetic_text(rng, i), id=f"s{i}")
                         for i in range(start, min(start + SEED_BATCH, scenario.items_per_cube))]
                if scenario.vectors == "synthetic":
                    write_embedded(cube, items)
                else:
                    admin.add(cube, items)
                bar.update(len(items))
    # The clients call as users of their own (agents, or one "load" user), with write grants
    # and keys whose rate limit is out of the way: the run measures the service, not the
    # limiter, and never calls as the admin.
    names = [f"agent-{a}-{run}" for a in range(scenario.agents)] or [f"load-{run}"]
    users, keys = names, []
    for user_id in users:
        admin.create_user(user_id)
        keys.append(admin.create_key(user_id, name=f"load {scenario.name}",
                                     rate_limit_rps=1e6)[1])
        for cube in cubes:
            admin.share_cube(cube, user_id, "write")
    return Seeded(cubes, users, keys, scenario.items_per_cube)


def audit_writes(admin: MemosClient, seeded: Seeded) -> dict[str, int]:
    """Every acknowledged Add readable, and each cube's count exactly the seeded plus the
    acknowledged items (so none stored twice, none lost)."""
    acked = missing = unexpected = 0
    for cube in seeded.cubes:
        ids = sorted(seeded.acked.get(cube, set()))
        acked += len(ids)
        gone = sum(len(admin.get(cube, ids[i:i + 1000]).missing_ids)
                   for i in range(0, len(ids), 1000))
        expected = seeded.items_per_cube + len(ids)
        stored = admin.get_cube(cube).num_memories
        unexpected += max(0, stored - expected)
        missing += gone + max(0, expected - stored - gone)  # lost acked or seeded items
    return {"acked": acked, "missing": missing, "unexpected": unexpected}


def plot_latency(phases: dict[str, list[Sample]], path: str, title: str) -> None:
    """Latency over time, one panel a phase, one colour an RPC (log scale, ms)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(1, len(phases), figsize=(6 * len(phases), 4), sharey=True,
                                   squeeze=False)
    for ax, (phase, samples) in zip(axes[0], phases.items()):
        for rpc in sorted({s.rpc for s in samples}):
            mine = [s for s in samples if s.rpc == rpc and s.status == "OK"]
            ax.scatter([s.t_s for s in mine], [1000 * s.latency_s for s in mine], s=3,
                       alpha=0.4, label=rpc)
        failed = [s for s in samples if s.status != "OK"]
        if failed:
            ax.scatter([s.t_s for s in failed], [1000 * s.latency_s for s in failed], s=12,
                       marker="x", color="red", label="errors")
        ax.set_yscale("log")
        ax.set_xlabel("seconds into the phase")
        ax.set_title(phase)
        ax.legend(loc="upper right", markerscale=3)
    axes[0][0].set_ylabel("latency (ms)")
    figure.suptitle(title)
    figure.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    pyplot.close(figure)


def run_load(address: str, scenario: Scenario, application: str = "memos",
             write_embedded: Optional[WriteEmbedded] = None, plot_path: Optional[str] = None,
             say: Callable[[str], None] = print, quiet: bool = False) -> dict[str, Any]:
    """The whole run against the gateway at `address`. The process's key must be an admin's
    (it creates the users the clients call as). Returns the figures `bench load --out`
    writes."""
    admin = MemosClient(address, application=application, timeout_s=120)
    started = time.perf_counter()
    seeded = seed(admin, scenario, write_embedded, quiet)
    say(f"seeded {scenario.cubes} cube(s) x {scenario.items_per_cube} items in "
        f"{time.perf_counter() - started:.1f} s")
    time.sleep(scenario.settle_s)
    clients = [MemosClient(address, application=application, timeout_s=60,
                           api_key=seeded.keys[i % len(seeded.keys)])
               for i in range(scenario.clients)]
    lock = threading.Lock()
    workloads = [Workload(c, scenario, seeded, i, lock) for i, c in enumerate(clients)]
    try:
        noop, noop_s = run_phase(workloads, {"Ping": 1.0}, scenario.noop_duration_s,
                                 scenario.max_requests)
        mix, mix_s = run_phase(workloads, scenario.mix, scenario.duration_s,
                               scenario.max_requests)
        audit = audit_writes(admin, seeded)
    finally:
        for client in clients:
            client.close()
        for cube in seeded.cubes:
            admin.delete_cube(cube)
        for user_id in seeded.users:
            admin.delete_user(user_id)
    result = {"scenario": scenario.name, "clients": scenario.clients,
              "items_per_cube": scenario.items_per_cube, "cubes": scenario.cubes,
              "vectors": scenario.vectors, "agents": scenario.agents,
              "rpcs": summarize(mix, mix_s), "noop": summarize(noop, noop_s).get("Ping", {}),
              "phase_s": {"noop": round(noop_s, 1), "mix": round(mix_s, 1)}, "audit": audit}
    search = result["rpcs"].get("Search")
    if search and result["noop"].get("qps"):
        result["search_over_noop_qps"] = round(search["qps"] / result["noop"]["qps"], 3)
    if plot_path:
        plot_latency({"no-op (Ping)": noop, f"{scenario.name} mix": mix}, plot_path,
                     f"{scenario.name}: {scenario.clients} clients, "
                     f"{scenario.items_per_cube} items/cube")
        result["plot"] = plot_path
    say_table(result, say)
    return result


def say_table(result: dict[str, Any], say: Callable[[str], None]) -> None:
    say(f"{'rpc':<14}{'calls':>8}{'qps':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}  errors")
    rows = dict(result["rpcs"], **{"Ping (no-op)": result["noop"]})
    for rpc, r in rows.items():
        say(f"{rpc:<14}{r['calls']:>8}{r['qps']:>9}{r['p50_ms'] or '-':>9}"
            f"{r['p95_ms'] or '-':>9}{r['p99_ms'] or '-':>9}  {r['errors'] or ''}")
    if "search_over_noop_qps" in result:
        say(f"Search throughput / no-op throughput: {result['search_over_noop_qps']:.2f}")
    say(f"acknowledged writes: {result['audit']['acked']}, missing {result['audit']['missing']}, "
        f"unexpected {result['audit']['unexpected']}")
