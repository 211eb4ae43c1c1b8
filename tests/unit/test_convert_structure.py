"""A memory's structure, a search's reference time and the entity graph's views (ListEntities,
GetEntity) cross every wire unchanged: protobuf bytes and the HTTP API's JSON, through the same
codecs; their requests decode from HTTP paths and queries; and their validation refuses what it
must, naming the field."""
import json

import pytest

from memos_cluster.api.convert import memory_from_pb, memory_to_pb
from memos_cluster.api.http_routes import (
    ROUTE_OF, message_json, parse_json, reply_message, request_message)
from memos_cluster.api.rpcs import CODECS, request_class, response_class
from memos_cluster.core.config import LimitsConfig, MemosConfig
from memos_cluster.core.errors import InvalidArgument
from memos_cluster.core.operations import validate
from memos_cluster.core.structure import (
    DAY_MS, Entity, EntityDetail, EntityMention, EntityNeighbour, EntityPage, EntityQuery,
    EntityRelation, MemoryStructure, Relation, TimeMention)
from memos_cluster.core.types import GetResult, MemoryItem, SearchHit, SearchQuery
from memos_cluster.core.validation import check_entity_query, check_entity_ref

MAY_7_2023 = 1_683_417_600_000  # 00:00 UTC
STRUCTURE = MemoryStructure(
    times=(TimeMention("yesterday", 12, 21, MAY_7_2023, MAY_7_2023 + DAY_MS, "day"),
           TimeMention("some day", 30, 38)),  # unresolved
    entities=(EntityMention("I", 0, 1, "Caroline", "PERSON", "caroline-3fa2c1"),
              EntityMention("the LGBTQ support group", 40, 63, "LGBTQ support group", "CONCEPT")),
    relations=(Relation("Caroline", "go to", "LGBTQ support group"),),
    reader="spacy:en_core_web_sm-3.8.0")
ITEM = MemoryItem("m1", "c1", "I went there yesterday, some day, to the LGBTQ support group",
                  metadata={"n": 1}, created_at_ms=1, updated_at_ms=2, event_time_ms=MAY_7_2023,
                  source="chat", version=2, structure=STRUCTURE)
CAROLINE = Entity("caroline-3fa2c1", "c1", "Caroline", "PERSON", ("Caro", "I"), 7)
MELANIE = Entity("melanie-09ab11", "c1", "Melanie", "PERSON", (), 3)
PAGE = EntityPage((CAROLINE, MELANIE), next_offset=2, total=5)
DETAIL = EntityDetail(
    CAROLINE, memories=(ITEM,),
    relations=(EntityRelation("Caroline", "go to", "LGBTQ support group", "m1", MAY_7_2023),
               EntityRelation("Melanie", "call", "Caroline", "m2")),  # m2 has no event time
    neighbours=(EntityNeighbour(MELANIE, 2),))


def _over_pb(operation: str, result):
    codec = CODECS[operation]
    wire = codec.reply(result).SerializeToString()
    return codec.read(response_class(operation).FromString(wire))


def _over_json(operation: str, result):
    codec = CODECS[operation]
    data = json.loads(json.dumps(message_json(codec.reply(result))))
    return codec.read(reply_message(operation, data))


@pytest.mark.parametrize("crossing", [_over_pb, _over_json])
@pytest.mark.parametrize("operation, result", [
    ("get", GetResult((ITEM, MemoryItem("m3", "c1", "no structure")), ())),
    ("list_entities", PAGE),
    ("list_entities", EntityPage((), None, 0)),
    ("get_entity", DETAIL),
    ("get_entity", EntityDetail(MELANIE)),
])
def test_results_cross_the_wire_unchanged(crossing, operation, result):
    assert crossing(operation, result) == result


def test_a_memory_keeps_its_structure_and_says_its_dates():
    message = memory_to_pb(ITEM)
    assert memory_from_pb(message) == ITEM
    resolved, unresolved = message.structure.times
    assert (resolved.resolved, resolved.label, resolved.granularity) == (True, "7 May 2023", "day")
    assert (unresolved.resolved, unresolved.label, unresolved.start_ms) == (False, "", 0)
    assert memory_from_pb(memory_to_pb(MemoryItem("m", "c", "t"))).structure.is_empty


@pytest.mark.parametrize("reference", [MAY_7_2023, 0, None])
def test_a_search_carries_its_reference_time(reference):
    query = SearchQuery(("c1",), "what did Caroline do last week?", 5,
                        reference_time_ms=reference)
    codec = CODECS["search"]
    wire = codec.build(query).SerializeToString()
    assert codec.parse(request_class("search").FromString(wire)) == (query,)
    body = json.loads(json.dumps(message_json(codec.build(query))))
    (parsed,) = codec.parse(request_message(ROUTE_OF["search"], {}, body, {}))
    assert parsed == query


@pytest.mark.parametrize("operation, args", [
    ("list_entities", (EntityQuery("c1"),)),
    ("list_entities", (EntityQuery("c1", "caro", "PERSON", 20, 40),)),
    ("get_entity", ("c1", "caroline-3fa2c1")),
    ("get_entity", ("c1", "Caroline Smith")),
])
def test_entity_requests_cross_the_wire_unchanged(operation, args):
    codec = CODECS[operation]
    wire = codec.build(*args).SerializeToString()
    assert codec.parse(request_class(operation).FromString(wire)) == args
    data = json.loads(json.dumps(message_json(codec.build(*args))))
    assert codec.parse(parse_json(request_class(operation), data)) == args


