"""`bench load` end to end on the session cluster, kept tiny: seeding, agents with their own
keys, both phases, every RPC of the mix, the audit of acknowledged writes, the JSON figures and
the latency plot. (The shipped scenarios are for measuring, not for CI.)"""
import json

from memos_cluster.bench.load import Scenario
from memos_cluster.bench.load_run import run_load
from memos_cluster.cli import main as cli


def test_a_small_multi_agent_load_run(running, config, tmp_path):
    scenario = Scenario(name="ci_tiny", clients=3, duration_s=3, noop_duration_s=1,
                        max_requests=400, cubes=2, items_per_cube=40, agents=2, add_batch=4,
                        mix={"Search": 2, "GetMemories": 1, "AddMemories": 1,
                             "UpdateMemory": 1})
    plot = tmp_path / "plots" / "tiny.png"
    result = run_load(running.grpc_address, scenario, config.gateway.app_name,
                      plot_path=str(plot), say=lambda line: None, quiet=True)
    assert set(result["rpcs"]) == {"Search", "GetMemories", "AddMemories", "UpdateMemory"}
    for rpc, figures in result["rpcs"].items():
        assert figures["errors"] == {}, (rpc, figures)
        assert figures["qps"] > 0 and figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"]
    assert result["noop"]["qps"] > 0 and result["noop"]["errors"] == {}
    assert 0 < result["search_over_noop_qps"]
    assert result["audit"]["acked"] > 0
    assert result["audit"]["missing"] == result["audit"]["unexpected"] == 0
    assert plot.stat().st_size > 10000
    assert result["clients"] == 3 and result["items_per_cube"] == 40
    json.dumps(result)


def test_bench_load_command_refuses_a_broken_scenario(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nmix: {Search: 1}\nclients: 1000\n")
    assert cli.main(["bench", "load", "--scenario", str(path), "--address", "127.0.0.1:1"]) == 2
    assert "clients" in capsys.readouterr().err
