"""Bad input gets a proper status naming the field; nothing hangs or leaks a trace."""
import grpc
import pytest

from memos_cluster.api.memos.v1 import memos_pb2 as pb
from memos_cluster.core.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from memos_cluster.core.types import NewMemory


@pytest.mark.parametrize("call,field", [
    (lambda c, cube: c.add(cube, [NewMemory("")]), "memories[0].text"),
    (lambda c, cube: c.add(cube, [NewMemory("x" * 2001)]), "memories[0].text"),
    (lambda c, cube: c.add(cube, [NewMemory("ok")] * 51), "memories"),
    (lambda c, cube: c.add(cube, []), "memories"),
    (lambda c, cube: c.add(cube, [NewMemory("ok", id="bad id")]), "memories[0].id"),
    (lambda c, cube: c.add(cube, [NewMemory("ok", metadata={"bad key": 1})]),
     "memories[0].metadata"),
    (lambda c, cube: c.search(cube, "q", top_k=1000), "top_k"),
    (lambda c, cube: c.search(cube, ""), "query"),
    (lambda c, cube: c.search([], "q"), "cube_ids"),
    (lambda c, cube: c.get(cube, ["a/b"]), "ids[0]"),
    (lambda c, cube: c.get(cube, []), "ids"),
    (lambda c, cube: c.create_cube("has space"), "cube_id"),
    (lambda c, cube: c.update(cube, "x", ""), "text"),
])
def test_invalid_arguments(client, cube, call, field):
    with pytest.raises(InvalidArgument) as info:
        call(client, cube)
    assert field in info.value.message
    assert "Traceback" not in info.value.message


def test_unknown_cube_and_memory_are_not_found(client, cube):
    for call in (lambda: client.search("no-such-cube", "q"),
                 lambda: client.add("no-such-cube", ["x"]),
                 lambda: client.get_cube("no-such-cube"),
                 lambda: client.delete_cube("no-such-cube"),
                 lambda: client.update(cube, "no-such-memory", "text"),
                 lambda: client.history(cube, "no-such-memory"),
                 lambda: client.search([cube, "no-such-cube"], "q")):
        with pytest.raises(NotFound):
            call()


def test_conflicts(client, cube):
    with pytest.raises(AlreadyExists):
        client.create_cube(cube)
    client.add(cube, [NewMemory("first", id="m")])
    with pytest.raises(AlreadyExists):
        client.add(cube, [NewMemory("second", id="m")])
    client.update(cube, "m", "v2")
    with pytest.raises(FailedPrecondition):
        client.update(cube, "m", "stale", expected_version=1)


def test_invalid_utf8_is_invalid_argument(running, cube):
    memory = b"\x12\x02\xff\xfe"  # NewMemory.text = 0xFF 0xFE
    raw = pb.AddMemoriesRequest(cube_id=cube).SerializeToString() + \
        bytes([0x12, len(memory)]) + memory
    with grpc.insecure_channel(running.grpc_address) as channel:
        call = channel.unary_unary("/memos.v1.MemoryService/AddMemories",
                                   request_serializer=lambda b: b,
                                   response_deserializer=lambda b: b)
        with pytest.raises(grpc.RpcError) as info:
            call(raw, metadata=(("application", "memos"),), timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "memories.text" in info.value.details()


def test_validation_comes_before_auth_audit_and_storage(client, cube, config):
    """A 70,000-character cube id on an admin action: INVALID_ARGUMENT naming the field, as
    short a message as any other, and nothing written to the audit log (it was INTERNAL, "File
    name too long" from the adapter store, with the whole id in the audit log). An unknown
    caller's malformed request is refused as malformed too: nothing was looked up for it."""
    from memos_cluster.auth.audit import AuditLog
    from memos_cluster.client import MemosClient

    audit = AuditLog(config.auth_dir() / "audit.jsonl")
    before = len(list(audit.read()))
    huge = "c" * 70_000
    for call in (lambda c: c.delete_adapter(huge, 1), lambda c: c.delete_cube(huge),
                 lambda c: c.adapters(huge)):
        with pytest.raises(InvalidArgument) as info:
            call(client)
        assert info.value.message.startswith("cube_id") and len(info.value.message) < 200
    assert len(list(audit.read())) == before
    with MemosClient(client.address, api_key="") as anonymous:
        with pytest.raises(InvalidArgument):
            anonymous.delete_adapter(huge, 1)
