"""The full CRUD and history cycle and search, through the real gRPC gateway."""
import pytest

from memos_cluster.core.types import NewMemory, SearchFilter, SearchMode, TimeRange
from memos_cluster.placement.shardmap import HashRing, shard_names

FACTS = [
    NewMemory("Caroline adopted a grey cat called Miso", id="pet",
              metadata={"who": "caroline", "session": 1}, event_time_ms=1_000, source="chat"),
    NewMemory("Melanie runs marathons every spring", id="run",
              metadata={"who": "melanie", "session": 2}, event_time_ms=5_000),
    NewMemory("The quarterly budget review moved to Thursday", id="work", memory_type="task"),
]


def test_full_crud_and_history_cycle(client, cube):
    added = client.add(cube, FACTS + [NewMemory("a memory without an id")])
    assert added.num_inserted == 4 and added.ids[:3] == ("pet", "run", "work")
    generated = added.ids[3]
    assert len(generated) == 32

    got = client.get(cube, ["pet", generated, "nope"])
    assert [m.id for m in got.items] == ["pet", generated] and got.missing_ids == ("nope",)
    pet = got.items[0]
    assert (pet.text, pet.metadata, pet.event_time_ms, pet.source, pet.version) == (
        FACTS[0].text, {"who": "caroline", "session": 1}, 1_000, "chat", 1)

    updated = client.update(cube, "pet", "Caroline adopted two cats, Miso and Tofu",
                            expected_version=1)
    assert updated.version == 2 and updated.metadata == pet.metadata
    history = client.history(cube, "pet")
    assert [(m.version, m.text) for m in history] == [
        (1, FACTS[0].text), (2, "Caroline adopted two cats, Miso and Tofu")]

    stats = client.get_cube(cube)
    assert (stats.num_memories, stats.num_history_versions) == (4, 1)
    assert cube in [c.cube_id for c in client.list_cubes()]

    deleted = client.delete(cube, ["run", "ghost"])
    assert (deleted.num_deleted, deleted.missing_ids) == (1, ("ghost",))
    assert client.get(cube, ["run"]).missing_ids == ("run",)
    assert client.get_cube(cube).num_memories == 3


def test_hybrid_search_finds_the_right_item(client, cube):
    client.add(cube, FACTS)
    for mode in (None, SearchMode.HYBRID, SearchMode.DENSE, SearchMode.BM25):
        hits = client.search(cube, "what kind of pet does Caroline own?", top_k=2, mode=mode)
        assert hits[0].item.id == "pet", mode
        assert hits[0].tier == "plaintext"
    hits = client.search(cube, "when is the budget meeting", top_k=1)
    assert hits[0].item.id == "work"


def test_explain_shows_each_hits_ranks_and_score_parts(client, cube):
    client.add(cube, FACTS)
    plain = client.search(cube, "when is the budget meeting", top_k=3)
    assert all(h.explain is None for h in plain)
    hits = client.search(cube, "when is the budget meeting", top_k=3, explain=True)
    assert [h.item.id for h in hits] == [h.item.id for h in plain]
    for hit in hits:
        p = hit.explain
        assert p.fused + p.neighbour + p.date + p.when + p.entity == pytest.approx(hit.score)
    top = hits[0].explain
    assert top.bm25_rank == 1 and top.dense_rank >= 1 and top.bm25_score > 0
    bm25 = client.search(cube, "budget meeting", top_k=1, mode=SearchMode.BM25, explain=True)
    assert bm25[0].explain.bm25_rank == 1 and bm25[0].explain.dense_rank == 0
    assert bm25[0].explain.bm25_score == pytest.approx(bm25[0].score)
    named = client.search(cube, "what does Caroline own", top_k=3, explain=True)
    assert [h.explain.entity > 0 for h in named] == [h.item.id == "pet" for h in named]


def test_structured_filters(client, cube):
    client.add(cube, FACTS)
    def ids(flt):
        return sorted(h.item.id for h in client.search(cube, "Caroline", top_k=10, filter=flt))
    assert ids(SearchFilter(memory_types=("task",))) == ["work"]
    assert ids(SearchFilter(metadata_equals=(("session", 2),))) == ["run"]
    assert ids(SearchFilter(sources=("chat",))) == ["pet"]
    assert ids(SearchFilter(event_time=TimeRange(start_ms=2_000))) == ["run"]
    # Expression syntax inside a value is just a value: it matches nothing and leaks nothing.
    assert ids(SearchFilter(metadata_equals=(("who", 'x" or cube_id != "'),))) == []


def test_search_over_cubes_on_different_shards(client, config):
    ring = HashRing(shard_names(config.cluster.num_shards), config.cluster.virtual_nodes)
    cubes = [f"multi-{i}" for i in range(8)]
    assert len({ring.shard_for(c) for c in cubes}) == 2
    try:
        for i, cube in enumerate(cubes):
            client.create_cube(cube)
            client.add(cube, [NewMemory(f"The spare key for flat {i} is under the blue pot",
                                        id="key"),
                              NewMemory(f"Flat {i} has a broken dishwasher", id="dish")])
        hits = client.search(cubes, "where is the spare key hidden", top_k=8)
        assert sorted(h.item.cube_id for h in hits) == sorted(cubes)
        assert {h.item.id for h in hits} == {"key"}
        shards = {client.get_cube(c).shard_id for c in cubes}
        assert shards == {"shard-0", "shard-1"}
    finally:
        for cube in cubes:
            client.delete_cube(cube)


def test_add_many_keeps_the_order_and_stores_each_once(client, cube):
    items = [NewMemory(f"note {i} about the garden", id=f"n{i}") for i in range(150)]
    seen = []
    result = client.add_many(cube, items, batch_size=40, in_flight=3, on_batch=seen.append)
    assert result.ids == tuple(f"n{i}" for i in range(150))
    assert result.num_inserted == 150 and sorted(seen) == [30, 40, 40, 40]
    again = client.add_many(cube, items, batch_size=50)
    assert again.num_inserted == 0 and again.num_unchanged == 150
    assert client.get_cube(cube).num_memories == 150
