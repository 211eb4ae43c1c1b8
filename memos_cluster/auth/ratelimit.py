"""Request rate limits: a token bucket per bucket name (rate tokens a second, up to burst).

Who calls it: the gateway, once per request after authentication, with the user as the bucket
(or the key, for a key with its own rate). Each gateway replica keeps its own buckets, so with N
replicas a user may reach N times the rate; the limit protects a replica from one noisy caller,
not a global quota. Clock injectable (seconds, monotonic).
"""
from __future__ import annotations

import time
from collections import OrderedDict
from typing import Callable

from memos_cluster.core.errors import ResourceExhausted

MAX_TRACKED_KEYS = 10000  # buckets kept; the least recently used is dropped (it was full)


class RateLimiter:
    def __init__(self, rate_per_s: float, burst: int,
                 clock: Callable[[], float] = time.monotonic):
        self._rate = rate_per_s
        self._burst = float(max(burst, 1))
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    def admit(self, key: str, rate_per_s: float = 0.0) -> None:
        """Take one token for `key`, or raise ResourceExhausted saying when to retry.
        rate_per_s: the key's own limit (its bucket then holds two seconds' worth); 0: the
        limiter's default rate and burst."""
        rate = rate_per_s or self._rate
        if rate <= 0:
            return
        burst = max(1.0, 2.0 * rate_per_s) if rate_per_s else self._burst
        now = self._clock()
        tokens, at = self._buckets.pop(key, (burst, now))
        tokens = min(burst, tokens + (now - at) * rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            wait_s = (1.0 - tokens) / rate
            raise ResourceExhausted(f"rate limit of {rate:g} requests/s for this API key "
                                    f"exceeded; retry in {wait_s:.2f} s")
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > MAX_TRACKED_KEYS:
            self._buckets.popitem(last=False)
