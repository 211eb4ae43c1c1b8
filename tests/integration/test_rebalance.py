"""Resharding on the live cluster: cubes move while writers and readers keep going, and after
the move every acknowledged write is readable exactly once, from the cube's new owner. Then the
directory and the gateway restart and route by the persisted layout (not the configuration)."""
import time

import pytest
import ray

from actors.names import DIRECTORY_NAME
from memos_cluster.bench import write_load as drills
from memos_cluster.bench.write_load import WriteLoad, audit
from memos_cluster.client import MemosClient
from memos_cluster.core.types import NewMemory
from memos_cluster.placement.layout import Layout

NUM_CUBES = 12
WRITERS = 3
DEADLINE_S = 180  # for a rebalance to finish; it takes seconds
TWO, THREE = ("shard-0", "shard-1"), ("shard-0", "shard-1", "shard-2")


@pytest.fixture
def grpc_client(grpc_address):
    with MemosClient(grpc_address, timeout_s=60) as client:
        yield client


def wait_rebalanced(client):
    status = drills.wait_rebalanced(client, DEADLINE_S)
    assert status.rebalance.state == "done", status.rebalance
    return status


def owners(client) -> dict:
    """Every cube in the cluster -> the shard holding it."""
    return {cube: s.shard_id for s in client.shards().shards for cube in s.cube_items}


def check(client, cubes, expected):
    """Every acknowledged id once, nothing else, each cube on exactly one shard."""
    result = audit(client, expected)
    assert result.ok, result
    status = client.shards()
    for cube in cubes:
        holders = [s.shard_id for s in status.shards if cube in s.cube_items]
        assert holders == [client.get_cube(cube).shard_id], holders
    hits = client.search(cubes, "seed fact", top_k=50)
    assert len({(h.item.cube_id, h.item.id) for h in hits}) == len(hits)
    return status


def test_resharding_under_load_loses_and_duplicates_nothing(grpc_client, grpc_address, config):
    client = grpc_client
    cubes, seeded = drills.seed_cubes(client, "rebalance", NUM_CUBES, 5)
    before = {c: client.get_cube(c).shard_id for c in cubes}
    placed = owners(client)  # every cube of the session: other tests' cubes move too
    address = grpc_address
    try:
        with WriteLoad(address, cubes, writers=WRITERS, tag="a") as load:
            time.sleep(1)
            started = client.reshard(THREE)
            assert started.rebalance.state in ("running", "done")
            wait_rebalanced(client)
            time.sleep(1)  # writes keep landing after the move
        report = load.report
        assert report.searches > 0 and all(report.acked.values()) and not report.failures
        expected = {c: seeded[c] | report.acked[c] for c in cubes}
        status = check(client, cubes, expected)
        assert [s.shard_id for s in status.shards] == list(THREE)
        after = {c: client.get_cube(c).shard_id for c in cubes}
        moved = {c for c in cubes if after[c] != before[c]}
        assert moved and all(after[c] == "shard-2" for c in moved)  # only to the new shard
        moved_all = {c for c, shard in owners(client).items() if placed.get(c) != shard}
        assert status.rebalance.moves_done == len(moved_all)  # no move that was not needed

        restart_directory_and_gateway(config)
        client.wait_ready(timeout_s=DEADLINE_S)
        routed = {c: client.get_cube(c).shard_id for c in cubes}  # 3-shard layout, not config
        assert routed == after

        with WriteLoad(address, cubes, writers=WRITERS, tag="b") as load2:
            client.reshard(TWO)
            wait_rebalanced(client)
        assert not load2.report.failures, (load2.report.last_error, client.shards())
        expected = {c: expected[c] | load2.report.acked[c] for c in cubes}
        status = check(client, cubes, expected)
        assert [s.shard_id for s in status.shards] == list(TWO)
        assert {c: client.get_cube(c).shard_id for c in cubes} == before
    finally:
        if client.shards().rebalance.state != "running":
            client.reshard(TWO)
            wait_rebalanced(client)
        for cube in cubes:
            client.delete_cube(cube)


def restart_directory_and_gateway(config):
    """Kill the directory (Ray restarts it; it reloads the layout) and every gateway replica
    (Serve replaces them; they fetch the layout), then wait until the gateway answers."""
    directory = ray.get_actor(DIRECTORY_NAME, namespace=config.ray.namespace)
    ray.kill(directory, no_restart=False)
    replicas = [a for a in ray.util.list_named_actors(all_namespaces=True)
                if a["name"].startswith("SERVE_REPLICA") and "MemoryGateway" in a["name"]]
    assert replicas, "no gateway replica found"
    for replica in replicas:
        ray.kill(ray.get_actor(replica["name"], namespace=replica["namespace"]), no_restart=True)
    deadline = time.monotonic() + DEADLINE_S
    while True:
        try:
            layout = ray.get(ray.get_actor(DIRECTORY_NAME, namespace=config.ray.namespace)
                             .layout.remote(), timeout=30)
            break
        except ray.exceptions.RayError:
            assert time.monotonic() < deadline
            time.sleep(0.5)
    assert isinstance(layout, Layout) and layout.shard_ids == THREE


def test_concurrent_writers_of_the_same_ids_store_each_once(grpc_address, grpc_client):
    """Many clients (think retries after UNAVAILABLE) add overlapping batches with the same ids
    to one cube at once: every id is stored once, and exactly one add reports inserting it."""
    import threading

    cube = "same-ids"
    grpc_client.create_cube(cube)
    inserted, errors = [], []

    def writer(w):
        with MemosClient(grpc_address, timeout_s=60) as client:
            for start in range(0, 40, 10):
                batch = [NewMemory(f"shared fact {i}", id=f"f{i}")
                         for i in range(start, start + 10 + 5 * (w % 2))]
                try:
                    inserted.append(client.add(cube, batch).num_inserted)
                except Exception as exc:  # collected: the assertion below names it
                    errors.append(repr(exc))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    try:
        assert not errors
        stored = grpc_client.get_cube(cube).num_memories
        assert stored == sum(inserted) == 45  # f0..f44, each inserted by exactly one call
        got = grpc_client.get(cube, [f"f{i}" for i in range(45)])
        assert got.missing_ids == () and len({m.id for m in got.items}) == 45
    finally:
        grpc_client.delete_cube(cube)
