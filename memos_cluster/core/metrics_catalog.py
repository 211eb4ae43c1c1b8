"""Every metric memos-cluster exports, in one list: the actors create them from it
(`actors/metrics.py`, through `ray.util.metrics`, so they appear on Ray's metrics port with the
`ray_` prefix), the table in docs/operations.md and the Grafana dashboard (`observability/`) are generated from
it, and a test keeps the three in step.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# Request latency buckets (ms): sub-millisecond no-ops to multi-second generations.
LATENCY_BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000)


@dataclass(frozen=True)
class MetricSpec:
    name: str  # without Ray's "ray_" prefix
    kind: str  # counter | gauge | histogram
    description: str
    tags: tuple[str, ...] = ()
    unit: str = ""  # for the dashboard's axis


CATALOG: tuple[MetricSpec, ...] = (
    MetricSpec("memos_requests_total", "counter",
               "Requests answered by the gateway, by RPC, status (OK or the gRPC code) and "
               "transport (grpc, ray, http, mcp)", ("rpc", "status", "transport")),
    MetricSpec("memos_request_latency_ms", "histogram",
               "Gateway request latency, by RPC and transport (ms, the whole call)",
               ("rpc", "transport"), "ms"),
    MetricSpec("memos_access_events_queued", "gauge",
               "Access events buffered in a gateway replica, waiting to be shipped", (), ""),
    MetricSpec("memos_access_events_dropped_total", "counter",
               "Access events dropped (full buffer, scheduler unavailable)", ()),
    MetricSpec("memos_cube_items", "gauge",
               "Current memories a cube holds, by cube and shard (plaintext tier)",
               ("cube", "shard")),
    MetricSpec("memos_shard_items", "gauge",
               "Current memories a shard holds, over its cubes", ("shard",)),
    MetricSpec("memos_tier_memories", "gauge",
               "Memories the scheduler tracks (tier=tracked) and holds in activation memory "
               "(tier=activation)",
               ("tier",)),
    MetricSpec("memos_migrations_total", "counter",
               "Scheduler migrations, by action (promote, demote, consolidate, retire, merge, "
               "expire, failed)", ("action",)),
    MetricSpec("memos_kv_lookups_total", "counter",
               "Activation-memory prefix lookups in a KV actor, by result (hit, miss)",
               ("result",)),
    MetricSpec("memos_kv_bytes", "gauge",
               "KV-cache bytes a KV actor holds, by tier (device, host, disk)", ("tier",),
               "bytes"),
    MetricSpec("memos_training_runs_total", "counter",
               "LoRA training runs finished, by outcome (succeeded, failed, cancelled)",
               ("outcome",)),
)
BY_NAME = {m.name: m for m in CATALOG}


def _panel(spec: MetricSpec, panel_id: int, x: int, y: int) -> dict[str, Any]:
    """One time-series panel; counters as rates, histograms as p50/p95/p99."""
    metric = f"ray_{spec.name}"
    by = ", ".join(spec.tags)
    if spec.kind == "counter":
        targets = [f"sum by ({by}) (rate({metric}[1m]))" if by else f"sum(rate({metric}[1m]))"]
    elif spec.kind == "histogram":
        targets = [f"histogram_quantile({q}, sum by (le, {by}) (rate({metric}_bucket[1m])))"
                   for q in (0.5, 0.95, 0.99)]
    else:
        targets = [f"sum by ({by}) ({metric})" if by else f"sum({metric})"]
    return {"id": panel_id, "type": "timeseries", "title": spec.description,
            "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "fieldConfig": {"defaults": {"unit": spec.unit or "short"}, "overrides": []},
            "targets": [{"expr": expr, "refId": chr(ord("A") + i),
                         "datasource": {"type": "prometheus", "uid": "${datasource}"}}
                        for i, expr in enumerate(targets)]}


def grafana_dashboard() -> dict[str, Any]:
    """The dashboard JSON (Grafana 10+ schema), one panel a metric, two a row."""
    panels = [_panel(spec, i + 1, 12 * (i % 2), 8 * (i // 2)) for i, spec in enumerate(CATALOG)]
    return {"title": "memos-cluster", "uid": "memos-cluster", "schemaVersion": 39,
            "version": 1, "editable": True, "time": {"from": "now-1h", "to": "now"},
            "refresh": "10s", "tags": ["memos-cluster", "ray"],
            "templating": {"list": [{"name": "datasource", "type": "datasource",
                                     "query": "prometheus", "label": "Prometheus"}]},
            "panels": panels}


def grafana_json() -> str:
    return json.dumps(grafana_dashboard(), indent=2, sort_keys=True) + "\n"


DASHBOARD_PATH = "observability/grafana-dashboard.json"  # relative to the repository root

if __name__ == "__main__":  # regenerate: python -m memos_cluster.core.metrics_catalog
    from pathlib import Path

    Path(DASHBOARD_PATH).parent.mkdir(parents=True, exist_ok=True)
    Path(DASHBOARD_PATH).write_text(grafana_json())
    print(f"wrote {DASHBOARD_PATH}")
