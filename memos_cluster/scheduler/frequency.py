"""Access events and exponentially decayed access frequencies: pure bookkeeping, no I/O.

A memory's frequency is a sum of its accesses, each weighted 2^(-age / half_life): one access
now counts 1, one a half-life ago counts 0.5. Stored as (value at last update, time of last
update) and decayed lazily, so recording is O(1) and reading needs `now`.

Who uses it: the scheduler (`memos_cluster.scheduler.scheduler.Scheduler`) records event batches
into a `FrequencyTable` and snapshots it for `policy.plan`; the gateway buffers events in an
`EventBuffer` and ships them off the request path.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Iterable, Optional

KINDS = ("search", "get", "generate", "useful")  # useful: Feedback (core/lifecycle.py)
MemoryKey = tuple[str, str]  # (cube id, memory id)


@dataclass(frozen=True)
class AccessEvent:
    cube_id: str
    memory_id: str
    version: int
    kind: str  # one of KINDS
    time_s: float  # when it happened (seconds since the epoch)
    query: str = ""  # the Search or Generate query that reached the memory ("" for a Get)


@dataclass
class MemoryStats:
    frequency: float = 0.0  # decayed access count at `updated_s`
    updated_s: float = 0.0
    first_seen_s: float = 0.0  # first access the scheduler saw
    version: int = 0  # newest version seen in events
    version_since_s: float = 0.0  # when that version was first seen (stability)


def decay(value: float, elapsed_s: float, half_life_s: float) -> float:
    return value * math.pow(2.0, -max(elapsed_s, 0.0) / half_life_s)


@dataclass
class FrequencyTable:
    half_life_s: float
    stats: dict[MemoryKey, MemoryStats] = field(default_factory=dict)

    def record(self, event: AccessEvent) -> None:
        key = (event.cube_id, event.memory_id)
        stats = self.stats.get(key)
        if stats is None:
            stats = self.stats[key] = MemoryStats(updated_s=event.time_s,
                                                  first_seen_s=event.time_s,
                                                  version=event.version,
                                                  version_since_s=event.time_s)
        if event.version > stats.version:
            stats.version, stats.version_since_s = event.version, event.time_s
        # Events may arrive slightly out of order: decay forward only.
        now = max(event.time_s, stats.updated_s)
        stats.frequency = decay(stats.frequency, now - stats.updated_s, self.half_life_s) + \
            decay(1.0, now - event.time_s, self.half_life_s)
        stats.updated_s = now

    def frequency(self, key: MemoryKey, now_s: float) -> float:
        stats = self.stats.get(key)
        if stats is None:
            return 0.0
        return decay(stats.frequency, now_s - stats.updated_s, self.half_life_s)

    def forget(self, key: MemoryKey) -> None:
        self.stats.pop(key, None)

    def prune(self, now_s: float, floor: float, keep: Iterable[MemoryKey] = ()) -> int:
        """Drop memories whose frequency decayed below `floor` (bounded memory), except those
        in `keep` (e.g. memories still in activation memory)."""
        kept = set(keep)
        cold = [k for k in self.stats if self.frequency(k, now_s) < floor and k not in kept]
        for key in cold:
            del self.stats[key]
        return len(cold)

    def to_json(self) -> dict:
        return {"half_life_s": self.half_life_s,
                "stats": [[c, m, s.frequency, s.updated_s, s.first_seen_s, s.version,
                           s.version_since_s] for (c, m), s in self.stats.items()]}

    @classmethod
    def from_json(cls, data: dict, half_life_s: Optional[float] = None) -> "FrequencyTable":
        table = cls(half_life_s or float(data["half_life_s"]))
        for c, m, freq, updated, first, version, since in data["stats"]:
            table.stats[(c, m)] = MemoryStats(freq, updated, first, int(version), since)
        return table


class EventBuffer:
    """A bounded buffer of events waiting to be shipped: when full, new events are dropped and
    counted (the request that produced them never waits)."""

    def __init__(self, capacity: int):
        self._events: deque[AccessEvent] = deque()
        self._capacity = capacity
        self.num_dropped = 0

    def __len__(self) -> int:
        return len(self._events)

    def add(self, events: Iterable[AccessEvent]) -> None:
        for event in events:
            if len(self._events) >= self._capacity:
                self.num_dropped += 1
            else:
                self._events.append(event)

    def drain(self, limit: int) -> list[AccessEvent]:
        out = []
        while self._events and len(out) < limit:
            out.append(self._events.popleft())
        return out
