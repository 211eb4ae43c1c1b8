"""What every benchmark reports with: latency percentiles, repeated timing, and the JSON it writes
with `--out`."""
from __future__ import annotations

import json
import statistics
import time
from typing import Any, Callable, Optional


def percentiles_ms(samples_s: list[float]) -> dict[str, float]:
    ordered = sorted(samples_s)

    def pick(q: float) -> float:
        return 1000.0 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50": round(pick(0.50), 2), "p95": round(pick(0.95), 2),
            "p99": round(pick(0.99), 2), "mean": round(1000 * statistics.fmean(ordered), 2),
            "n": len(ordered)}


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
