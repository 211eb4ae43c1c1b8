"""The load generator's pure parts: scenario files (the shipped ones and broken ones), the
figures, and the phase driver over a fake workload (no server: the integration test drives a
real gateway)."""
from pathlib import Path

import pytest

from memos_cluster.bench.load import Sample, Scenario, load_scenario, run_phase, summarize
from memos_cluster.core.errors import ConfigError, Unavailable

SCENARIOS = Path(__file__).resolve().parents[2] / "load_tests" / "scenarios"


def test_the_shipped_scenarios_load():
    names = {load_scenario(p).name for p in SCENARIOS.glob("*.yaml")}
    assert {"read_heavy", "write_heavy", "multi_agent", "large_cube"} <= names
    large = load_scenario(SCENARIOS / "large_cube.yaml")
    assert large.items_per_cube >= 100000 and large.vectors == "synthetic"
    assert load_scenario(SCENARIOS / "multi_agent.yaml").agents > 1


@pytest.mark.parametrize("text, complaint", [
    ("name: x\nmix: {Search: 1}\nclients: 0\n", "clients"),
    ("name: x\nmix: {Serch: 1}\n", "mix"),
    ("name: x\nmix: {Search: 0}\n", "every weight is 0"),
    ("name: x\nmix: {Search: 1}\nduration_s: 100000\n", "duration_s"),
    ("mix: {Search: 1}\n", "name"),
    ("name: x\nmix: {Search: 1}\nsurprise: 1\n", "surprise"),
])
def test_broken_scenarios_are_refused_by_name(tmp_path, text, complaint):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=complaint):
        load_scenario(path)


def test_summary_per_rpc():
    samples = [Sample(0.1 * i, "Search", 0.001 * (i + 1), "OK") for i in range(100)]
    samples += [Sample(1.0, "Search", 0.5, "UNAVAILABLE", "shard-0 is unavailable"),
                Sample(1.0, "Ping", 0.002, "OK")]
    figures = summarize(samples, elapsed_s=10.0)
    search = figures["Search"]
    assert search["calls"] == 101 and search["qps"] == 10.0
    assert (search["p50_ms"], search["p95_ms"], search["p99_ms"]) == (51.0, 96.0, 100.0)
    assert search["errors"] == {"UNAVAILABLE": 1}
    assert search["error_messages"] == {"UNAVAILABLE": "shard-0 is unavailable"}
    assert figures["Ping"]["p99_ms"] == 2.0


class FakeWorkload:
    def __init__(self, fail_every=0):
        self.calls, self.fail_every = [], fail_every

    def call(self, rpc):
        self.calls.append(rpc)
        if self.fail_every and len(self.calls) % self.fail_every == 0:
            raise Unavailable("down")


def test_a_phase_stops_at_its_request_budget_and_counts_errors():
    workloads = [FakeWorkload(fail_every=10) for _ in range(4)]
    samples, elapsed = run_phase(workloads, {"Search": 3, "Ping": 1, "AddMemories": 0}, 30.0,
                                 max_requests=400)
    assert len(samples) == 400 and elapsed < 30
    assert {s.rpc for s in samples} <= {"Search", "Ping"}
    assert sum(s.status == "UNAVAILABLE" for s in samples) == \
        sum(len(w.calls) // 10 for w in workloads)


def test_a_phase_stops_at_its_duration():
    samples, elapsed = run_phase([FakeWorkload()], {"Ping": 1}, 0.2, max_requests=10**9)
    assert 0.2 <= elapsed < 5 and samples


def test_scenario_defaults_are_bounded():
    s = Scenario(name="x", mix={"Search": 1})
    assert s.duration_s <= 600 and s.max_requests <= 10**6
