"""The lenient request decoder (pure protobuf, no server needed)."""
from actors.grpc_servicer import UndecodableRequest, _lenient, find_bad_utf8
from memos_cluster.api.memos.v1 import memos_pb2 as pb

BAD = b"\xff\xfe"


def _string_field(number: int, payload: bytes) -> bytes:
    return bytes([(number << 3) | 2, len(payload)]) + payload


def test_bad_utf8_is_located_in_nested_messages():
    memory = _string_field(2, BAD)  # NewMemory.text
    request = _string_field(1, b"cube") + _string_field(2, memory)  # AddMemoriesRequest.memories
    assert find_bad_utf8(request, pb.AddMemoriesRequest.DESCRIPTOR) == "memories.text"
    decoded = _lenient(pb.AddMemoriesRequest)(request)
    assert isinstance(decoded, UndecodableRequest)
    assert decoded.field == "memories.text"


def test_good_requests_decode_normally():
    message = pb.SearchRequest(cube_ids=["a"], query="héllo")
    assert _lenient(pb.SearchRequest)(message.SerializeToString()) == message


def test_garbage_is_undecodable_without_a_field():
    decoded = _lenient(pb.SearchRequest)(b"\x0a\xff")
    assert isinstance(decoded, UndecodableRequest)
    assert "could not be parsed" in decoded.reason
