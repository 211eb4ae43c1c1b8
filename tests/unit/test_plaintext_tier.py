"""The plaintext tier and the memory service on real milvus-lite and the real MiniLM embedder,
in-process (no Ray): the core's behaviour, including recovery from Milvus alone."""
import asyncio

import pytest

from memos_cluster.core.config import MemosConfig, with_overrides
from memos_cluster.core.errors import AlreadyExists, FailedPrecondition, NotFound
from memos_cluster.core.types import (
    CubeSpec, MemoryUpdate, NewMemory, SearchFilter, SearchMode, SearchQuery, TimeRange)
from memos_cluster.embed import make_embedder
from memos_cluster.placement.shardmap import HashRing, shard_names
from memos_cluster.tiers.plaintext.service import LocalShard, MemoryService
from memos_cluster.tiers.plaintext.schema import StorageRefused
from memos_cluster.tiers.plaintext.tier import PlaintextTier

from clocks import StepClock

FACTS = [
    NewMemory("Caroline adopted a grey cat called Miso", id="pet", metadata={"who": "caroline"},
              event_time_ms=1_000),
    NewMemory("Melanie runs marathons every spring", id="run", metadata={"who": "melanie"},
              event_time_ms=5_000),
    NewMemory("The quarterly budget review moved to Thursday", id="work", memory_type="task"),
]


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    return make_embedder(MemosConfig().embedder, str(tmp_path_factory.mktemp("models")))


@pytest.fixture
def config(tmp_path):
    # The reader in-process: a worker process a tier would cost seconds a test
    # (tests/unit/test_reader_process.py covers it).
    return with_overrides(MemosConfig(), {"reader.own_process": False, "data_dir": str(tmp_path)})


@pytest.fixture
def tier(config, embedder):
    tier = PlaintextTier(config, "shard-0", embedder, clock=StepClock())
    tier.open()
    tier.create_cube(CubeSpec("alice"))
    tier.add("alice", FACTS)
    yield tier
    tier.close()


def search(tier, text, **kw):
    return tier.search(SearchQuery(cube_ids=("alice",), query=text, top_k=kw.pop("top_k", 3),
                                   **kw))


@pytest.mark.parametrize("mode", list(SearchMode))
def test_every_mode_finds_the_right_memory(tier, mode):
    assert search(tier, "which pet does Caroline have", mode=mode)[0].item.id == "pet"


def test_filters_narrow_results(tier):
    only_tasks = search(tier, "Caroline", filter=SearchFilter(memory_types=("task",)))
    assert [h.item.id for h in only_tasks] == ["work"]
    by_meta = search(tier, "Caroline", filter=SearchFilter(metadata_equals=(("who", "melanie"),)))
    assert [h.item.id for h in by_meta] == ["run"]
    by_time = search(tier, "anything", filter=SearchFilter(event_time=TimeRange(0, 2_000)))
    assert [h.item.id for h in by_time] == ["pet"]
    sneaky = SearchFilter(metadata_equals=(("who", 'x" or cube_id != "'),))
    assert search(tier, "Caroline", filter=sneaky) == []


def test_context_finds_a_memory_without_being_part_of_it(tier):
    tier.add("alice", [NewMemory("Yes, twice a week!", id="reply",
                                 context="Bob: do you still play squash with your sister?")])
    hits = search(tier, "squash sister", mode=SearchMode.BM25, top_k=1)
    assert hits[0].item.id == "reply"
    assert hits[0].item.text == "Yes, twice a week!"
    assert hits[0].item.context.startswith("Bob: do you")
    updated = tier.update(MemoryUpdate("alice", "reply", "Yes, three times a week now!"))
    assert updated.context == hits[0].item.context  # kept across updates
    assert search(tier, "squash sister", mode=SearchMode.BM25, top_k=1)[0].item.id == "reply"


