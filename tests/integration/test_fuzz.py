"""Fuzzing the live gateway: hypothesis builds request messages of every RPC from their proto
descriptors (strings with control characters, huge and negative numbers, NaN, unknown enum values,
deep metadata, the other tenant's cube ids), and raw bytes that may not parse at all, and sends
them over gRPC with an ordinary user's key. Every reply must be a proper status (never UNKNOWN,
INTERNAL or a hang), the service must stay up, and the other tenant's memories must not change.
The case counts are printed (`-s`) for the closing note."""
import collections
import os

import grpc
import pytest
from google.protobuf import struct_pb2
from google.protobuf.descriptor import FieldDescriptor as F
from hypothesis import HealthCheck, given, settings, strategies as st

from memos_cluster.api.memos.v1 import memos_pb2 as pb
from users import new_users
from memos_cluster.client import MemosClient
from memos_cluster.core.types import NewMemory

SERVICE = pb.DESCRIPTOR.services_by_name["MemoryService"]
# Statuses a reply may carry: a proper answer to bad, foreign or impossible input.
PROPER = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
          grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.ALREADY_EXISTS,
          grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.RESOURCE_EXHAUSTED}
# Cases per run; MEMOS_FUZZ_SCALE multiplies them for a longer hunt (the closing note's run).
SCALE = float(os.environ.get("MEMOS_FUZZ_SCALE", "1"))
# CI runs the same cases every time (a red CI is then a regression, not a new find); a hunt
# (MEMOS_FUZZ_SCALE set) draws new ones each run.
DERANDOMIZE = "MEMOS_FUZZ_SCALE" not in os.environ
CASES_PER_RPC = int(15 * SCALE)
RAW_CASES = int(120 * SCALE)
TALLY = collections.Counter()

INT_RANGES = {F.TYPE_INT32: (-2**31, 2**31 - 1), F.TYPE_INT64: (-2**63, 2**63 - 1)}
json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.text(max_size=20)
    | st.integers(-2**60, 2**60),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=3),
    max_leaves=12)


class Targets:
    """Ids worth aiming at: the fuzzing user's own (mostly, so requests get past the permission
    check into validation and storage) and the other tenant's."""
    strings: list = []
    cubes: list = []
    memories: list = []


def string_values(name=""):
    if name in ("cube_id", "cube_ids"):
        return st.sampled_from(Targets.cubes) | st.text(max_size=20)
    if name in ("id", "ids", "memory_ids"):
        return st.sampled_from(Targets.memories) | st.text(max_size=20)
    return (st.sampled_from(Targets.strings) | st.text(max_size=40)
            | st.text(alphabet=st.characters(max_codepoint=0x20), max_size=8)
            | st.just("x" * 3000) | st.sampled_from(['" || true || "', "cube_id != ''",
                                                    "../../etc", "\u202e", "💥" * 5]))


def scalar(field):
    if field.type == F.TYPE_STRING:
        return string_values(field.name)
    if field.type in INT_RANGES:
        low, high = INT_RANGES[field.type]
        return st.integers(low, high) | st.integers(-3, 70)
    if field.type == F.TYPE_BOOL:
        return st.booleans()
    if field.type == F.TYPE_FLOAT:
        return st.floats(width=32)
    if field.type == F.TYPE_DOUBLE:
        return st.floats()
    if field.type == F.TYPE_ENUM:
        return st.integers(-1, 6)
    raise AssertionError(f"no strategy for {field.full_name}")


def message_values(descriptor, depth=0):
    """A dict {field name: value} for a message, every field optional."""
    if descriptor.full_name == "google.protobuf.Struct":
        return st.dictionaries(st.text(max_size=12), json_values, max_size=4)
    if descriptor.full_name == "google.protobuf.Value":
        return json_values
    fields = {}
    for field in descriptor.fields:
        if field.type == F.TYPE_MESSAGE:
            if depth > 3:
                continue
            if field.message_type.GetOptions().map_entry:
                value = st.dictionaries(string_values(), json_values, max_size=3)
            else:
                inner = message_values(field.message_type, depth + 1)
                value = st.lists(inner, max_size=3) if field.is_repeated \
                    else inner
        else:
            value = st.lists(scalar(field), max_size=4) if field.is_repeated \
                else scalar(field)
        fields[field.name] = value
    return st.fixed_dictionaries({}, optional=fields)


