"""ListMemories on real milvus-lite (no Ray): a cube's memories paged newest first, filtered by
text, type and time, with tokens that round-trip through the protobuf form; and the JSON depth
check that guards every HTTP body."""
import pytest

from memos_cluster.api import convert as c
from memos_cluster.api.memos.v1 import memos_pb2 as pb
from memos_cluster.core.config import LimitsConfig, MemosConfig, with_overrides
from memos_cluster.core.errors import InvalidArgument, NotFound
from memos_cluster.core.types import (
    CubeSpec, ListQuery, MemoryPage, MemoryUpdate, NewMemory, SearchFilter, TimeRange)
from memos_cluster.core.validation import check_json_depth, check_list_query
from memos_cluster.embed import make_embedder
from memos_cluster.tiers.plaintext.tier import PlaintextTier

from clocks import StepClock


@pytest.fixture(scope="module")
def tier(tmp_path_factory):
    # The reader in-process: a worker process a tier would cost seconds a test
    # (tests/unit/test_reader_process.py covers it).
    config = with_overrides(MemosConfig(), {"reader.own_process": False,
                                            "data_dir": str(tmp_path_factory.mktemp("data"))})
    embedder = make_embedder(config.embedder, str(tmp_path_factory.mktemp("models")))
    tier = PlaintextTier(config, "shard-0", embedder, clock=StepClock())
    tier.open()
    tier.create_cube(CubeSpec("notes"))
    for i in range(7):  # one add per memory: seven distinct update times, m0 oldest
        tier.add("notes", [NewMemory(f"Note {i} about {'Cats' if i % 2 else 'dogs'}", id=f"m{i}",
                                     memory_type="task" if i < 2 else "fact",
                                     event_time_ms=1000 * i)])
    tier.update(MemoryUpdate("notes", "m0", "Note 0 rewritten about dogs"))  # now the newest
    yield tier
    tier.close()


def test_pages_walk_every_memory_newest_first_exactly_once(tier):
    seen, offset, pages = [], 0, 0
    while offset is not None:
        page = tier.list_memories(ListQuery("notes", page_size=3, offset=offset))
        assert page.total == 7
        seen += [m.id for m in page.items]
        offset, pages = page.next_offset, pages + 1
    assert pages == 3
    assert seen == ["m0", "m6", "m5", "m4", "m3", "m2", "m1"]
    assert tier.list_memories(ListQuery("notes")).items[0].version == 2


def test_text_type_and_time_filters_combine(tier):
    cats = tier.list_memories(ListQuery("notes", text_contains="cAtS"))
    assert [m.id for m in cats.items] == ["m5", "m3", "m1"] and cats.total == 3
    tasks = tier.list_memories(ListQuery("notes", SearchFilter(memory_types=("task",))))
    assert {m.id for m in tasks.items} == {"m0", "m1"}
    early = tier.list_memories(ListQuery("notes", SearchFilter(event_time=TimeRange(2000, 4000)),
                                         text_contains="dogs"))
    assert [m.id for m in early.items] == ["m2"]
    assert tier.list_memories(ListQuery("notes", text_contains="zebra")).total == 0


def test_bad_pages_and_cubes_are_refused(tier):
    with pytest.raises(NotFound):
        tier.list_memories(ListQuery("nobody"))
    with pytest.raises(InvalidArgument, match="page_size"):
        tier.list_memories(ListQuery("notes", page_size=5000))
    limits = LimitsConfig()
    with pytest.raises(InvalidArgument, match="page_token"):
        check_list_query(ListQuery("notes", offset=-1), limits)
    with pytest.raises(InvalidArgument, match="text_contains"):
        check_list_query(ListQuery("notes", text_contains="x" * 5000), limits)


def test_page_tokens_round_trip_and_foreign_tokens_are_refused():
    query = ListQuery("notes", SearchFilter(sources=("chat",)), "cat", 10, 30)
    assert c.list_from_pb(c.list_to_pb(query)) == query
    page = MemoryPage(items=(), next_offset=40, total=41)
    assert c.page_from_pb(c.page_to_pb(page)) == page
    assert c.page_to_pb(MemoryPage((), None, 3)).next_page_token == ""
    for token in ("-5", "abc", "1e3", "٣", "9" * 40):
        with pytest.raises(InvalidArgument, match="page_token"):
            c.list_from_pb(pb.ListMemoriesRequest(cube_id="notes", page_token=token))


def test_json_depth_is_counted_in_containers_without_recursion():
    check_json_depth({"a": [{"b": 1}]}, "body", 3)
    check_json_depth("just a string", "body", 0)
    with pytest.raises(InvalidArgument, match="body nests deeper than 3"):
        check_json_depth({"a": [{"b": []}]}, "body", 3)
    deep: list = []
    for _ in range(50_000):  # far past Python's recursion limit
        deep = [deep]
    with pytest.raises(InvalidArgument):
        check_json_depth(deep, "body", 32)
