"""Bounded gRPC load from scenario files (`load_tests/scenarios/*.yaml`), for
`memos-cluster bench load --scenario FILE`.

A run seeds the scenario's cubes, then drives two phases with the same clients through the same
gateway: the no-op RPC (Ping, the overhead baseline), then the scenario's mix. It reports
throughput, p50/p95/p99 and errors by status per RPC, checks that every acknowledged write is
stored exactly once, and can plot latency over time.

Bounded: each phase stops at its duration or its request budget, whichever comes first, and
traffic goes only to the address given (loopback in tests and benchmarks).
"""
from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import jsonschema
import yaml

from memos_cluster.bench.stats import percentiles_ms
from memos_cluster.client import MemosClient
from memos_cluster.core.errors import ConfigError, MemosError
from memos_cluster.core.types import NewMemory

RPCS = ("Search", "GetMemories", "AddMemories", "UpdateMemory")
SCHEMA = {
    "type": "object",
    "required": ["name", "mix"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9_]+$"},
        "description": {"type": "string"},
        "clients": {"type": "integer", "minimum": 1, "maximum": 64},
        "duration_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 600},
        "noop_duration_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 120},
        "max_requests": {"type": "integer", "minimum": 1, "maximum": 1000000},
        "cubes": {"type": "integer", "minimum": 1, "maximum": 64},
        "items_per_cube": {"type": "integer", "minimum": 1, "maximum": 2000000},
        "vectors": {"enum": ["real", "synthetic"]},
        "agents": {"type": "integer", "minimum": 0, "maximum": 64},
        "settle_s": {"type": "number", "minimum": 0, "maximum": 600},
        "top_k": {"type": "integer", "minimum": 1, "maximum": 200},
        "add_batch": {"type": "integer", "minimum": 1, "maximum": 1000},
        "get_batch": {"type": "integer", "minimum": 1, "maximum": 1000},
        "mix": {"type": "object", "minProperties": 1, "additionalProperties": False,
                "properties": {rpc: {"type": "number", "minimum": 0} for rpc in RPCS}},
    },
}
SEED_BATCH = 500  # items per seeding AddMemories


@dataclass(frozen=True)
class Scenario:
    name: str
    mix: Mapping[str, float]  # RPC name -> relative weight
    description: str = ""
    clients: int = 8  # concurrent gRPC clients (threads, one channel each)
    duration_s: float = 30.0  # the mix phase, seconds
    noop_duration_s: float = 10.0  # the Ping phase, seconds
    max_requests: int = 100000  # per phase, over all clients
    cubes: int = 1
    items_per_cube: int = 1000  # seeded before the phases
    vectors: str = "real"  # "synthetic": random unit vectors written by a Ray driver (scale)
    agents: int = 0  # > 0: that many users with their own keys share the cubes (write grant)
    settle_s: float = 0.0  # wait after seeding (s): milvus-lite indexes sealed segments late
    top_k: int = 10
    add_batch: int = 8
    get_batch: int = 5


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file (ConfigError naming what is wrong)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
        jsonschema.validate(data, SCHEMA)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read scenario {path}: {exc}") from exc
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise ConfigError(f"scenario {path}: {where}: {exc.message}") from exc
    if not any(data["mix"].values()):
        raise ConfigError(f"scenario {path}: mix: every weight is 0")
    return Scenario(**data)


_WORDS = ("alice bob carol dave erin frank grace heidi ivan judy mallory olivia peggy sybil "
          "trent victor walter river bridge garden market harbour station library museum "
          "castle forest valley mountain island village bakery school hospital airport "
          "bicycle guitar camera painting letter recipe umbrella lantern compass kettle "
          "visited repaired painted borrowed lost found cooked sold watched planted").split()


def synthetic_text(rng: random.Random, serial: int) -> str:
    words = " ".join(rng.choice(_WORDS) for _ in range(12))
    return f"{words} (note {serial})"


@dataclass(frozen=True)
class Sample:
    t_s: float  # seconds since the phase started, at the call's start
    rpc: str
    latency_s: float
    status: str  # "OK" or the gRPC status name
    message: str = ""  # the error's message, for a failed call


