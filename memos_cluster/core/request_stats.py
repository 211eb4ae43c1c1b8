"""A gateway replica's recent requests, in memory: per operation and transport the count, errors
and latency quantiles over the last few minutes, requests per second in time buckets, and the
latest failures. Pure bookkeeping (an injectable clock, no I/O), so its arithmetic is tested
without Ray.

Who uses it: the gateway counts every call into its process's `RequestStats` (next to the Ray
metrics, which Prometheus scrapes); the GetGatewayStats operation returns `snapshot()`, which the
web console charts. Memory is bounded: one histogram per (operation, transport) per bucket, and a
fixed number of errors.
"""
from __future__ import annotations

import bisect
import time
from itertools import accumulate
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Callable

from memos_cluster.core.metrics_catalog import LATENCY_BUCKETS_MS

Key = tuple[str, str]  # (rpc, transport)


@dataclass(frozen=True)
class OperationStats:
    rpc: str  # the operation's RPC name, e.g. "Search"
    transport: str  # grpc | http | ray | mcp
    requests: int  # calls in the window
    errors: int  # calls that did not end OK
    p50_ms: float  # latency quantiles (ms), read off the histogram: a bucket's upper edge
    p95_ms: float


@dataclass(frozen=True)
class RateSample:
    time_s: float  # the bucket's start, seconds since the epoch
    transport: str
    requests_per_s: float


@dataclass(frozen=True)
class RecentError:
    time_s: float  # seconds since the epoch
    rpc: str
    transport: str
    code: str  # the gRPC status name


@dataclass(frozen=True)
class GatewayStats:
    window_s: float  # how far back the figures reach (seconds)
    operations: tuple[OperationStats, ...]  # busiest first
    rates: tuple[RateSample, ...]  # oldest first; every bucket of the window, zeros included
    errors: tuple[RecentError, ...]  # newest first


@dataclass
class _Bucket:
    index: int  # start time // bucket_s
    histograms: dict[Key, list[int]] = field(default_factory=dict)  # counts per latency edge
    errors: dict[Key, int] = field(default_factory=dict)


class RequestStats:
    def __init__(self, window_s: float = 300.0, bucket_s: float = 10.0, max_errors: int = 50,
                 clock: Callable[[], float] = time.time):
        if bucket_s <= 0 or window_s < bucket_s:
            raise ValueError("need 0 < bucket_s <= window_s")
        self.window_s, self.bucket_s = window_s, bucket_s
        self._clock = clock
        self._buckets: deque[_Bucket] = deque()
        self._errors: deque[RecentError] = deque(maxlen=max_errors)

    def record(self, rpc: str, transport: str, status: str, latency_ms: float) -> None:
        """Who calls it: the gateway, once per finished call (a stream when it ends)."""
        now = self._clock()
        bucket = self._current(now)
        key = (rpc, transport)
        counts = bucket.histograms.setdefault(key, [0] * (len(LATENCY_BUCKETS_MS) + 1))
        counts[bisect.bisect_left(LATENCY_BUCKETS_MS, latency_ms)] += 1
        if status != "OK":
            bucket.errors[key] = bucket.errors.get(key, 0) + 1
            self._errors.appendleft(RecentError(now, rpc, transport, status))

    def _current(self, now: float) -> _Bucket:
        index = int(now // self.bucket_s)
        if not self._buckets or self._buckets[-1].index < index:
            self._buckets.append(_Bucket(index))
        self._drop_old(now)
        return self._buckets[-1]

    def _drop_old(self, now: float) -> None:
        while self._buckets and \
                (self._buckets[0].index + 1) * self.bucket_s <= now - self.window_s:
            self._buckets.popleft()

    def snapshot(self) -> GatewayStats:
        """The window as of now. Who calls it: the gateway, for GetGatewayStats."""
        now = self._clock()
        self._drop_old(now)
        merged: dict[Key, list[int]] = {}
        errors: dict[Key, int] = {}
        for bucket in self._buckets:
            for key, counts in bucket.histograms.items():
                total = merged.setdefault(key, [0] * len(counts))
                for i, n in enumerate(counts):
                    total[i] += n
            for key, n in bucket.errors.items():
                errors[key] = errors.get(key, 0) + n
        operations = sorted(
            (OperationStats(rpc, transport, sum(counts), errors.get((rpc, transport), 0),
                            _quantile(counts, 0.50), _quantile(counts, 0.95))
             for (rpc, transport), counts in merged.items()),
            key=lambda s: (-s.requests, s.rpc, s.transport))
        return GatewayStats(self.window_s, tuple(operations), self._rates(now),
                            tuple(e for e in self._errors if e.time_s > now - self.window_s))

    def _rates(self, now: float) -> tuple[RateSample, ...]:
        transports = sorted({t for b in self._buckets for _, t in b.histograms})
        by_index = {b.index: b for b in self._buckets}
        last = int(now // self.bucket_s)
        first = self._buckets[0].index if self._buckets else last
        samples = []
        for index in range(first, last + 1):
            bucket = by_index.get(index)  # None: no call in that bucket
            calls: Counter[str] = Counter()
            for (_, transport), counts in (bucket.histograms if bucket else {}).items():
                calls[transport] += sum(counts)
            samples.extend(RateSample(index * self.bucket_s, t, calls[t] / self.bucket_s)
                           for t in transports)
        return tuple(samples)


def _quantile(counts: list[int], q: float) -> float:
    """The upper edge (ms) of the histogram bucket holding quantile q; past the last edge,
    the last edge (the true value is larger)."""
    cumulative = list(accumulate(counts))
    if not cumulative[-1]:
        return 0.0
    i = bisect.bisect_left(cumulative, q * cumulative[-1])
    return float(LATENCY_BUCKETS_MS[min(i, len(LATENCY_BUCKETS_MS) - 1)])
