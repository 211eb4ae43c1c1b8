"""The scheduler on the cluster: searches through the gateway become access events, a cycle
promotes the hot memories into activation memory and Generate uses them; tier status, pause and
resume work over every transport (the tests that run the model, over gRPC); a killed scheduler restarts with its frequencies."""
import time

import pytest
import ray

from actors.names import SCHEDULER_ACTOR_NAME
from memos_cluster.core.errors import InvalidArgument, NotFound, Unavailable
from memos_cluster.core.tier_types import GenerateStats
from memos_cluster.core.types import NewMemory

FACTS = [NewMemory(text, id=f"s{i}") for i, text in enumerate([
    "The lighthouse keeper feeds the gulls at dawn",
    "The bakery on Mill Street sells rye bread on Tuesdays",
    "The ferry timetable changes on the first of May",
])]
SHIP_WAIT_S = 30


def wait_tracked(client, cube, memory_id, minimum):
    """Events reach the scheduler off the request path: poll its view."""
    deadline = time.monotonic() + SHIP_WAIT_S
    while time.monotonic() < deadline:
        rows = {r.memory_id: r for r in client.tier_status(cube).memories}
        if memory_id in rows and rows[memory_id].frequency >= minimum:
            return rows
        time.sleep(0.3)
    pytest.fail(f"{memory_id} never reached frequency {minimum}")


@pytest.mark.parametrize("client", ["grpc"], indirect=True)  # the model runs: one transport
def test_searches_promote_hot_memories_that_generate_then_uses(client, cube):
    client.add(cube, FACTS)
    for _ in range(6):  # default promote_frequency is 3 decayed accesses
        assert client.search(cube, "when does the lighthouse keeper feed the gulls",
                             top_k=1)[0].item.id == "s0"
    wait_tracked(client, cube, "s0", 5)
    status = client.scheduler("run")
    assert status.promoted >= 1 and status.events >= 6
    rows = {r.memory_id: r for r in client.tier_status(cube).memories}
    assert rows["s0"].tiers == ("plaintext", "activation")
    *_, stats = client.generate(cube, "who feeds the gulls?", max_new_tokens=3)
    assert isinstance(stats, GenerateStats) and stats.prefill_tokens_saved > 0
    migrations = client.tier_status(cube).migrations
    assert ("promote", "s0") in [(m.action, m.memory_id) for m in migrations]


def test_pause_resume_and_errors(client, cube):
    assert client.scheduler("pause").paused
    assert client.scheduler("run").promoted == 0  # paused: plans nothing
    assert not client.scheduler("resume").paused
    with pytest.raises(InvalidArgument):
        client.scheduler("explode")
    with pytest.raises(NotFound):
        client.tier_status("no-such-cube-for-tiers")


@pytest.mark.parametrize("client", ["grpc"], indirect=True)  # the model runs: one transport
def test_a_killed_scheduler_restarts_with_its_frequencies(client, cube, config):
    client.add(cube, FACTS)
    for _ in range(4):
        client.get(cube, ["s1"])
    before = wait_tracked(client, cube, "s1", 3.5)["s1"].frequency
    client.scheduler("run")  # also checkpoints
    ray.kill(ray.get_actor(SCHEDULER_ACTOR_NAME, namespace=config.ray.namespace),
             no_restart=False)
    deadline = time.monotonic() + 120
    while True:
        try:
            rows = {r.memory_id: r for r in client.tier_status(cube).memories}
            break
        except Unavailable:  # while it restarts
            assert time.monotonic() < deadline, "scheduler did not come back"
            time.sleep(0.5)
    # Restored from the checkpoint, decayed only by the seconds that passed.
    assert rows["s1"].frequency == pytest.approx(before, rel=0.05)