@dataclass
class Seeded:
    cubes: list[str]
    users: list[str]  # the users the clients call as (the agents, or one "load" user)
    keys: list[str]  # their API keys, in the same order
    items_per_cube: int  # seeded items in each cube
    acked: dict[str, set[str]] = field(default_factory=dict)  # cube -> ids Add acknowledged


class Workload:
    """One client's calls: what each RPC of the mix sends."""

    def __init__(self, client: MemosClient, scenario: Scenario, seeded: Seeded, slot: int,
                 lock: threading.Lock):
        self._client, self._scenario, self._seeded = client, scenario, seeded
        self._rng = random.Random(slot)
        self._slot, self._serial, self._lock = slot, 0, lock

    def call(self, rpc: str) -> None:
        s, rng = self._scenario, self._rng
        cube = rng.choice(self._seeded.cubes)
        if rpc == "Ping":
            self._client.ping()
        elif rpc == "Search":
            self._client.search(cube, " ".join(rng.sample(_WORDS, 3)), top_k=s.top_k)
        elif rpc == "GetMemories":
            count = self._seeded.items_per_cube
            self._client.get(cube, [f"s{rng.randrange(count)}" for _ in range(s.get_batch)])
        elif rpc == "UpdateMemory":
            memory_id = f"s{rng.randrange(self._seeded.items_per_cube)}"
            self._client.update(cube, memory_id, synthetic_text(rng, rng.randrange(10**6)))
        elif rpc == "AddMemories":
            ids = [f"c{self._slot}-{self._serial + i}" for i in range(s.add_batch)]
            self._serial += s.add_batch
            self._client.add(cube, [NewMemory(synthetic_text(rng, i), id=i) for i in ids])
            with self._lock:
                self._seeded.acked.setdefault(cube, set()).update(ids)
        else:
            raise ConfigError(f"unknown RPC {rpc!r} in the mix")


def run_phase(workloads: Sequence[Workload], weights: Mapping[str, float], duration_s: float,
              max_requests: int) -> tuple[list[Sample], float]:
    """Every workload in its own thread until the duration or the shared request budget runs
    out; returns the samples and the phase's wall time (s)."""
    names = [r for r, w in weights.items() if w > 0]
    cumulative = [weights[r] for r in names]
    samples: list[Sample] = []
    budget = {"left": max_requests}
    lock = threading.Lock()
    start = time.perf_counter()
    deadline = start + duration_s

    def drive(slot: int, workload: Workload) -> None:
        rng = random.Random(1000 + slot)
        while time.perf_counter() < deadline:
            with lock:
                if budget["left"] <= 0:
                    return
                budget["left"] -= 1
            rpc = rng.choices(names, cumulative)[0]
            began = time.perf_counter()
            status, message = "OK", ""
            try:
                workload.call(rpc)
            except MemosError as exc:
                status, message = exc.status, exc.message
            samples.append(Sample(began - start, rpc, time.perf_counter() - began, status,
                                  message))

    threads = [threading.Thread(target=drive, args=(i, w), daemon=True)
               for i, w in enumerate(workloads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration_s + 120)
    return samples, time.perf_counter() - start


def summarize(samples: Sequence[Sample], elapsed_s: float) -> dict[str, dict[str, Any]]:
    """Per RPC: qps (successful calls a second), p50/p95/p99 (ms, successful calls) and errors
    by status."""
    out: dict[str, dict[str, Any]] = {}
    for rpc in sorted({s.rpc for s in samples}):
        mine = [s for s in samples if s.rpc == rpc]
        ok = [s.latency_s for s in mine if s.status == "OK"]
        errors: dict[str, int] = {}
        first: dict[str, str] = {}  # one message a status, so a report says what went wrong
        for s in mine:
            if s.status != "OK":
                errors[s.status] = errors.get(s.status, 0) + 1
                first.setdefault(s.status, s.message[:300])
        ms = percentiles_ms(ok) if ok else {}
        out[rpc] = {"calls": len(mine), "qps": round(len(ok) / elapsed_s, 1),
                    **{f"{q}_ms": ms.get(q) for q in ("p50", "p95", "p99")},
                    "errors": errors, "error_messages": first}
    return out