def fill(message, values):
    """Set `values` (from message_values) on a protobuf message."""
    if message.DESCRIPTOR.full_name == "google.protobuf.Struct":
        message.update(values)
        return message
    if message.DESCRIPTOR.full_name == "google.protobuf.Value":
        holder = struct_pb2.Struct()
        holder.update({"v": values})
        message.CopyFrom(holder.fields["v"])
        return message
    for name, value in values.items():
        field = message.DESCRIPTOR.fields_by_name[name]
        target = getattr(message, name)
        if field.type != F.TYPE_MESSAGE:
            if field.is_repeated:
                target.extend(value)
            else:
                setattr(message, name, value)
        elif field.message_type.GetOptions().map_entry:
            for key, item in value.items():
                fill(target[key], item)
        elif field.is_repeated:
            for item in value:
                fill(target.add(), item)
        else:
            fill(target, value)
    return message


@pytest.fixture(scope="module")
def fuzz_env(running, config):
    admin = MemosClient(running.grpc_address, application=config.gateway.app_name)
    users = new_users(admin, ("victim", "fuzzer"), rate_limit_rps=100000)
    (victim_id, victim_key), (fuzzer_id, fuzzer_key) = users["victim"], users["fuzzer"]
    victim = MemosClient(running.grpc_address, application=config.gateway.app_name,
                         api_key=victim_key)
    fuzzer = MemosClient(running.grpc_address, application=config.gateway.app_name,
                         api_key=fuzzer_key)
    victim_cube, own_cube = victim_id, fuzzer_id
    victim.create_cube(victim_cube)
    victim.add(victim_cube, [NewMemory(f"victim secret {i}", id=f"v{i}") for i in range(5)])
    fuzzer.create_cube(own_cube)
    fuzzer.add(own_cube, [NewMemory(f"fuzzer note {i}", id=f"f{i}") for i in range(5)])
    Targets.strings = [victim_cube, own_cube, "v0", "f1", victim_id, fuzzer_id,
                       "shard-0", "read", "write", "admin", "status", "hybrid"]
    Targets.cubes = [own_cube] * 4 + [victim_cube]
    Targets.memories = [f"f{i}" for i in range(5)] + ["v0"]
    channel = grpc.insecure_channel(running.grpc_address)
    metadata = (("application", config.gateway.app_name),
                ("authorization", f"Bearer {fuzzer_key}"))
    snapshot = lambda: ([(m.id, m.version, m.text) for m in  # noqa: E731
                         victim.get(victim_cube, [f"v{i}" for i in range(5)]).items],
                        victim.get_cube(victim_cube).num_memories,
                        [v.text for v in victim.history(victim_cube, "v0")])
    before = snapshot()
    yield channel, metadata
    channel.close()
    assert victim.whoami().user_id == victim_id  # still up and answering
    assert snapshot() == before
    for cube in fuzzer.list_cubes():
        admin.delete_cube(cube.cube_id)
    admin.delete_cube(victim_cube)
    for name in ("victim", "fuzzer"):
        admin.delete_user(users[name][0])
    print(f"\nfuzz cases by status: {dict(TALLY)}; total {sum(TALLY.values())}")


def send(channel, metadata, method, payload: bytes):
    """One raw call; the status code it ended with."""
    call = (channel.unary_stream if method.server_streaming else channel.unary_unary)(
        f"/{SERVICE.full_name}/{method.name}", request_serializer=None,
        response_deserializer=None)
    try:
        reply = call(payload, metadata=metadata, timeout=60)
        if method.server_streaming:
            for _ in reply:
                pass
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as exc:
        return exc.code(), exc.details()


@pytest.mark.parametrize("method", [m for m in SERVICE.methods], ids=lambda m: m.name)
def test_fuzzed_requests_get_proper_statuses(fuzz_env, method):
    channel, metadata = fuzz_env
    request_cls = getattr(pb, method.input_type.name)

    @settings(max_examples=CASES_PER_RPC, deadline=None, database=None,
              derandomize=DERANDOMIZE, suppress_health_check=list(HealthCheck))
    @given(message_values(method.input_type))
    def one(values):
        if method.name == "Generate" and not 0 < values.get("max_new_tokens", 0) <= 8:
            values["max_new_tokens"] = 4  # bounded work; the limits have their own tests
        payload = fill(request_cls(), values).SerializeToString()
        code, details = send(channel, metadata, method, payload)
        TALLY[code.name] += 1
        assert code in PROPER, (method.name, values, code, details)
        assert "Traceback" not in details

    one()


@settings(max_examples=RAW_CASES, deadline=None, database=None, derandomize=DERANDOMIZE,
          suppress_health_check=list(HealthCheck))
@given(st.sampled_from([m for m in SERVICE.methods if not m.server_streaming]),
       st.binary(max_size=200))
def test_raw_bytes_get_proper_statuses(fuzz_env, method, payload):
    channel, metadata = fuzz_env
    code, details = send(channel, metadata, method, payload)
    TALLY[code.name] += 1
    assert code in PROPER, (method.name, payload, code, details)