def test_smaller_top_k_returns_a_prefix_of_larger(tier):
    for mode in SearchMode:
        three = [h.item.id for h in search(tier, "Caroline cat budget", mode=mode, top_k=3)]
        two = [h.item.id for h in search(tier, "Caroline cat budget", mode=mode, top_k=2)]
        assert two == three[:2], mode


def test_adding_with_ids_is_idempotent_and_conflicts_are_refused(tier):
    again = tier.add("alice", FACTS)
    assert (again.num_inserted, again.num_unchanged) == (0, 3)
    with pytest.raises(AlreadyExists):
        tier.add("alice", [NewMemory("different text", id="pet")])
    assert tier.get_cube("alice").num_memories == 3


def test_update_versions_and_history(tier):
    updated = tier.update(MemoryUpdate("alice", "pet", "Caroline adopted two cats, Miso and Tofu"))
    assert updated.version == 2 and updated.metadata == {"who": "caroline"}
    assert updated.created_at_ms < updated.updated_at_ms
    with pytest.raises(FailedPrecondition):
        tier.update(MemoryUpdate("alice", "pet", "stale write", expected_version=1))
    tier.update(MemoryUpdate("alice", "pet", "three cats now", metadata={}, expected_version=2))
    history = tier.history("alice", "pet")
    assert [(m.version, m.text[:14]) for m in history] == [
        (1, "Caroline adopt"), (2, "Caroline adopt"), (3, "three cats now")]
    assert history[-1].metadata == {}
    assert search(tier, "Tofu", mode=SearchMode.BM25) == []  # only the current text is searched


def test_delete_and_purge(tier):
    result = tier.delete("alice", ["run", "ghost"])
    assert (result.num_deleted, result.missing_ids) == (1, ("ghost",))
    assert tier.get("alice", ["run", "pet"]).missing_ids == ("run",)
    with pytest.raises(NotFound):
        tier.history("alice", "run")
    assert tier.delete_cube("alice") == 2
    with pytest.raises(NotFound):
        search(tier, "cat")
    tier.create_cube(CubeSpec("alice"))
    assert tier.get_cube("alice").num_memories == 0  # nothing left behind by the purge


def test_state_is_recovered_from_milvus_alone(tier, config, embedder):
    tier.update(MemoryUpdate("alice", "run", "Melanie runs ultramarathons"))
    tier.close()
    reopened = PlaintextTier(config, "shard-0", embedder)
    reopened.open()
    try:
        assert [c.cube_id for c in reopened.list_cubes()] == ["alice"]
        stats = reopened.get_cube("alice")
        assert (stats.num_memories, stats.num_history_versions) == (3, 1)
        assert reopened.get("alice", ["run"]).items[0].text == "Melanie runs ultramarathons"
    finally:
        reopened.close()


def test_a_reply_gets_a_share_of_the_turn_it_answers(tier, config, embedder):
    turn = "Bob: did you ever go to the pottery workshop downtown?"
    tier.add("alice", [NewMemory(turn, id="turn", context="Ann: hi Bob"),
                       NewMemory("Ann: yes, last May!", id="reply",
                                 context=f"Ann: hi Bob\n{turn}")])

    def scores(share):
        shares = with_overrides(config, {"search.neighbour_share": share})
        reopened = PlaintextTier(shares, "shard-0", embedder)
        reopened.open()
        try:
            return {h.item.id: h.score for h in search(reopened, "pottery workshop", top_k=5)}
        finally:
            reopened.close()

    tier.close()
    plain, spread = scores(0.0), scores(0.5)
    assert spread["reply"] == pytest.approx(plain["reply"] + 0.5 * plain["turn"])
    assert spread["turn"] == pytest.approx(plain["turn"] + 0.5 * plain["reply"])
    assert spread["pet"] == pytest.approx(plain["pet"])  # no neighbour among the candidates


class CountingEmbedder:
    """The real embedder, counting the texts it embeds one at a time (queries)."""

    def __init__(self, inner):
        self.inner, self.queries = inner, 0

    @property
    def dim(self):
        return self.inner.dim

    def embed(self, texts):
        self.queries += len(texts) == 1
        return self.inner.embed(texts)


