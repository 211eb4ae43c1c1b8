from collections import Counter

import pytest

from memos_cluster.placement.shardmap import HashRing, shard_names

CUBES = [f"cube-{i}" for i in range(5000)]


def test_routing_is_deterministic_across_instances():
    a = HashRing(shard_names(4), 64)
    b = HashRing(shard_names(4), 64)
    assert [a.shard_for(c) for c in CUBES] == [b.shard_for(c) for c in CUBES]


def test_virtual_nodes_spread_cubes_evenly():
    ring = HashRing(shard_names(4), 128)
    counts = Counter(ring.shard_for(c) for c in CUBES)
    assert set(counts) == set(shard_names(4))
    assert max(counts.values()) / min(counts.values()) < 1.6


def test_adding_a_shard_moves_only_cubes_that_change_owner():
    before = HashRing(shard_names(4), 64)
    after = before.with_shards(shard_names(5))
    moved = [c for c in CUBES if before.shard_for(c) != after.shard_for(c)]
    # Every moved cube moves to the new shard, and roughly 1/5 of the cubes move.
    assert all(after.shard_for(c) == "shard-4" for c in moved)
    assert 0.1 < len(moved) / len(CUBES) < 0.3


def test_group_by_shard_keeps_every_cube_once():
    ring = HashRing(shard_names(3), 16)
    groups = ring.group_by_shard(CUBES[:50])
    assert sorted(c for cubes in groups.values() for c in cubes) == sorted(CUBES[:50])
    for shard, cubes in groups.items():
        assert all(ring.shard_for(c) == shard for c in cubes)


@pytest.mark.parametrize("shards,vnodes", [((), 8), (("a", "a"), 8), (("a",), 0)])
def test_bad_rings_raise(shards, vnodes):
    with pytest.raises(ValueError):
        HashRing(shards, vnodes)
