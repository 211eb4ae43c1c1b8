"""Structure on the plaintext tier, on real milvus-lite with the real reader and embedder (no
Ray): dates and entities stored with each memory and returned by Get, List and Search; the
entity graph following adds, updates and deletes, rebuilt after a restart, reindexed, carried by
a cube's export and archive; a reader failure losing no write; time in hybrid search."""
from datetime import datetime, timezone

import pytest

from memos_cluster.core.config import MemosConfig, with_overrides
from memos_cluster.core.errors import NotFound
from memos_cluster.core.structure import EntityQuery
from memos_cluster.core.types import (
    CubeSpec, ListQuery, MemoryUpdate, NewMemory, SearchMode, SearchQuery)
from memos_cluster.data.archive import CubeArchive, read_archive, renamed, write_archive
from memos_cluster.embed import make_embedder
from memos_cluster.reader import NullReader
from memos_cluster.tiers.plaintext.tier import PlaintextTier

from clocks import StepClock


def ms(year, month, day, hour=12):
    return int(datetime(year, month, day, hour, tzinfo=timezone.utc).timestamp() * 1000)


MAY_8 = ms(2023, 5, 8)
TURNS = [
    NewMemory("Caroline: I went to a LGBTQ support group yesterday.", id="t1",
              event_time_ms=MAY_8, metadata={"speaker": "Caroline"}),
    NewMemory("Melanie: Caroline and I went camping at the lake last weekend.", id="t2",
              event_time_ms=MAY_8),
    NewMemory("Melanie: I signed up for pottery classes.", id="t3", event_time_ms=MAY_8),
    NewMemory("Jon: The bakery on Main Street opened in 2019.", id="t4",
              event_time_ms=ms(2023, 1, 20)),
]


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    return make_embedder(MemosConfig().embedder, str(tmp_path_factory.mktemp("models")))


@pytest.fixture
def config(tmp_path):
    return with_overrides(MemosConfig(), {"data_dir": str(tmp_path)})


def open_tier(config, embedder, **kw):
    tier = PlaintextTier(config, "shard-0", embedder, clock=StepClock(), **kw)
    tier.open()
    return tier


@pytest.fixture
def tier(config, embedder):
    tier = open_tier(config, embedder)
    tier.create_cube(CubeSpec("talk"))
    tier.add("talk", TURNS)
    yield tier
    tier.close()


def names(tier, cube="talk"):
    return {e.name: e.num_mentions for e in tier.list_entities(EntityQuery(cube)).entities}


def test_dates_and_entities_come_back_with_every_read(tier):
    [got] = tier.get("talk", ["t1"]).items
    [time] = got.structure.times
    assert (time.span, time.label()) == ("yesterday", "7 May 2023")
    assert {"Caroline", "LGBTQ support group"} <= {e.name for e in got.structure.entities}
    assert all(e.entity_id for e in got.structure.entities)
    listed = {m.id: m for m in tier.list_memories(ListQuery("talk")).items}
    assert listed["t2"].structure.times[0].label() == "the weekend of 6 May 2023"
    hit = tier.search(SearchQuery(("talk",), "support group", top_k=1))[0]
    assert hit.item.structure == got.structure


def test_the_graph_counts_mentions_and_an_entity_shows_its_neighbourhood(tier):
    assert names(tier)["Caroline"] == 2 and names(tier)["Melanie"] == 2
    detail = tier.get_entity("talk", "caroline")
    assert [m.id for m in detail.memories] == ["t1", "t2"] or \
        [m.id for m in detail.memories] == ["t2", "t1"]
    assert ("Caroline", "go to", "LGBTQ support group") in \
        {(r.subject, r.predicate, r.object) for r in detail.relations}
    assert "Melanie" in {n.entity.name for n in detail.neighbours}
    assert tier.get_entity("talk", detail.entity.entity_id).entity == detail.entity
    with pytest.raises(NotFound):
        tier.get_entity("talk", "Nobody")


def test_updates_and_deletes_move_the_graph_and_a_restart_rebuilds_it(tier, config, embedder):
    tier.update(MemoryUpdate("talk", "t3", "Melanie: I quit pottery and took up archery."))
    assert "archery" in names(tier) and "pottery classes" not in names(tier)
    tier.delete("talk", ["t1"])
    assert names(tier)["Caroline"] == 1 and "LGBTQ support group" not in names(tier)
    before = tier.list_entities(EntityQuery("talk"))
    tier.close()
    again = open_tier(config, embedder)
    try:
        assert again.list_entities(EntityQuery("talk")) == before
    finally:
        again.close()


def test_time_in_hybrid_search(tier):
    def top(query, **kw):
        return tier.search(SearchQuery(("talk",), query, top_k=4, mode=SearchMode.HYBRID,
                                       **kw))[0].item.id
    # "7 May 2023" is written nowhere: "yesterday" was resolved at ingest
    assert top("What happened on 7 May 2023?") == "t1"
    # relative to the request's reference time: a week after, "last week" is the week of 1 May
    assert top("Where did they go last week?", reference_time_ms=ms(2023, 5, 12)) in ("t1", "t2")
    assert top("What opened in January?") == "t4"


def test_a_failing_reader_loses_no_write_and_a_reindex_reads_it_later(config, embedder):
    class Broken:
        name = "broken"

        def read_many(self, inputs):
            raise RuntimeError("reader bug")
    tier = open_tier(config, embedder, reader=Broken())
    tier.create_cube(CubeSpec("talk"))
    assert tier.add("talk", TURNS).num_inserted == len(TURNS)
    assert tier.get("talk", ["t1"]).items[0].structure.is_empty
    assert "1 reader failures" in tier.health().detail
    tier.close()
    tier = open_tier(config, embedder)  # the real reader, as after a fix and a restart
    try:
        steps = [tier.reindex("talk", "", 3)]
        while steps[-1].next_after is not None:
            steps.append(tier.reindex("talk", steps[-1].next_after, 3))
        assert [s.num_read for s in steps] == [3, 1] and sum(s.num_changed for s in steps) == 4
        assert sorted(i for s in steps for i in s.changed_ids) == ["t1", "t2", "t3", "t4"]
        assert tier.get("talk", ["t1"]).items[0].structure.times[0].label() == "7 May 2023"
        assert tier.reindex("talk", "", 10).num_changed == 0  # idempotent
        assert names(tier)["Caroline"] == 2
    finally:
        tier.close()


def test_the_reader_off_stores_memories_as_given(config, embedder):
    tier = open_tier(config, embedder, reader=NullReader())
    try:
        tier.create_cube(CubeSpec("talk"))
        tier.add("talk", TURNS)
        assert tier.get("talk", ["t1"]).items[0].structure.is_empty
        assert tier.list_entities(EntityQuery("talk")).total == 0
    finally:
        tier.close()


def test_an_export_and_an_archive_carry_the_graph(tier, config, embedder, tmp_path):
    export = tier.transfer.export_cube("talk")
    assert {r["name"] for r in export.entity_rows} >= {"Caroline", "Melanie"}
    write_archive(CubeArchive(export, []), str(tmp_path / "archive"))
    restored = renamed(read_archive(str(tmp_path / "archive")).export, "copy")
    tier.transfer.import_cube(restored, must_be_new=True)
    assert names(tier, "copy") == names(tier, "talk")
    assert tier.get("copy", ["t1"]).items[0].structure == \
        tier.get("talk", ["t1"]).items[0].structure
    tier.delete_cube("copy")
    with pytest.raises(NotFound):
        tier.list_entities(EntityQuery("copy"))
