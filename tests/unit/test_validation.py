import pytest

from memos_cluster.core import validation as v
from memos_cluster.core.config import LimitsConfig
from memos_cluster.core.errors import InvalidArgument
from memos_cluster.core.types import MemoryUpdate, NewMemory, SearchFilter, SearchQuery, TimeRange

LIMITS = LimitsConfig(max_text_chars=50, max_batch_items=3, max_top_k=20, max_metadata_bytes=200,
                      max_metadata_depth=2, max_cubes_per_search=2)


def field_of(call):
    with pytest.raises(InvalidArgument) as info:
        call()
    return info.value.field


@pytest.mark.parametrize("value", ["", "a b", "a/b", "-lead", "x" * 200, 'a"b', "a:b"])
def test_malformed_ids_are_refused(value):
    assert field_of(lambda: v.check_id(value, "cube_id", LIMITS)) == "cube_id"


@pytest.mark.parametrize("value", ["alice", "cube-1", "a.b_c@d", "D1-3"])
def test_good_ids_pass(value):
    assert v.check_id(value, "cube_id", LIMITS) == value


@pytest.mark.parametrize("text", ["", "   ", "x" * 51, "bell\x07", "nul\x00", "lone \ud800"])
def test_bad_texts_name_their_position(text):
    items = [NewMemory("fine"), NewMemory(text)]
    assert field_of(lambda: v.check_new_memories(items, LIMITS)) == "memories[1].text"


def test_texts_may_hold_newlines_tabs_and_any_language():
    v.check_new_memories([NewMemory("line\nnext\tcol — 日本語 ✓")], LIMITS)


def test_batches_over_the_limit_and_duplicate_ids_are_refused():
    assert field_of(lambda: v.check_new_memories([NewMemory("a")] * 4, LIMITS)) == "memories"
    dupes = [NewMemory("a", id="x"), NewMemory("b", id="x")]
    assert field_of(lambda: v.check_new_memories(dupes, LIMITS)) == "memories[1].id"


@pytest.mark.parametrize("metadata", [{"bad key": 1}, {"a": {"b": {"c": 1}}}, {"a": "x" * 300},
                                      {"a": float("nan")}])
def test_bad_metadata_is_refused(metadata):
    items = [NewMemory("a", metadata=metadata)]
    assert field_of(lambda: v.check_new_memories(items, LIMITS)) == "memories[0].metadata"


def query(**kw):
    base = dict(cube_ids=("a",), query="hello", top_k=5)
    base.update(kw)
    return SearchQuery(**base)


@pytest.mark.parametrize("kw,field", [
    (dict(cube_ids=()), "cube_ids"),
    (dict(cube_ids=("a", "b", "c")), "cube_ids"),
    (dict(cube_ids=("a", "a")), "cube_ids"),
    (dict(cube_ids=("a b",)), "cube_ids[0]"),
    (dict(query=""), "query"),
    (dict(top_k=0), "top_k"),
    (dict(top_k=21), "top_k"),
    (dict(filter=SearchFilter(metadata_equals=(("a b", 1),))), "filter.metadata_equals['a b']"),
    (dict(filter=SearchFilter(metadata_equals=(("a", [1]),))), "filter.metadata_equals['a']"),
    (dict(filter=SearchFilter(event_time=TimeRange(10, 5))), "filter.event_time"),
    (dict(filter=SearchFilter(memory_types=("bad type",))), "filter.memory_types[0]"),
])
def test_bad_searches_name_the_field(kw, field):
    assert field_of(lambda: v.check_search(query(**kw), LIMITS)) == field


def test_update_checks():
    v.check_update(MemoryUpdate("c", "m", "text"), LIMITS)
    assert field_of(lambda: v.check_update(MemoryUpdate("c", "m", ""), LIMITS)) == "text"
    assert field_of(lambda: v.check_update(
        MemoryUpdate("c", "m", "t", expected_version=0), LIMITS)) == "expected_version"
