"""`memos-cluster reindex` (actors/reindex.py, memos_cluster/cli/reindex.py) against the session's
cluster: this test process is a driver of it, so the reindex loop runs here over the shard
actors as the command does. A pass runs to completion and says so in its checkpoint; a new pass
over the same memories changes nothing; a pass stopped after its first batch resumes from the
checkpoint; `--submit` runs the command as a Ray job. Then `entities` and `entity` print the
graph through the gateway."""
import json

import pytest

from memos_cluster.cli.main import build_parser, main
from memos_cluster.client import MemosClient
from memos_cluster.core.types import NewMemory

MEMORIES = [
    NewMemory("Caroline went to the LGBTQ support group in Boston yesterday.", id="m0",
              event_time_ms=1_683_417_600_000),  # 7 May 2023
    NewMemory("Melanie painted a sunrise over the lake last weekend.", id="m1",
              event_time_ms=1_683_936_000_000),
    NewMemory("Caroline is researching adoption agencies in Sweden.", id="m2",
              event_time_ms=1_684_972_800_000),
    NewMemory("Melanie and Caroline met for coffee on Friday.", id="m3",
              event_time_ms=1_685_577_600_000),
    NewMemory("Caroline moved from Sweden four years ago.", id="m4",
              event_time_ms=1_687_824_000_000),
]


@pytest.fixture
def notes(running, config, grpc_address):
    """A cube holding MEMORIES; the cube and its reindex checkpoint are removed afterwards."""
    from actors.reindex import checkpoint_path

    cube = "reindex-notes"
    with MemosClient(grpc_address, timeout_s=120) as client:
        client.create_cube(cube)
        try:
            assert client.add(cube, MEMORIES).num_inserted == len(MEMORIES)
            yield cube
        finally:
            client.delete_cube(cube)
            checkpoint_path(config, cube).unlink(missing_ok=True)


def checkpoint(config, cube: str) -> dict:
    from actors.reindex import checkpoint_path

    return json.loads(checkpoint_path(config, cube).read_text())


def test_a_pass_completes_and_a_new_pass_changes_nothing(notes, config):
    from actors.reindex import reindex_cube

    first = reindex_cube(config, notes, batch_size=2)
    assert first.state.complete and first.read == len(MEMORIES)
    saved = checkpoint(config, notes)
    assert saved["complete"] and saved["num_read"] == len(MEMORIES)
    assert saved["total"] == len(MEMORIES)
    again = reindex_cube(config, notes, batch_size=2)  # complete: nothing to do
    assert again.already_complete and again.read == 0
    second = reindex_cube(config, notes, batch_size=3, restart=True)
    assert second.state.complete and second.read == len(MEMORIES)
    assert second.changed == 0 and checkpoint(config, notes)["num_changed"] == 0


def test_a_stopped_pass_resumes_from_its_checkpoint(notes, config):
    from actors.reindex import reindex_cube

    seen = []
    stopped = reindex_cube(config, notes, batch_size=2, restart=True, max_batches=1,
                           on_step=lambda step, state: seen.append(step))
    assert len(seen) == 1 and seen[0].num_read == 2 and seen[0].next_after == "m1"
    assert not stopped.state.complete
    saved = checkpoint(config, notes)
    assert not saved["complete"] and saved["after_id"] == "m1" and saved["num_read"] == 2
    resumed = reindex_cube(config, notes, batch_size=2, on_step=lambda s, _: seen.append(s))
    assert resumed.earlier_read == 2 and resumed.read == len(MEMORIES) - 2
    assert [s.next_after for s in seen] == ["m1", "m3", None]
    assert checkpoint(config, notes)["complete"]


def test_the_reindex_command_prints_its_summary(notes, config, capsys):
    from memos_cluster.cli.reindex import cmd_reindex

    args = build_parser().parse_args(["reindex", "--cube", notes, "--batch-size", "2",
                                      "--restart"])
    assert cmd_reindex(args, config) == 0
    out = capsys.readouterr().out
    assert f"reindexed {len(MEMORIES)} memories of cube {notes}, 0 changed, in " in out
    assert cmd_reindex(build_parser().parse_args(["reindex", "--cube", notes]), config) == 0
    assert f"cube {notes} was reindexed already" in capsys.readouterr().out


def test_submit_runs_the_command_as_a_ray_job(notes, config, capsys):
    dashboard = f"http://127.0.0.1:{config.ray.dashboard_port}"
    argv = ["--set", f"data_dir={config.data_dir}", "reindex", "--cube", notes,
            "--batch-size", "2", "--restart", "--submit", "--dashboard", dashboard]
    assert main(argv) == 0, capsys.readouterr().err
    logs = capsys.readouterr().out  # the job's log, followed
    assert "submitted Ray job" in logs
    assert f"reindexed {len(MEMORIES)} memories of cube {notes}, 0 changed, in " in logs
    assert checkpoint(config, notes)["complete"]


def test_entities_and_entity_print_the_graph(notes, running, capsys):
    address = ("--cube", notes, "--address", running.grpc_address)
    assert main(["entities", *address]) == 0
    listing = capsys.readouterr().out
    assert listing.splitlines()[0].split() == ["name", "label", "mentions", "aliases"]
    assert "Caroline" in listing and f"entities of cube {notes}" in listing
    assert main(["entities", "--name", "carol", "--limit", "1", *address]) == 0
    assert "Caroline" in capsys.readouterr().out
    assert main(["entity", "Caroline", *address]) == 0
    detail = capsys.readouterr().out
    assert detail.startswith("Caroline (") and "\nmemories (" in detail
    assert "  m0  2023-05-07  Caroline went to the LGBTQ support group" in detail
    assert main(["entity", "Nobody Atall", *address]) == 2
    err = capsys.readouterr().err
    assert err.startswith("memos-cluster entity: NotFound: ") and err.count("\n") == 1
