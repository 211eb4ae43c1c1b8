"""Resharding on the live cluster: cubes move while writers and readers keep going, and after
the move every acknowledged write is readable exactly once, from the cube's new owner. Then the
directory and the gateway restart and route by the persisted layout (not the configuration)."""
import threading
import time

import pytest
import ray

from actors.handles import DIRECTORY_NAME
from memos_cluster.client import MemosClient
from memos_cluster.errors import Unavailable
from memos_cluster.layout import Layout
from memos_cluster.types import NewMemory

from conftest import client_address

NUM_CUBES = 12
WRITERS = 3
DEADLINE_S = 180  # for a rebalance to finish; it takes seconds
TWO, THREE = ("shard-0", "shard-1"), ("shard-0", "shard-1", "shard-2")


@pytest.fixture
def grpc_client(running, config):
    with MemosClient(client_address("grpc", running, config), timeout_s=60) as client:
        yield client


class Load:
    """Writers adding uniquely-id'd memories to every cube (retrying a refused batch with the
    same ids, which is idempotent) and a reader searching, until stopped."""

    def __init__(self, address, cubes):
        self.address, self.cubes = address, cubes
        self.acked = {c: set() for c in cubes}
        self.errors: list[str] = []
        self.searches = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._write, args=(w,)) for w in range(WRITERS)]
        self._threads.append(threading.Thread(target=self._read))

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join(120)

    def _write(self, writer):
        with MemosClient(self.address, timeout_s=60) as client:
            n = 0
            while not self._stop.is_set():
                for cube in self.cubes:
                    items = [NewMemory(f"writer {writer} note {n}-{i} for {cube}",
                                       id=f"w{writer}-{n}-{i}") for i in range(3)]
                    self._add(client, cube, items)
                n += 1

    def _add(self, client, cube, items):
        for _ in range(20):
            try:
                self.acked[cube].update(client.add(cube, items).ids)
                return
            except Unavailable as exc:  # a shard restarting: retry the same ids
                self.errors.append(exc.message)
                time.sleep(0.5)
        raise AssertionError(f"writes to {cube} kept failing: {self.errors[-3:]}")

    def _read(self):
        with MemosClient(self.address, timeout_s=60) as client:
            while not self._stop.is_set():
                client.search(self.cubes, "note for", top_k=5)
                self.searches += 1


def wait_rebalanced(client):
    deadline = time.monotonic() + DEADLINE_S
    status = client.shards()
    while status.rebalance.state == "running" or status.pending_moves:
        assert status.rebalance.state != "failed", status.rebalance.error
        assert time.monotonic() < deadline, f"rebalance stuck: {status.rebalance}"
        time.sleep(0.5)
        status = client.shards()
    assert status.rebalance.state == "done", status.rebalance
    return status


def audit(client, load, seeded):
    """Every acknowledged id once, nothing else, each cube on exactly one shard."""
    status = client.shards()
    for cube in load.cubes:
        expected = seeded[cube] | load.acked[cube]
        got = client.get(cube, sorted(expected))
        assert got.missing_ids == ()
        ids = [m.id for m in got.items]
        assert len(ids) == len(set(ids)) == len(expected)
        assert client.get_cube(cube).num_memories == len(expected)
        holders = [s.shard_id for s in status.shards if cube in s.cube_items]
        assert holders == [client.get_cube(cube).shard_id], holders
    hits = client.search(load.cubes, "seed fact", top_k=50)
    assert len({(h.item.cube_id, h.item.id) for h in hits}) == len(hits)
    return status


def test_resharding_under_load_loses_and_duplicates_nothing(grpc_client, running, config):
    client = grpc_client
    cubes = [f"rebalance-{i}" for i in range(NUM_CUBES)]
    seeded = {}
    for cube in cubes:
        client.create_cube(cube)
        seeded[cube] = set(client.add(cube, [NewMemory(f"seed fact {i} of {cube}", id=f"s{i}")
                                             for i in range(5)]).ids)
    before = {c: client.get_cube(c).shard_id for c in cubes}
    address = client_address("grpc", running, config)
    try:
        with Load(address, cubes) as load:
            time.sleep(1)
            started = client.reshard(THREE)
            assert started.rebalance.state in ("running", "done")
            status = wait_rebalanced(client)
            time.sleep(1)  # writes keep landing after the move
        assert load.searches > 0 and all(load.acked.values())
        status = audit(client, load, seeded)
        assert [s.shard_id for s in status.shards] == list(THREE)
        after = {c: client.get_cube(c).shard_id for c in cubes}
        moved = {c for c in cubes if after[c] != before[c]}
        assert moved and all(after[c] == "shard-2" for c in moved)  # only to the new shard
        assert status.rebalance.moves_done == len(moved)

        restart_directory_and_gateway(config)
        client.wait_ready(timeout_s=DEADLINE_S)
        routed = {c: client.get_cube(c).shard_id for c in cubes}  # 3-shard layout, not config
        assert routed == after

        with Load(address, cubes) as load2:
            client.reshard(TWO)
            wait_rebalanced(client)
        load2.acked = {c: load.acked[c] | load2.acked[c] for c in cubes}
        status = audit(client, load2, seeded)
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