def test_entity_requests_decode_from_http_paths_and_queries():
    listed = request_message(ROUTE_OF["list_entities"], {"cube_id": "c1"}, None,
                             {"name_contains": ["caro"], "label": ["PERSON"],
                              "page_size": ["20"], "page_token": ["40"]})
    assert CODECS["list_entities"].parse(listed) == (
        EntityQuery("c1", "caro", "PERSON", 20, 40),)
    # Starlette hands over the path decoded: %20 is a space, a name may be the reference.
    for reference in ("caroline-3fa2c1", "Caroline Smith", "Zoë"):
        got = request_message(ROUTE_OF["get_entity"],
                              {"cube_id": "c1", "entity_id": reference}, None, {})
        assert CODECS["get_entity"].parse(got) == ("c1", reference)
    with pytest.raises(InvalidArgument) as bad_token:
        CODECS["list_entities"].parse(request_message(
            ROUTE_OF["list_entities"], {"cube_id": "c1"}, None, {"page_token": ["-3"]}))
    assert bad_token.value.field == "page_token"


@pytest.mark.parametrize("check, field", [
    (lambda limits: check_entity_ref("c1", "", limits), "entity_id"),
    (lambda limits: check_entity_ref("c1", "   ", limits), "entity_id"),
    (lambda limits: check_entity_ref("c1", "Caro\x00line", limits), "entity_id"),
    (lambda limits: check_entity_ref("c1", "Caro\nline", limits), "entity_id"),
    (lambda limits: check_entity_ref("c1", "x" * 257, limits), "entity_id"),
    (lambda limits: check_entity_ref("c 1", "Caroline", limits), "cube_id"),
    (lambda limits: check_entity_query(EntityQuery("c1", offset=-1), limits), "page_token"),
    (lambda limits: check_entity_query(EntityQuery("c1", "x" * 2001), limits), "name_contains"),
    (lambda limits: check_entity_query(EntityQuery("c1", label="L" * 65), limits), "label"),
    (lambda limits: check_entity_query(EntityQuery("c1", page_size=1001), limits), "page_size"),
    (lambda limits: check_entity_query(EntityQuery("c1", page_size=-1), limits), "page_size"),
    (lambda limits: check_entity_query(EntityQuery(""), limits), "cube_id"),
])
def test_validation_refuses_naming_the_field(check, field):
    with pytest.raises(InvalidArgument) as info:
        check(LimitsConfig())
    assert info.value.field == field


def test_validation_accepts_names_ids_and_a_search_reference_time():
    limits = LimitsConfig()
    for reference in ("caroline-3fa2c1", "Melanie", "LGBTQ support group", "Zoë"):
        check_entity_ref("c1", reference, limits)
    check_entity_query(EntityQuery("c1", "caro", "PERSON", 1000, 5), limits)
    validate(MemosConfig(), "search", (SearchQuery(("c1",), "q", reference_time_ms=1),))
    with pytest.raises(InvalidArgument) as info:
        validate(MemosConfig(), "search", (SearchQuery(("c1",), "q", reference_time_ms=2**63),))
    assert info.value.field == "reference_time_ms"


def test_mcp_results_read_as_an_agent_wants_them():
    from actors.mcp_app import _entity_detail, _with_dates

    detail = _entity_detail(message_json(CODECS["get_entity"].reply(DETAIL)))
    assert detail["name"] == "Caroline" and detail["aliases"] == ["Caro", "I"]
    assert detail["num_mentions"] == 7
    assert detail["memories"] == [{"id": "m1", "text": ITEM.text, "dates": ["7 May 2023"]}]
    assert detail["relations"][0] == {"subject": "Caroline", "predicate": "go to",
                                      "object": "LGBTQ support group", "memory_id": "m1"}
    assert detail["neighbours"] == [{"name": "Melanie", "entity_id": "melanie-09ab11",
                                     "num_shared": 2}]
    found = _with_dates(message_json(CODECS["search"].reply([SearchHit(ITEM, 0.5)])))
    (memory,) = [hit["memory"] for hit in found["hits"]]
    assert memory["dates"] == ["7 May 2023"] and "structure" not in memory


class _Gateway:
    """What the HTTP app asks of a gateway replica: validate, then answer from the entity
    graph by echo (no Ray, no shards)."""

    config = MemosConfig()

    def __init__(self):
        self.calls = []

    async def run(self, metadata, operation, args):
        validate(self.config, operation, args)
        self.calls.append((operation, args))
        if operation == "get_entity":
            return EntityDetail(Entity("e1", args[0], args[1], "PERSON"))
        return PAGE if operation == "list_entities" else None

    def count(self, *args):
        pass

    def as_memos_error(self, exc):
        return exc


def test_the_http_app_routes_entity_names_and_encoded_ids():
    from fastapi.testclient import TestClient

    from actors.http_app import build_http_app

    gateway = _Gateway()
    with TestClient(build_http_app(gateway)) as client:
        for path, reference in (("caroline-3fa2c1", "caroline-3fa2c1"),
                                ("Caroline%20Smith", "Caroline Smith"), ("Zo%C3%AB", "Zoë")):
            reply = client.get(f"/v1/cubes/c1/entities/{path}")
            assert reply.status_code == 200 and reply.json()["entity"]["name"] == reference
        refused = client.get("/v1/cubes/c1/entities/a%0Ab")
        assert refused.status_code == 400 and refused.json()["error"]["field"] == "entity_id"
        page = client.get("/v1/cubes/c1/entities?name_contains=caro&page_size=2&page_token=4")
        assert page.status_code == 200 and page.json()["next_page_token"] == "2"
        assert gateway.calls[-1] == ("list_entities", (EntityQuery("c1", "caro", "", 2, 4),))
