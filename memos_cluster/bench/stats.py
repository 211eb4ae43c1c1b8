"""What every benchmark reports with: latency percentiles, repeated timing, and the JSON it writes
with `--out`."""
from __future__ import annotations

import json
import math
import statistics
import time
from typing import Any, Callable, Optional, Sequence


def percentiles_ms(samples_s: list[float]) -> dict[str, float]:
    ordered = sorted(samples_s)

    def pick(q: float) -> float:
        return 1000.0 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50": round(pick(0.50), 2), "p95": round(pick(0.95), 2),
            "p99": round(pick(0.99), 2), "mean": round(1000 * statistics.fmean(ordered), 2),
            "n": len(ordered)}


def bootstrap_interval(values: Sequence[float], resamples: int = 2000,
                       seed: int = 0) -> tuple[float, float]:
    """The 95% percentile-bootstrap interval of the mean of `values` (resampled with
    replacement, seeded: the same values give the same interval). For a paired comparison,
    pass the per-item differences."""
    import numpy

    data = numpy.asarray(values, dtype=float)
    if data.size == 0:
        return math.nan, math.nan
    picks = numpy.random.default_rng(seed).integers(0, data.size, (resamples, data.size))
    means = data[picks].mean(axis=1)
    return float(numpy.percentile(means, 2.5)), float(numpy.percentile(means, 97.5))


def timed(call: Callable[[], Any], repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def write_json(result: dict[str, Any], out: Optional[str]) -> None:
    if out:
        with open(out, "w") as handle:
            json.dump(result, handle, indent=2)
