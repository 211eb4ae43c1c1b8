"""The rebalancer over in-process shards (real milvus-lite tiers behind their guards, no Ray):
cubes move while a writer keeps adding through MemoryService, with embedded storage (a copy per
move) and with one shared Milvus (no data moves); an interrupted copy is resumed."""
import asyncio
import threading

import pytest

from memos_cluster.core.config import MemosConfig, with_overrides
from memos_cluster.core.types import CubeSpec, MemoryUpdate, NewMemory
from memos_cluster.embed import make_embedder
from memos_cluster.placement.layout import Layout, LayoutStore
from memos_cluster.placement.ownership import CubeGuard, GuardedShard
from memos_cluster.placement.rebalance import Rebalancer
from memos_cluster.placement.shardmap import shard_names
from memos_cluster.tiers.plaintext.service import LocalShard, MemoryService
from memos_cluster.tiers.plaintext.tier import PlaintextTier

CUBES = [f"cube-{i}" for i in range(8)]


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    return make_embedder(MemosConfig().embedder, str(tmp_path_factory.mktemp("models")))


class LocalShards:
    """ShardOps over in-process guarded tiers; `fail_copy` makes the next copy raise once."""

    def __init__(self, config, embedder, shared):
        self.config, self.embedder, self.shared = config, embedder, shared
        self.shards: dict[str, GuardedShard] = {}
        self.retired: list[str] = []
        self.fail_copy = False

    def prepare(self, shard_ids):
        for s in shard_ids:
            if s not in self.shards:
                tier = PlaintextTier(self.config, s, self.embedder)
                tier.open()
                self.shards[s] = GuardedShard(tier, CubeGuard(s), self.shared)

    def push(self, shard_ids, layout):
        for s in shard_ids:
            self.shards[s].guard.set_layout(layout)

    def freeze_creates(self, shard_ids, frozen):
        for s in shard_ids:
            self.shards[s].guard.freeze_creates(frozen)

    def holdings(self, shard_ids):
        return {s: self.shards[s].held_cubes() for s in shard_ids}

    def fence(self, shard_id, cube_id, timeout_s):
        self.shards[shard_id].guard.fence(cube_id, timeout_s)

    def unfence(self, shard_id, cube_id):
        self.shards[shard_id].guard.unfence(cube_id)

    def _maybe_fail(self):
        if self.fail_copy:
            self.fail_copy = False
            raise RuntimeError("copy interrupted")

    def copy(self, source, target, cube_id):
        self._maybe_fail()
        return self.shards[target].tier.transfer.import_cube(
            self.shards[source].tier.transfer.export_cube(cube_id))

    def adopt(self, shard_id, cube_id):
        self._maybe_fail()
        self.shards[shard_id].tier.transfer.adopt_cube(cube_id)

    def drop(self, shard_id, cube_id):
        self.shards[shard_id].drop_moved_cube(cube_id)

    def retire(self, shard_id):
        self.retired.append(shard_id)

    def close(self):
        for shard in self.shards.values():
            shard.tier.close()


@pytest.fixture(params=["embedded", "shared"])
def world(request, tmp_path, embedder):
    shared = request.param == "shared"
    # The reader in-process: a worker process a tier would cost seconds a test
    # (tests/unit/test_reader_process.py covers it).
    config = with_overrides(MemosConfig(), {"reader.own_process": False,
        "data_dir": str(tmp_path),
        "storage.milvus_uri": str(tmp_path / "shared.db") if shared else None})
    shards = LocalShards(config, embedder, shared)
    store = LayoutStore(config.layout_path())
    rebalancer = Rebalancer(store, shards, lambda: Layout(shard_names(2), 16), shared, 10.0)
    layout = rebalancer.current()
    shards.prepare(layout.live_shards())
    shards.push(layout.live_shards(), layout)
    service = MemoryService(config, layout, lambda s: LocalShard(shards.shards[s]),
                            refresh=lambda: _ready(store.load()))  # what a directory serves
    yield service, rebalancer, shards, store
    shards.close()


async def _ready(value):
    return value


def run(coro):
    return asyncio.run(coro)


def test_resharding_with_a_writer_running_keeps_every_write_once(world):
    service, rebalancer, shards, store = world
    acked = {c: set() for c in CUBES}
    for cube in CUBES:
        run(service.create_cube(CubeSpec(cube)))
        acked[cube] |= set(run(service.add(cube, [NewMemory(f"seed of {cube}", id="seed")])).ids)
    run(service.update(MemoryUpdate(CUBES[0], "seed", text="seed revised")))
    stop = threading.Event()

    def writer():
        n = 0
        while not stop.is_set():
            for cube in CUBES:
                ids = run(service.add(cube, [NewMemory(f"note {n} of {cube}", id=f"n{n}")])).ids
                acked[cube] |= set(ids)
            n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        new = rebalancer.start(shard_names(3))
        assert new.pins and {m.target for m in new.moves()} == {"shard-2"}
        shards.fail_copy = True  # the first copy fails: that cube stays where it is, served
        assert rebalancer.run_moves().state == "failed"
        assert rebalancer.current().pins and not rebalancer.current().moving
        resumed = Rebalancer(store, shards, lambda: None, shards.shared, 10.0)  # a restart
        assert resumed.run_moves().state == "done"
    finally:
        stop.set()
        thread.join()
    layout = resumed.current()
    assert not layout.pins and layout.shard_ids == shard_names(3)
    for cube in CUBES:
        got = run(service.get(cube, sorted(acked[cube])))
        assert got.missing_ids == () and len(got.items) == len(acked[cube])
        stats = run(service.get_cube(cube))
        assert stats.num_memories == len(acked[cube]) and stats.shard_id == layout.owner(cube)
    assert [m.version for m in run(service.history(CUBES[0], "seed"))] == [1, 2]
    held = shards.holdings(layout.live_shards())
    assert sorted(c for cubes in held.values() for c in cubes) == sorted(CUBES)  # once each
    assert [c.cube_id for c in run(service.list_cubes())] == sorted(CUBES)
    # Shrinking back retires the shard that left.
    resumed.start(shard_names(2))
    assert resumed.run_moves().state == "done" and shards.retired == ["shard-2"]
    assert all(run(service.get_cube(c)).num_memories == len(acked[c]) for c in CUBES)
