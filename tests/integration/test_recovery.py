"""A shard actor killed mid-test comes back with every acknowledged write."""
import time

import pytest
import ray

from actors.names import shard_actor_name
from memos_cluster.core.errors import Unavailable
from memos_cluster.core.types import NewMemory

RECOVERY_DEADLINE_S = 120


@pytest.mark.parametrize("client", ["grpc"], indirect=True)  # the shard, not the transport
def test_killed_shard_restarts_with_every_acknowledged_write(client, cube, config):
    acked = []
    for batch in range(5):
        items = [NewMemory(f"fact {batch}-{i}: the code word is {batch * 10 + i}",
                           id=f"m{batch}-{i}") for i in range(10)]
        acked += list(client.add(cube, items).ids)
    client.update(cube, "m0-0", "fact 0-0 was revised")
    shard_id = client.get_cube(cube).shard_id

    actor = ray.get_actor(shard_actor_name(shard_id), namespace=config.ray.namespace)
    ray.kill(actor, no_restart=False)

    deadline = time.monotonic() + RECOVERY_DEADLINE_S
    unavailable = 0
    while True:
        try:
            result = client.get(cube, acked)
            break
        except Unavailable:  # expected while the actor restarts; never a hang
            unavailable += 1
            assert time.monotonic() < deadline, "shard did not come back"
            time.sleep(0.5)
    assert result.missing_ids == ()
    assert sorted(m.id for m in result.items) == sorted(acked)
    assert [m.version for m in client.history(cube, "m0-0")] == [1, 2]
    assert client.search(cube, "which code word is 42", top_k=3)[0].item.id == "m4-2"
    # And it takes writes again.
    assert client.add(cube, [NewMemory("after the restart", id="late")]).num_inserted == 1


def test_a_shard_on_the_previous_engines_data_answers_why_and_does_not_restart(config,
                                                                            tmp_path, running):
    """A shard whose data directory milvus-lite 2.5 cannot read (written by 3.x) stays up and
    answers every storage call, and Health, with the directory and the way to migrate; it is
    not restarted over and over. (A separate namespace and data dir: the session's shards are
    untouched.)"""
    from actors.shard import create_shard_actor
    from memos_cluster.core.config import with_overrides
    from memos_cluster.core.errors import FailedPrecondition

    old = with_overrides(config, {"data_dir": str(tmp_path), "ray.namespace": "memos-refused"})
    (old.shard_data_dir("shard-0") / "milvus.db" / "collections").mkdir(parents=True)
    actor = create_shard_actor(old, "shard-0")
    try:
        assert ray.get(actor.ready.remote(), timeout=60) == "shard-0"
        health = ray.get(actor.serve.remote("health", ""), timeout=30)
        assert not health.is_ok and "milvus-lite 3.x" in health.detail
        assert "memos-cluster export" in health.detail
        try:
            ray.get(actor.serve.remote("get_cube", "", "anything"), timeout=30)
            raise AssertionError("a refused shard served a read")
        except ray.exceptions.RayTaskError as exc:
            assert isinstance(exc.cause, FailedPrecondition)
            assert str(old.shard_data_dir("shard-0")) in exc.cause.message
        from ray.util.state import get_actor

        state = get_actor(actor._actor_id.hex())
        assert state.num_restarts == 0
    finally:
        ray.kill(actor, no_restart=True)
