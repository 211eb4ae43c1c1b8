"""Argument handling of the CLI (no cluster): every command can find its gateway address."""
import pytest

from memos_cluster.cli.common import gateway_address
from memos_cluster.cli.main import build_parser
from memos_cluster.core.config import MemosConfig, with_overrides

CONFIG = with_overrides(MemosConfig(), {"gateway.grpc_port": 9123})


@pytest.mark.parametrize("argv", [["up"], ["demo"], ["status"], ["search", "q", "--cube", "c"],
                                  ["ingest", "f.jsonl"], ["bench", "locomo"]])
def test_every_command_resolves_the_configuredgateway_address(argv):
    assert gateway_address(build_parser().parse_args(argv), CONFIG) == "127.0.0.1:9123"


def test_an_explicit_address_wins():
    args = build_parser().parse_args(["status", "--address", "10.0.0.1:1"])
    assert gateway_address(args, CONFIG) == "10.0.0.1:1"


def test_up_stops_on_repeated_signals_without_deadlock():
    # Several SIGINTs in a burst (Ctrl-C twice, or a wrapper forwarding one too) once deadlocked
    # `up` in a handler that took a lock; now the first one ends the wait.
    import os
    import signal
    import threading

    from memos_cluster.cli.main import wait_for_stop_signal

    def late(signum, frame):  # signals of the burst that arrive after the wait has ended
        pass

    original = signal.signal(signal.SIGINT, late)
    try:
        burst = threading.Timer(0.2, lambda: [os.kill(os.getpid(), signal.SIGINT)
                                              for _ in range(5)])
        burst.start()
        assert wait_for_stop_signal(poll_s=0.01) == signal.SIGINT
        burst.join()
        assert signal.getsignal(signal.SIGINT) is late  # the previous handler is back
    finally:
        signal.signal(signal.SIGINT, original)


def test_up_refuses_a_data_directory_of_the_previous_engine_before_starting(tmp_path, capsys):
    from memos_cluster.cli.main import main

    (tmp_path / "shards" / "shard-0" / "milvus.db" / "collections").mkdir(parents=True)
    assert main(["--set", f"data_dir={tmp_path}", "up"]) == 2  # ray.init is forbidden here
    err = capsys.readouterr().err
    assert "StorageRefused" in err and str(tmp_path / "shards" / "shard-0" / "milvus.db") in err
    assert "memos-cluster export" in err


def test_mcp_config_prints_a_streamable_http_entry_and_no_key_unless_given(capsys):
    import json

    from memos_cluster.cli.main import main

    assert main(["--set", "gateway.http_port=8123", "mcp-config"]) == 0
    entry = json.loads(capsys.readouterr().out)["mcpServers"]["memos"]
    assert entry["type"] == "http" and entry["url"] == "http://127.0.0.1:8123/mcp"
    assert "key create" in entry["headers"]["Authorization"]
    assert main(["mcp-config", "--key", "k1.secret", "--name", "team"]) == 0
    assert json.loads(capsys.readouterr().out)["mcpServers"]["team"]["headers"] == {
        "Authorization": "Bearer k1.secret"}
