"""The console script against the session's gateway, as a user would run it."""
import json
import subprocess
import sys

import pytest

from memos_cluster.cli.main import main
from memos_cluster.core.types import NewMemory


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "memos_cluster.cli.main", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("client", ["grpc"], indirect=True)  # the CLI speaks gRPC here
def test_ingest_search_and_status(running, client, tmp_path):
    path = tmp_path / "notes.jsonl"
    rows = [{"id": f"n{i}", "text": f"Note {i}: the build server number {i} needs a new disk",
             "metadata": {"rack": i % 3}} for i in range(40)]
    rows.append({"id": "needle", "text": "The wifi password is written under the router"})
    path.write_text("\n".join(json.dumps(r) for r in rows))
    cube = "cli-notes"
    try:
        done = run_cli("ingest", str(path), "--cube", cube, "--batch-size", "16",
                       "--address", running.grpc_address)
        assert done.returncode == 0, done.stderr
        assert f"{cube}: 41 inserted" in done.stdout
        again = run_cli("ingest", str(path), "--cube", cube, "--address", running.grpc_address)
        assert f"{cube}: 0 inserted, 41 already present" in again.stdout
        found = run_cli("search", "where is the wifi password", "--cube", cube,
                        "--top-k", "1", "--explain", "--address", running.grpc_address)
        assert found.returncode == 0 and f"{cube}/needle" in found.stdout
        assert "dense #1 (" in found.stdout and "bm25 #1 (" in found.stdout  # --explain
        status = run_cli("status", "--address", running.grpc_address)
        assert "shard-0: ok" in status.stdout and f"cube {cube}: 41 memories" in status.stdout
    finally:
        client.delete_cube(cube)


def test_errors_are_one_line_and_a_nonzero_exit(running, capsys):
    code = main(["search", "q", "--cube", "no-such-cube", "--address", running.grpc_address])
    assert code == 2
    assert "NotFound: cube 'no-such-cube' does not exist" in capsys.readouterr().err


def test_activate_and_generate_commands(running):
    from memos_cluster.client import MemosClient

    cube = "cli-activation"
    with MemosClient(running.grpc_address) as client:
        client.create_cube(cube)
        try:
            client.add(cube, ["The spare key is under the blue pot", "The cat is called Miso"])
            ids = [h.item.id for h in client.search(cube, "key", top_k=2)]
            done = run_cli("activate", *ids, "--cube", cube, "--address", running.grpc_address)
            assert done.returncode == 0 and f"{cube}: block of " in done.stdout, done.stderr
            out = run_cli("generate", "where is the key?", "--cube", cube,
                          "--max-new-tokens", "4", "--address", running.grpc_address)
            assert out.returncode == 0, out.stderr
            assert "[4 tokens, length" in out.stdout and "from activation memory]" in out.stdout
            bad = run_cli("generate", "q", "--cube", "no-such-cube", "--address",
                          running.grpc_address)
            assert bad.returncode == 2 and "NotFound" in bad.stderr
        finally:
            client.delete_cube(cube)


def test_chat_command_piped(running):
    from memos_cluster.client import MemosClient

    cube = "cli-chat"
    with MemosClient(running.grpc_address) as client:
        client.create_cube(cube)
        try:
            client.add(cube, ["The spare key is under the blue pot"])
            out = subprocess.run(
                [sys.executable, "-m", "memos_cluster.cli.main", "chat", "--cube", cube,
                 "--max-new-tokens", "3", "--name", "sam", "--address", running.grpc_address],
                input="I painted the pot blue.\n\nwhere is the key?\n", capture_output=True,
                text=True,
                timeout=120)
            assert out.returncode == 0, out.stderr
            turns = [line for line in out.stdout.splitlines() if line.startswith("[")]
            assert len(turns) == 2 and "memories: " in turns[0], out.stdout
            assert turns[0].startswith("[") and "prompt tokens reused" in turns[0]
            reused = int(turns[1][1:].split(" of ")[0])
            assert reused > 0  # the second turn reuses the first
            assert "remembered as chat-" in turns[0] and "remembered" not in turns[1]
            texts = [m.text for m in client.list_memories(cube).items]
            assert "sam: I painted the pot blue." in texts
        finally:
            client.delete_cube(cube)


def test_adapters_commands(running):
    from memos_cluster.client import MemosClient

    cube = "cli-adapters"
    address = ("--address", running.grpc_address)
    with MemosClient(running.grpc_address) as client:
        client.create_cube(cube)
        try:
            client.add(cube, [NewMemory("Ivo grows chillies on the balcony", id="a"),
                              NewMemory("Ivo's dog is called Pepper", id="b")])
            trained = run_cli("adapters", "train", "a", "b", "--cube", cube, "--steps", "3",
                              "--rank", "2", "--wait", *address)
            assert trained.returncode == 0, trained.stderr
            assert "succeeded: adapter v1" in trained.stdout
            listed = run_cli("adapters", "list", "--cube", cube, *address)
            assert "v1 current 2 memories" in listed.stdout and "adapter_loss" in listed.stdout
            shown = run_cli("adapters", "show", "--cube", cube, "--version", "1", *address)
            assert "trained on: a@1, b@1" in shown.stdout
            gone = run_cli("adapters", "delete", "--cube", cube, "--version", "1", *address)
            assert gone.returncode == 0
            assert run_cli("adapters", "list", "--cube", cube, *address).stdout == ""
            missing = run_cli("adapters", "job", "no-such-job", *address)
            assert missing.returncode == 2 and "NotFound" in missing.stderr
        finally:
            client.delete_cube(cube)
