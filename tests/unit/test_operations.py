"""The operation table is the one place an operation is named: the proto's RPCs, the protobuf
codecs, the client's methods and the gateway's implementations are held to it here, and its
validation runs before anything else (field named, nothing else consulted)."""
from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from memos_cluster.api import rpcs
from memos_cluster.api.memos.v1 import memos_pb2 as pb
from memos_cluster.core.config import MemosConfig
from memos_cluster.core.errors import InvalidArgument
from memos_cluster.core.lifecycle import Feedback
from memos_cluster.core.operations import BY_RPC, OPERATIONS, validate
from memos_cluster.core.structure import EntityQuery
from memos_cluster.core.tier_types import ChatCall, ChatMessage, GenerateCall, SamplingParams
from memos_cluster.core.types import (
    ListQuery,
    CubeSpec, MemoryUpdate, NewMemory, SearchFilter, SearchMode, SearchQuery, TimeRange)

CLIENT = Path(__file__).resolve().parents[2] / "memos_cluster" / "client" / "__init__.py"
CONFIG = MemosConfig()


def client_operations() -> set[str]:
    """The operation names MemosClient's methods call (`self._call("name", ...)`)."""
    called = set()
    for node in ast.walk(ast.parse(CLIENT.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("_call", "_stream") and node.args \
                and isinstance(node.args[0], ast.Constant):
            called.add(node.args[0].value)
    return called


def test_every_rpc_is_one_operation_and_every_operation_an_rpc():
    methods = {m.name: m for m in rpcs.SERVICE.methods}
    assert set(BY_RPC) == set(methods)
    assert len(BY_RPC) == len(OPERATIONS)
    for op in OPERATIONS.values():
        assert methods[op.rpc].server_streaming == op.streaming, op.name


def test_every_operation_has_a_codec_with_the_proto_classes():
    assert set(rpcs.CODECS) == set(OPERATIONS)
    for name, op in OPERATIONS.items():
        method = rpcs.SERVICE.methods_by_name[op.rpc]
        assert rpcs.request_class(name).DESCRIPTOR is method.input_type
        assert rpcs.response_class(name).DESCRIPTOR is method.output_type


def test_the_client_calls_every_operation_by_its_table_name():
    assert client_operations() == set(OPERATIONS)


def test_the_gateway_implements_every_operation_and_rpc():
    from actors.gateway import MemoryGateway
    from actors.operations import Operations

    for name, op in OPERATIONS.items():
        assert callable(getattr(Operations, name, None)), name
        method = getattr(MemoryGateway, op.rpc)
        assert method.__name__ == op.rpc
        # Serve hands the gRPC context only to methods whose signature names it.
        assert "grpc_context" in inspect.signature(method).parameters
        assert inspect.isasyncgenfunction(method) == op.streaming


# Arguments as the client sends them, for every operation.
SAMPLES = {
    "create_cube": (CubeSpec("c1", "a cube", {"team": "x"}, default_ttl_ms=86_400_000),),
    "delete_cube": ("c1",),
    "list_cubes": (),
    "get_cube": ("c1",),
    "add": ("c1", [NewMemory("Alice has a cat", id="m1", metadata={"n": 1}, event_time_ms=5,
                             context="before", expires_at_ms=4_000_000_000_000,
                             valid_from_ms=-5)]),
    "search": (SearchQuery(("c1", "c2"), "cat", 5, SearchMode.BM25,
                           SearchFilter(("fact",), ("chat",), (("n", 1),), TimeRange(1, 9),
                                        states=("active", "superseded"), as_of_ms=0),
                           reference_time_ms=1_683_417_600_000),),
    "get": ("c1", ["m1", "m2"], ("archived",)),
    "feedback": (Feedback("c1", "m1", "outdated", "Alice has a dog now"),),
    "gateway_stats": (),
    "list_memories": (ListQuery("c1", SearchFilter(("fact",), created_at=TimeRange(3, None)),
                                "cats", 20, 40),),
    "list_entities": (EntityQuery("c1", "carol", "PERSON", 20, 40),),
    "get_entity": ("c1", "Caroline Smith"),
    "update": (MemoryUpdate("c1", "m1", "Alice has two cats", {"n": 2}, "fact", 7, 3),),
    "history": ("c1", "m1"),
    "delete": ("c1", ["m1"]),
    "health": (),
    "ping": (),
    "activate": ("c1", ["m1"], True),
    "generate": (GenerateCall(("c1",), "what pet?", SamplingParams(16, 0.5, 0.75, 3), True, True,
                              4, True, as_of_ms=1_683_417_600_000),),
    "chat": (ChatCall(("c1", "c2"), (ChatMessage("system", "Be brief."),
                                     ChatMessage("user", "hi", "caroline"),
                                     ChatMessage("assistant", "Hello!"),
                                     ChatMessage("user", "what pet?")),
                      SamplingParams(16, 0.5, 0.75, 3), 4, False),),
    "train": ("c1", ["m1"], 8, 20, 0.0078125, []),  # proto floats are float32: exact values
    "training_job": ("job1",),
    "cancel_training": ("job1",),
    "adapters": ("c1",),
    "delete_adapter": ("c1", 2),
    "tier_status": ("c1",),
    "scheduler": ("pause",),
    "shards": (),
    "reshard": (["shard-0", "shard-1"],),
    "whoami": (),
    "create_user": ("bob", "user"),
    "list_users": (),
    "delete_user": ("bob",),
    "create_key": ("bob", "laptop", 3600.0, 5.0),
    "list_keys": ("bob",),
    "revoke_key": ("abc123",),
    "share_cube": ("c1", "bob", "write"),
    "revoke_cube": ("c1", "bob"),
    "cube_access": ("c1",),
}


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_arguments_cross_the_wire_unchanged_and_validate(name):
    codec = rpcs.CODECS[name]
    request = codec.build(*SAMPLES[name])
    assert isinstance(request, rpcs.request_class(name))
    parsed = codec.parse(rpcs.request_class(name).FromString(request.SerializeToString()))
    assert tuple(parsed) == tuple(SAMPLES[name])
    assert validate(CONFIG, name, parsed) is OPERATIONS[name]


@pytest.mark.parametrize("name, args, field", [
    ("delete_adapter", ("x" * 70_000, 1), "cube_id"),
    ("delete_adapter", ("c1", 0), "version"),
    ("get", ("c1", "m1"), "ids"),  # a string is not a list of ids
    ("get_cube", (42,), "cube_id"),
    ("search", ("not a query",), "query"),
    ("train", ("c1", ["m1"], 999, 0, 0.0), "rank"),
    ("create_key", ("", "k", -5.0, 0.0), "expires_in_s"),
    ("scheduler", ("reboot",), "action"),
    ("share_cube", ("c1", "bob", "owner"), "permission"),
    ("generate", (GenerateCall(("c1",), "q", SamplingParams(10**6)),), "max_new_tokens"),
    ("ping", ("extra",), "args"),
    ("get", ("c1",), "args"),  # too few arguments from a hand-rolled caller
    ("list_entities", (EntityQuery("c1", offset=-1),), "page_token"),
    ("get_entity", ("c1", ""), "entity_id"),
    ("get_entity", ("c 1", "Caroline"), "cube_id"),
])
def test_validation_names_the_field(name, args, field):
    with pytest.raises(InvalidArgument) as info:
        validate(CONFIG, name, args)
    assert info.value.field == field
    assert len(info.value.message) < 300  # a 70,000-character id is not echoed back


def test_an_unknown_operation_is_invalid():
    with pytest.raises(InvalidArgument) as info:
        validate(CONFIG, "_service", ())
    assert info.value.field == "method"


def test_audit_lines_come_from_the_table():
    assert OPERATIONS["delete_cube"].audit(("c1",)) == ("delete_cube", "c1", "")
    assert OPERATIONS["scheduler"].audit(("status",)) is None
    assert OPERATIONS["scheduler"].audit(("pause",)) == ("scheduler", "cluster", "action=pause")
    assert OPERATIONS["delete_adapter"].audit(("c1", 3)) == ("delete_adapter", "c1", "version=3")


def test_results_cross_the_wire_unchanged():
    from memos_cluster.core.types import AddResult, DeleteResult, GetResult, MemoryItem

    item = MemoryItem("m1", "c1", "text", metadata={"a": [1, "b"]}, created_at_ms=1,
                      updated_at_ms=2, event_time_ms=None, source="s", version=3, context="c")
    for name, result in (("add", AddResult(("m1",), 1, 0)),
                         ("get", GetResult((item,), ("m2",))),
                         ("delete", DeleteResult(1, ())),
                         ("history", [item]),
                         ("delete_cube", 4)):
        codec = rpcs.CODECS[name]
        reply = codec.reply(result)
        again = rpcs.response_class(name).FromString(reply.SerializeToString())
        assert codec.read(again) == result, name
    assert pb.PingResponse() == rpcs.CODECS["ping"].reply(None)
