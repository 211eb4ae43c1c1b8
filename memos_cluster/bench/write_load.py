"""Load and audits for failure drills: writers that record every acknowledged write, a reader,
and an audit that every acknowledged write is readable exactly once.

Who uses it: the rebalance and fault tests (tests/integration, tests/cluster) and
`memos-cluster bench cluster`. Traffic goes only to the address given (loopback in tests), is
bounded by the caller's `stop`, and each write is retried a bounded number of times.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from memos_cluster.client import MemosClient
from memos_cluster.core.errors import (
    DeadlineExceeded, FailedPrecondition, InternalError, MemosError, Unavailable)
from memos_cluster.core.types import NewMemory

WRITE_RETRIES = 60  # attempts per batch before a writer gives up (each after RETRY_PAUSE_S)
RETRY_PAUSE_S = 0.5
# What a client retries: a shard or replica restarting (UNAVAILABLE), a call in flight to a
# replica that died (Serve's proxy answers INTERNAL), a call that ran out of time. Writes carry
# their ids, so a retry never stores twice.
RETRYABLE = (Unavailable, InternalError, DeadlineExceeded)


@dataclass
class LoadReport:
    acked: dict[str, set[str]]  # cube -> acknowledged memory ids
    refused: int = 0  # write attempts that failed retryably (then retried with the same ids)
    searches: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # status -> calls clients saw fail
    last_error: dict[str, str] = field(default_factory=dict)  # status -> its latest message
    failures: list[str] = field(default_factory=list)  # writers that gave up
    # (seconds since start, seconds without an acknowledged write) for each gap over 1 s
    stalls: list[tuple[float, float]] = field(default_factory=list)


class WriteLoad:
    """`writers` threads add batches of uniquely-id'd memories to every cube in turn (a batch
    refused as UNAVAILABLE is retried with the same ids: idempotent), one thread searches all
    cubes; runs from `__enter__` until `__exit__`."""

    def __init__(self, address: str, cubes: Sequence[str], writers: int = 3, batch: int = 3,
                 tag: str = "w"):
        self._address, self._cubes, self._batch, self._tag = address, list(cubes), batch, tag
        self.report = LoadReport({c: set() for c in cubes})
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._last_ack = self._started
        self._threads = [threading.Thread(target=self._write, args=(w,), daemon=True)
                         for w in range(writers)]
        self._threads.append(threading.Thread(target=self._read, daemon=True))

    def __enter__(self) -> "WriteLoad":
        self._started = self._last_ack = time.monotonic()
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(120)

    def _write(self, writer: int) -> None:
        with MemosClient(self._address, timeout_s=60) as client:
            n = 0
            while not self._stop.is_set():
                for cube in self._cubes:
                    items = [NewMemory(f"writer {writer} note {n}-{i} for {cube}",
                                       id=f"{self._tag}{writer}-{n}-{i}")
                             for i in range(self._batch)]
                    if not self._add(client, cube, items):
                        return
                n += 1

    def _add(self, client: MemosClient, cube: str, items: list[NewMemory]) -> bool:
        for _ in range(WRITE_RETRIES):
            try:
                ids = client.add(cube, items).ids
            except RETRYABLE as exc:
                with self._lock:
                    self.report.refused += 1
                    self._count(exc)
                time.sleep(RETRY_PAUSE_S)
                continue
            now = time.monotonic()
            with self._lock:
                self.report.acked[cube].update(ids)
                if now - self._last_ack > 1.0:
                    self.report.stalls.append((round(self._last_ack - self._started, 2),
                                               round(now - self._last_ack, 2)))
                self._last_ack = now
            return True
        with self._lock:
            self.report.failures.append(f"writes to {cube} kept failing")
        return False

    def _read(self) -> None:
        with MemosClient(self._address, timeout_s=60) as client:
            while not self._stop.is_set():
                try:
                    client.search(self._cubes, "note for", top_k=5)
                except RETRYABLE as exc:
                    with self._lock:
                        self._count(exc)
                    time.sleep(RETRY_PAUSE_S)
                    continue
                with self._lock:
                    self.report.searches += 1

    def _count(self, exc: MemosError) -> None:
        """Call with the lock held."""
        self.report.errors[exc.status] = self.report.errors.get(exc.status, 0) + 1
        self.report.last_error[exc.status] = exc.message


@dataclass(frozen=True)
class Audit:
    cubes: int
    acknowledged: int  # writes expected
    missing: tuple[str, ...]  # "cube/id" acknowledged but not readable
    unexpected: int  # memories stored beyond the acknowledged ones (duplicates, strays)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unexpected


def audit(client: MemosClient, expected: dict[str, set[str]],
          batch: int = 200, deadline_s: float = 120.0) -> Audit:
    """Read back every expected id of every cube and compare the cube's count. Waits out
    UNAVAILABLE (a shard still restarting) up to deadline_s."""
    missing: list[str] = []
    unexpected = 0
    for cube, ids in sorted(expected.items()):
        ordered = sorted(ids)
        for start in range(0, len(ordered), batch):
            got = _retry(lambda: client.get(cube, ordered[start:start + batch]), deadline_s)
            missing += [f"{cube}/{i}" for i in got.missing_ids]
        stored = _retry(lambda: client.get_cube(cube), deadline_s).num_memories
        unexpected += max(0, stored - (len(ids) - sum(m.startswith(cube + "/")
                                                      for m in missing)))
    return Audit(len(expected), sum(len(i) for i in expected.values()), tuple(missing),
                 unexpected)


def _retry(call, deadline_s: float):
    deadline = time.monotonic() + deadline_s
    last: Optional[MemosError] = None
    while time.monotonic() < deadline:
        try:
            return call()
        except RETRYABLE as exc:
            last = exc
            time.sleep(RETRY_PAUSE_S)
    raise last or Unavailable("no answer")


def wait_rebalanced(client: MemosClient, timeout_s: float = 180.0, poll_s: float = 0.5):
    """Block until the directory has no rebalance running and no cube waiting to move; the
    final ShardsStatus. Raises FailedPrecondition if it failed, DeadlineExceeded on timeout."""
    deadline = time.monotonic() + timeout_s
    status = client.shards()
    while status.rebalance.state == "running" or status.pending_moves:
        if status.rebalance.state == "failed":
            raise FailedPrecondition(f"rebalance failed: {status.rebalance.error}")
        if time.monotonic() > deadline:
            raise DeadlineExceeded(f"rebalance not done in {timeout_s} s: {status.rebalance}")
        time.sleep(poll_s)
        status = client.shards()
    return status


PROBE_ID = "probe"  # the one memory `wait_writable` adds to a cube


def wait_answering(call: Callable[[], Any], started: float, deadline_s: float = 120.0) -> float:
    """Seconds from `started` (time.monotonic) until `call` succeeds, retrying what a client
    retries (RETRYABLE); raises the last such error after deadline_s. Who calls it: the
    failure drills, right after a failure."""
    while True:
        try:
            call()
            return round(time.monotonic() - started, 2)
        except RETRYABLE:  # never a hang: each call returns within call_timeout_s
            if time.monotonic() - started > deadline_s:
                raise
            time.sleep(0.2)


def wait_writable(client: MemosClient, cube_id: str, started: float,
                  deadline_s: float = 120.0) -> float:
    """`wait_answering` for a write to the cube, probing with one memory (id PROBE_ID;
    idempotent, so retries add it once)."""
    return wait_answering(
        lambda: client.add(cube_id, [NewMemory("probe after a failure", id=PROBE_ID)]),
        started, deadline_s)


def seed_cubes(client: MemosClient, prefix: str, count: int,
               per_cube: int) -> tuple[list[str], dict[str, set[str]]]:
    """`count` new cubes named prefix-i, each with `per_cube` memories (ids s0..); returns the
    cubes and the acknowledged ids per cube, as `audit` expects them."""
    cubes = [f"{prefix}-{i}" for i in range(count)]
    seeded = {}
    for cube in cubes:
        client.create_cube(cube)
        items = [NewMemory(f"seed fact {i} of {cube}", id=f"s{i}") for i in range(per_cube)]
        seeded[cube] = set(client.add(cube, items).ids)
    return cubes, seeded