def test_service_routes_cubes_and_merges_across_shards(tmp_path, embedder):
    # The reader in-process: a worker process a tier would cost seconds a test
    # (tests/unit/test_reader_process.py covers it).
    config = with_overrides(MemosConfig(), {"reader.own_process": False, "data_dir": str(tmp_path)})
    ring = HashRing(shard_names(2), 16)
    counting = CountingEmbedder(embedder)
    tiers = {s: PlaintextTier(config, s, counting) for s in ring.shard_ids}
    for t in tiers.values():
        t.open()
    cubes = ["c-0", "c-1", "c-2", "c-3", "c-4", "c-5"]
    assert len({ring.shard_for(c) for c in cubes}) == 2  # the cubes span both shards
    service = MemoryService(config, ring, {s: LocalShard(t) for s, t in tiers.items()})

    async def scenario():
        for i, cube in enumerate(cubes):
            await service.create_cube(CubeSpec(cube))
            await service.add(cube, [NewMemory(f"note {i}: the spare key is under pot {i}",
                                               id="key")])
        listed = await service.list_cubes()
        before = counting.queries
        hits = await service.search(SearchQuery(tuple(cubes), "spare key under the pot", 10))
        assert counting.queries == before + 1  # two shards searched, the query embedded once
        return listed, hits

    listed, hits = asyncio.run(scenario())
    assert [c.cube_id for c in listed] == cubes
    assert sorted(h.item.cube_id for h in hits) == cubes
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    for t in tiers.values():
        t.close()


def test_near_duplicates_merge_with_lineage(tier):
    tier.add("alice", [NewMemory("Caroline adopted a grey cat called Miso.", id="pet2")])
    found = dict(tier.duplicates.near_duplicates("alice", "pet", 0.9))
    assert "pet2" in found and "run" not in found
    merged = tier.duplicates.merge("alice", "pet", ["pet2"])
    assert merged.version == 2 and merged.metadata["merged_from"] == ["pet2@1"]
    assert tier.get("alice", ["pet2"]).missing_ids == ("pet2",)
    # The merged-away memory stays readable through history, marked with where it went.
    (archived,) = tier.history("alice", "pet2")
    assert archived.text.endswith("Miso.") and archived.metadata["merged_into"] == "pet"
    assert [m.version for m in tier.history("alice", "pet")] == [1, 2]
    assert tier.duplicates.merge("alice", "pet", ["pet2"]).version == 2  # idempotent
    with pytest.raises(NotFound):
        tier.history("alice", "never-existed")


def test_memories_without_an_event_time_round_trip_and_match_no_range(tier):
    got = tier.get("alice", ["work", "pet"]).items
    assert [m.event_time_ms for m in got] == [None, 1_000]  # the engine's stand-in never shows
    for when in (TimeRange(end_ms=2_000), TimeRange(start_ms=0), TimeRange(0, 10_000)):
        ids = {h.item.id for h in search(tier, "budget review cat marathons", top_k=5,
                                         filter=SearchFilter(event_time=when))}
        assert "work" not in ids and ids, when
    export = tier.transfer.export_cube("alice")
    assert {r["memory_id"]: r["event_time_ms"] for r in export.memory_rows}["work"] is None


def test_a_data_directory_of_the_previous_engine_is_refused_with_the_way_to_migrate(
        config, embedder):
    old = config.shard_data_dir("shard-1") / "milvus.db"
    (old / "collections").mkdir(parents=True)  # how milvus-lite 3.x lays out a shard
    tier = PlaintextTier(config, "shard-1", embedder)
    with pytest.raises(StorageRefused) as info:
        tier.open()
    assert str(old) in info.value.message
    assert "memos-cluster export" in info.value.message and "import" in info.value.message
    assert info.value.status == "FAILED_PRECONDITION"
    assert sorted(p.name for p in old.iterdir()) == ["collections"]  # left as it was
