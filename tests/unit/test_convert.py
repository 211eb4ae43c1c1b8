import math

import pytest

from memos_cluster.api import convert
from memos_cluster.api.memos.v1 import memos_pb2 as pb
from memos_cluster.core.errors import InvalidArgument
from memos_cluster.core.types import (
    MemoryItem, MemoryUpdate, NewMemory, ScoreParts, SearchFilter, SearchHit, SearchMode,
    SearchQuery, TimeRange)


def test_memory_round_trip_keeps_types_and_missing_event_time():
    item = MemoryItem(id="m", cube_id="c", text="t", memory_type="fact",
                      metadata={"n": 3, "f": 2.5, "nested": {"l": [1, "x"]}, "b": True},
                      created_at_ms=1, updated_at_ms=2, event_time_ms=None, source="s", version=4,
                      context="before")
    back = convert.memory_from_pb(pb.Memory.FromString(
        convert.memory_to_pb(item).SerializeToString()))
    assert back == item
    assert isinstance(back.metadata["n"], int)


def test_new_memory_round_trip_with_event_time_zero():
    item = NewMemory("t", id=None, metadata={"a": "b"}, event_time_ms=0, source="x", context="c")
    message = pb.NewMemory()
    convert.new_memory_to_pb(item, message)
    assert convert.new_memory_from_pb(message) == item


FILTER = SearchFilter(memory_types=("fact",), sources=("s",),
                      metadata_equals=(("a", 1), ("b", "x")),
                      event_time=TimeRange(start_ms=0), created_at=TimeRange(end_ms=9))


def test_search_request_unset_fields_stay_unset_and_filter_round_trips():
    request = pb.SearchRequest(cube_ids=["c"], query="q")
    convert.filter_to_pb(FILTER, request.filter)
    query = convert.search_from_pb(request)
    assert query.top_k == 0 and query.mode is None  # the service applies its defaults
    assert query.filter == FILTER
    request.mode = pb.SEARCH_MODE_BM25
    assert convert.search_from_pb(request).mode is SearchMode.BM25


@pytest.mark.parametrize("query", [
    SearchQuery(("a", "b"), "q", top_k=5, mode=SearchMode.DENSE, filter=FILTER),
    SearchQuery(("a",), "q"),
    SearchQuery(("a",), "q", reference_time_ms=0, explain=True),
])
def test_search_query_round_trip(query):
    wire = pb.SearchRequest.FromString(convert.search_to_pb(query).SerializeToString())
    assert convert.search_from_pb(wire) == query


@pytest.mark.parametrize("parts", [None, ScoreParts(dense_rank=3, dense_score=0.5, fused=0.25,
                                                    neighbour=0.125, when=0.5, entity=0.05)])
def test_a_hits_score_parts_travel_only_when_set(parts):
    hit = SearchHit(MemoryItem(id="m", cube_id="c", text="t"), 0.75, explain=parts)
    message = pb.SearchHit()
    convert.hit_to_pb(hit, message)
    assert message.HasField("explain") is (parts is not None)
    assert convert.hit_from_pb(pb.SearchHit.FromString(message.SerializeToString())) == hit


@pytest.mark.parametrize("update", [
    MemoryUpdate("c", "m", "t"),
    MemoryUpdate("c", "m", "t", metadata={}, memory_type="task", event_time_ms=0,
                 expected_version=3),
    MemoryUpdate("c", "m", "t", metadata={"k": [1, "x"]}),
])
def test_update_round_trip(update):
    wire = pb.UpdateMemoryRequest.FromString(convert.update_to_pb(update).SerializeToString())
    assert convert.update_from_pb(wire) == update


def test_update_keeps_metadata_unless_replaced():
    keep = convert.update_from_pb(pb.UpdateMemoryRequest(cube_id="c", id="m", text="t"))
    assert keep.metadata is None and keep.expected_version is None
    clear = convert.update_from_pb(pb.UpdateMemoryRequest(cube_id="c", id="m", text="t",
                                                          replace_metadata=True))
    assert clear.metadata == {}


def test_generate_request_and_events_round_trip():
    from memos_cluster.core.tier_types import BlockStats, GenerateStats, SamplingParams, TokenEvent
    from memos_cluster.core.tier_types import GenerateCall

    call = GenerateCall(("a", "b"), "q", SamplingParams(7, 0.5, 0.75, 3),  # exact in float32
                        use_activation_memory=False, use_retrieved_memories=True,
                        retrieval_top_k=4)
    wire = pb.GenerateRequest.FromString(convert.generate_to_pb(call).SerializeToString())
    assert convert.generate_from_pb(wire) == call
    token = TokenEvent(12, "ab")
    assert convert.generate_event_from_pb(convert.generate_event_to_pb(token)) == token
    stats = GenerateStats(ttft_ms=1.5, total_ms=3.0, prompt_tokens=10, prefill_tokens=4,
                          prefill_tokens_saved=6, caches_used=("c1",), num_generated=2,
                          finish_reason="eos")
    assert convert.generate_event_from_pb(convert.generate_event_to_pb(stats)) == stats
    block = BlockStats(10, 4, 6, "c1")
    assert convert.block_stats_from_pb(convert.block_stats_to_pb(block)) == block


def test_non_finite_metadata_numbers_are_invalid_arguments():
    """Found by the fuzz test: NaN or infinity in a Struct made the gateway answer INTERNAL."""
    for value in (math.nan, math.inf, -math.inf):
        request = pb.CreateCubeRequest(cube_id="c")
        request.metadata.update({"x": value})
        with pytest.raises(InvalidArgument, match="metadata is not plain JSON"):
            convert.cube_from_pb(request)
        search = pb.SearchRequest(cube_ids=["c"], query="q")
        search.filter.metadata_equals["x"].number_value = value
        with pytest.raises(InvalidArgument, match="filter.metadata_equals is not plain JSON"):
            convert.search_from_pb(search)
