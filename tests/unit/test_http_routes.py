"""The HTTP/JSON routes and the OpenAPI document, without a server: every operation has a route,
requests decode from bodies, paths and queries into the same protobuf requests gRPC gets (and
refuse what does not fit, naming the field), errors map to one status table, and the committed
protos/openapi.json is what the code generates."""
import json

import pytest

from memos_cluster.api import openapi
from memos_cluster.api.http_routes import (
    HTTP_STATUS, ROUTE_OF, ROUTES, check_routes, error_from_json, error_json, message_json,
    reply_message, request_message)
from memos_cluster.api.rpcs import CODECS
from memos_cluster.core.errors import (
    ERRORS_BY_STATUS, FailedPrecondition, InternalError, InvalidArgument, NotFound)
from memos_cluster.core.operations import OPERATIONS
from memos_cluster.core.types import DeleteResult, SearchQuery


def route(path, method):
    (found,) = [r for r in ROUTES if r.path == path and r.method == method]
    return found


def test_every_operation_has_a_route_and_every_status_an_http_code():
    check_routes()
    assert set(ROUTE_OF) == set(OPERATIONS)
    assert set(ERRORS_BY_STATUS) <= set(HTTP_STATUS)
    assert len({(r.method, r.full_path) for r in ROUTES}) == len(ROUTES)
    assert HTTP_STATUS["FAILED_PRECONDITION"] == 412 and HTTP_STATUS["RESOURCE_EXHAUSTED"] == 429


def test_a_path_body_and_query_decode_into_the_grpc_request():
    search = request_message(route("/cubes/{cube_id}/search", "POST"), {"cube_id": "alice"},
                             {"query": "pet", "top_k": 3, "mode": "SEARCH_MODE_BM25"}, {})
    (query,) = CODECS["search"].parse(search)
    assert isinstance(query, SearchQuery) and query.cube_ids == ("alice",) and query.top_k == 3
    got = request_message(ROUTE_OF["get"], {"cube_id": "alice"}, None,
                          {"ids": ["a,b", "c"]})
    assert CODECS["get"].parse(got) == ("alice", ["a", "b", "c"])
    activate = request_message(ROUTE_OF["activate"], {"cube_id": "c"},
                               {"memory_ids": ["m"], "replace": True}, {})
    assert CODECS["activate"].parse(activate) == ("c", ["m"], True)
    version = request_message(ROUTE_OF["delete_adapter"], {"cube_id": "c", "version": "3"},
                              None, {})
    assert CODECS["delete_adapter"].parse(version) == ("c", 3)


@pytest.mark.parametrize("path,body,query,field", [
    ({"cube_id": "c"}, {"query": "x", "topk": 3}, {}, "topk"),
    ({"cube_id": "c"}, {"query": "x", "top_k": "three"}, {}, "top_k"),
    ({"cube_id": "c"}, ["not", "an", "object"], {}, "body"),
])
def test_what_does_not_fit_the_request_names_its_field(path, body, query, field):
    with pytest.raises(InvalidArgument) as error:
        request_message(route("/cubes/{cube_id}/search", "POST"), path, body, query)
    assert error.value.field == field


def test_unknown_query_parameters_and_non_booleans_are_refused():
    with pytest.raises(InvalidArgument) as unknown:
        request_message(ROUTE_OF["get"], {"cube_id": "c"}, None, {"idz": ["a"]})
    assert unknown.value.field == "idz"
    with pytest.raises(InvalidArgument):
        request_message(ROUTE_OF["list_cubes"], {}, None, {"cube_id": ["x"]})


def test_replies_and_errors_round_trip_through_json():
    result = CODECS["delete"].reply(DeleteResult(2, ("gone",)))
    data = json.loads(json.dumps(message_json(result)))
    assert data == {"num_deleted": "2", "missing_ids": ["gone"]}  # proto3 JSON: int64 as text
    assert CODECS["delete"].read(reply_message("delete", data)).missing_ids == ("gone",)
    for error in (NotFound("no cube x"), FailedPrecondition("stale", "expected_version")):
        back = error_from_json(HTTP_STATUS[error.status], error_json(error))
        assert type(back) is type(error) and (back.message, back.field) == (error.message,
                                                                            error.field)
    assert isinstance(error_from_json(502, "<html>bad gateway</html>"), InternalError)


def test_the_committed_openapi_document_is_the_generated_one():
    committed = json.loads(openapi.COMMITTED.read_text())
    assert committed == json.loads(openapi.rendered()), (
        "protos/openapi.json drifted from the code: run python -m memos_cluster.api.openapi")
    for r in ROUTES:
        operation = committed["paths"][r.full_path][r.method.lower()]
        assert {p["name"] for p in operation["parameters"] if p["in"] == "path"} == set(
            r.path_params)
        assert ("requestBody" in operation) == r.has_body
