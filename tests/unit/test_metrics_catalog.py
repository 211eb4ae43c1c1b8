"""The metric catalog, the Grafana dashboard generated from it, the table in docs/operations.md,
and the actor code that emits them agree."""
import json
import re
from pathlib import Path

from memos_cluster.core.metrics_catalog import CATALOG, DASHBOARD_PATH, grafana_json

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_dashboard_is_the_generated_one():
    assert (ROOT / DASHBOARD_PATH).read_text() == grafana_json(), \
        "regenerate it: python -m memos_cluster.core.metrics_catalog"
    dashboard = json.loads(grafana_json())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for spec in CATALOG:
        assert f"ray_{spec.name}" in exprs


def test_every_metric_is_documented_and_emitted():
    readme = (ROOT / "docs" / "operations.md").read_text()
    code = " ".join(p.read_text() for p in (ROOT / "actors").glob("*.py"))
    emitted = set(re.findall(r'"(memos_[a-z_]+)"', code))
    for spec in CATALOG:
        assert f"`ray_{spec.name}`" in readme, spec.name
        assert spec.name in emitted, f"{spec.name} is in the catalog but no actor emits it"
    assert {n for n in emitted if n.startswith("memos_") and n.endswith(
        ("_total", "_ms", "_items", "_bytes", "_memories", "_queued"))} <= \
        {s.name for s in CATALOG}
