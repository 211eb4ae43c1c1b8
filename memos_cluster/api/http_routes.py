"""The HTTP/JSON form of every operation in the table (`core/operations.py`): one route each, as
resources a REST user expects, carried by the same protobuf codecs as gRPC (`rpcs.py`), so the
three fronts cannot disagree. A request's JSON is the protobuf request message in its JSON form
(proto field names), its path parameters and, for GET and DELETE, its query parameters filling
fields of the same message; the response is the response message's JSON. Errors are one JSON
shape, `{"error": {"code", "message", "field"}}`, with the HTTP status of their gRPC code.

Who uses it: the gateway's HTTP ingress (`actors/http_app.py`) to decode requests and encode
replies, the client's HTTP transport (`client/http_transport.py`) the other way, and
`api/openapi.py` to describe every route.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor

from memos_cluster.api.rpcs import request_class, response_class
from memos_cluster.core.errors import ERRORS_BY_STATUS, InternalError, InvalidArgument, MemosError
from memos_cluster.core.operations import OPERATIONS

API_PREFIX = "/v1"
# gRPC code -> HTTP status: the one mapping of errors (docs/api.md).
HTTP_STATUS: Mapping[str, int] = {
    "INVALID_ARGUMENT": 400, "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "ABORTED": 409, "FAILED_PRECONDITION": 412,
    "RESOURCE_EXHAUSTED": 429, "CANCELLED": 499, "INTERNAL": 500, "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504,
}
RETRY_AFTER_S = {"RESOURCE_EXHAUSTED": 1, "UNAVAILABLE": 1}  # the Retry-After header (seconds)


@dataclass(frozen=True)
class Route:
    operation: str  # its name in the operation table
    method: str  # GET, POST, PUT, PATCH or DELETE
    path: str  # below API_PREFIX; {name} segments are request fields
    summary: str
    # A path parameter that fills a repeated field: {"cube_id": "cube_ids"} (Search, Generate).
    path_fields: Mapping[str, str] = field(default_factory=dict)

    @property
    def full_path(self) -> str:
        return API_PREFIX + self.path

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)

    @property
    def has_body(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH")

    @property
    def streaming(self) -> bool:
        return OPERATIONS[self.operation].streaming


ROUTES: tuple[Route, ...] = (
    Route("create_cube", "POST", "/cubes", "Create a cube (one user's or agent's memory)"),
    Route("list_cubes", "GET", "/cubes", "The cubes the caller may read"),
    Route("get_cube", "GET", "/cubes/{cube_id}", "A cube's statistics"),
    Route("delete_cube", "DELETE", "/cubes/{cube_id}", "Delete a cube and all its memories"),
    Route("add", "POST", "/cubes/{cube_id}/memories", "Add memories (idempotent with ids)"),
    Route("get", "GET", "/cubes/{cube_id}/memories", "Memories by id (?ids=a&ids=b)"),
    Route("list_memories", "POST", "/cubes/{cube_id}/memories/list",
          "A page of the cube's memories, newest first, filtered (text, type, times)"),
    Route("list_entities", "GET", "/cubes/{cube_id}/entities",
          "A page of the cube's entities, most mentioned first "
          "(?name_contains=&label=&page_size=&page_token=)"),
    Route("get_entity", "GET", "/cubes/{cube_id}/entities/{entity_id}",
          "An entity: aliases, memories, relations, neighbouring entities"),
    Route("delete", "DELETE", "/cubes/{cube_id}/memories", "Delete memories (?ids=a&ids=b)"),
    Route("update", "PATCH", "/cubes/{cube_id}/memories/{id}",
          "Update a memory (a new version; the old one goes to its history)"),
    Route("feedback", "POST", "/cubes/{cube_id}/memories/{memory_id}/feedback",
          "Judge a memory: wrong (archive), outdated (supersede), useful"),
    Route("history", "GET", "/cubes/{cube_id}/memories/{id}/history",
          "Every version of a memory, oldest first"),
    Route("search", "POST", "/search", "Search cubes (cube_ids in the body)"),
    Route("search", "POST", "/cubes/{cube_id}/search", "Search one cube",
          {"cube_id": "cube_ids"}),
    Route("activate", "POST", "/cubes/{cube_id}/activation",
          "Put memories in the cube's activation memory (KV caches)"),
    Route("generate", "POST", "/generate",
          "Answer with memory, streamed as server-sent events (token, then stats)"),
    Route("chat", "POST", "/chat",
          "Answer a conversation's last message with memory, streamed as server-sent events "
          "(token, then stats); the OpenAI-compatible form is POST /v1/chat/completions"),
    Route("train", "POST", "/cubes/{cube_id}/adapters",
          "Train the cube's LoRA adapter on memories (a background job)"),
    Route("adapters", "GET", "/cubes/{cube_id}/adapters", "The cube's adapter versions"),
    Route("delete_adapter", "DELETE", "/cubes/{cube_id}/adapters/{version}",
          "Delete one adapter version"),
    Route("training_job", "GET", "/training-jobs/{job_id}", "A training job's progress"),
    Route("cancel_training", "POST", "/training-jobs/{job_id}/cancel", "Cancel a training job"),
    Route("tier_status", "GET", "/cubes/{cube_id}/tiers",
          "The cube's memories by access frequency and tier, and recent migrations"),
    Route("cube_access", "GET", "/cubes/{cube_id}/access", "Who may use the cube"),
    Route("share_cube", "PUT", "/cubes/{cube_id}/access/{user_id}",
          "Grant a user read, write or admin on the cube"),
    Route("revoke_cube", "DELETE", "/cubes/{cube_id}/access/{user_id}",
          "Revoke a user's grant on the cube"),
    Route("health", "GET", "/health", "Each shard's health"),
    Route("ping", "GET", "/ping", "A no-op through the gateway"),
    Route("scheduler", "POST", "/scheduler", "Pause, resume or run the tier scheduler"),
    Route("gateway_stats", "GET", "/gateway/stats",
          "This gateway replica's recent requests: rates, latencies, errors"),
    Route("shards", "GET", "/shards", "Shards, their cubes and rebalance progress"),
    Route("reshard", "POST", "/shards", "Set the shards (cubes move online)"),
    Route("whoami", "GET", "/whoami", "The caller's user and key"),
    Route("create_user", "POST", "/users", "Create a user"),
    Route("list_users", "GET", "/users", "Every user"),
    Route("delete_user", "DELETE", "/users/{user_id}", "Delete a user and their keys"),
    Route("create_key", "POST", "/users/{user_id}/keys",
          "Create an API key (the secret is shown once)"),
    Route("list_keys", "GET", "/users/{user_id}/keys", "A user's API keys"),
    Route("revoke_key", "DELETE", "/keys/{key_id}", "Revoke an API key"),
)
# operation -> its first route, the one clients call (Search: /search, for several cubes)
ROUTE_OF: Mapping[str, Route] = {r.operation: r for r in reversed(ROUTES)}


def _fields(message_cls: type) -> Mapping[str, FieldDescriptor]:
    return message_cls.DESCRIPTOR.fields_by_name


def _query_value(descriptor: FieldDescriptor, values: Sequence[str]) -> Any:
    """Query parameters as JSON values of their field (repeated: every value; booleans from
    true/false; the rest as protobuf's JSON parser reads strings)."""
    def one(text: str) -> Any:
        if descriptor.type == FieldDescriptor.TYPE_BOOL:
            if text.lower() not in ("true", "false", "1", "0"):
                raise InvalidArgument(f"{descriptor.name} must be true or false", descriptor.name)
            return text.lower() in ("true", "1")
        return text
    if descriptor.is_repeated:
        return [one(v) for part in values for v in part.split(",") if v]
    return one(values[-1])


def request_message(route: Route, path: Mapping[str, str], body: Optional[dict],
                    query: Mapping[str, Sequence[str]]) -> Any:
    """The protobuf request of a call to `route`: its JSON body (POST, PUT, PATCH) or its
    query parameters (GET, DELETE), then its path parameters over both. InvalidArgument
    naming the field for anything that does not fit the message."""
    cls = request_class(route.operation)
    fields = _fields(cls)
    data: dict[str, Any] = {}
    if route.has_body:
        if body is not None and not isinstance(body, dict):
            raise InvalidArgument("the request body must be a JSON object", "body")
        data.update(body or {})
    else:
        for name, values in query.items():
            if name not in fields:
                raise InvalidArgument(f"unknown query parameter {name!r}", name)
            data[name] = _query_value(fields[name], values)
    for name, value in path.items():
        target = route.path_fields.get(name, name)
        data[target] = [value] if target != name else value
    if route.operation == "generate" and "memory_mode" not in data \
            and not any(name.startswith("use_") for name in data):
        data["memory_mode"] = "auto"  # HTTP's default: no memory flag asks for auto
    return parse_json(cls, data)


def parse_json(cls: type, data: Any) -> Any:
    """`data` (JSON) as a `cls` message; InvalidArgument naming the field it chokes on."""
    try:
        return json_format.ParseDict(data, cls(), ignore_unknown_fields=False)
    except json_format.ParseError as exc:
        text = str(exc).splitlines()[0]
        named = re.search(r'(?:parse|field named|field) "?(\w+)"? ', text)
        raise InvalidArgument(f"{cls.__name__}: {text}", named.group(1) if named else "body")


def message_json(message: Any) -> dict[str, Any]:
    """A protobuf message as the JSON an HTTP reply carries: proto field names, every field
    present (zeros and empty lists too, so a client needs no defaults)."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def reply_message(operation: str, data: Any) -> Any:
    """The client side: a reply's JSON as the operation's response message."""
    return parse_json(response_class(operation), data)


def error_json(error: MemosError) -> dict[str, Any]:
    return {"error": {"code": error.status, "message": error.message, "field": error.field}}


def error_from_json(status: int, data: Any) -> MemosError:
    """The client side: an error reply as the memos exception of its code."""
    detail = data.get("error") if isinstance(data, dict) else None
    if not isinstance(detail, dict):
        return InternalError(f"HTTP {status} without a memos error body")
    cls = ERRORS_BY_STATUS.get(str(detail.get("code")), InternalError)
    return cls(str(detail.get("message", "")), str(detail.get("field") or ""))


def check_routes() -> None:
    """Every operation has a route and every route's path fields are its request's fields.
    Who calls it: the unit tests, and the HTTP ingress when it starts."""
    missing = set(OPERATIONS) - {r.operation for r in ROUTES}
    if missing:
        raise AssertionError(f"operations without an HTTP route: {sorted(missing)}")
    for route in ROUTES:
        fields = _fields(request_class(route.operation))
        for name in route.path_params:
            if route.path_fields.get(name, name) not in fields:
                raise AssertionError(f"{route.full_path}: {name} is not a request field")
