"""The catalog's metrics (`memos_cluster/metrics_catalog.py`) as `ray.util.metrics` objects, made
once per process on first use. Ray exports them on each node's metrics port (prefix `ray_`).

Who uses it: the gateway (requests, latency, access events), shard actors (items per cube), the
scheduler actor (tiers, migrations), KV actors (lookups, bytes) and the LoRA trainer (runs).
"""
from __future__ import annotations

import threading
from typing import Any, Mapping

from ray.util import metrics as ray_metrics

from memos_cluster.core.metrics_catalog import BY_NAME, LATENCY_BUCKETS_MS
from memos_cluster.core.request_stats import RequestStats

_made: dict[str, Any] = {}
_lock = threading.Lock()
# This process's recent requests (a gateway replica's), for GetGatewayStats and the console.
REQUEST_STATS = RequestStats()


def metric(name: str) -> Any:
    """The Ray metric of a catalog name (KeyError for a name not in the catalog). Made once
    under the lock; every later call (each request) is a plain dict read."""
    made = _made.get(name)
    if made is not None:
        return made
    with _lock:
        if name not in _made:
            spec = BY_NAME[name]
            if spec.kind == "counter":
                made = ray_metrics.Counter(name, spec.description, spec.tags)
            elif spec.kind == "gauge":
                made = ray_metrics.Gauge(name, spec.description, spec.tags)
            else:
                made = ray_metrics.Histogram(name, spec.description, list(LATENCY_BUCKETS_MS),
                                             spec.tags)
            _made[name] = made
        return _made[name]


def inc(name: str, value: float = 1.0, **tags: str) -> None:
    if value:
        metric(name).inc(value, tags=tags or None)


def set_gauge(name: str, value: float, **tags: str) -> None:
    metric(name).set(value, tags=tags or None)


def observe(name: str, value: float, **tags: str) -> None:
    metric(name).observe(value, tags=tags or None)


def set_gauges(name: str, values: Mapping[tuple[str, ...], float], tag_names: tuple[str, ...]):
    """Several series of one gauge at once, e.g. items by (cube, shard)."""
    for key, value in values.items():
        set_gauge(name, value, **dict(zip(tag_names, key)))
