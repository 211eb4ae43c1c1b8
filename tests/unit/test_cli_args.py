"""Argument handling of the CLI (no cluster): every command can find its gateway address."""
import pytest

from memos_cluster.cli import _address, build_parser
from memos_cluster.config import MemosConfig, with_overrides

CONFIG = with_overrides(MemosConfig(), {"gateway.grpc_port": 9123})


@pytest.mark.parametrize("argv", [["up"], ["demo"], ["status"], ["search", "q", "--cube", "c"],
                                  ["ingest", "f.jsonl"], ["bench", "locomo"]])
def test_every_command_resolves_the_configured_address(argv):
    assert _address(build_parser().parse_args(argv), CONFIG) == "127.0.0.1:9123"


def test_an_explicit_address_wins():
    args = build_parser().parse_args(["status", "--address", "10.0.0.1:1"])
    assert _address(args, CONFIG) == "10.0.0.1:1"
