"""The servicer hook: the lenient request decoder (pure protobuf) and the TLS port it opens."""
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


def test_server_only_tls_port(tmp_path):
    """The hook's TLS port on a real gRPC server over loopback: a client trusting the CA gets
    through without a certificate of its own; one trusting another CA does not."""
    from concurrent import futures

    import grpc
    import pytest

    from actors.grpc_servicer import add_memory_service_to_server, add_tls_port
    from certs import make_certs
    from memos_cluster.client import MemosClient, TLSOptions
    from memos_cluster.core.config import GatewayConfig
    from memos_cluster.core.errors import Unavailable
    from memos_cluster.core.netutil import free_port

    class Servicer:
        def __getattr__(self, name):
            return lambda request, context: pb.PingResponse()

    certs = make_certs(tmp_path)
    port = free_port()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    add_memory_service_to_server(Servicer(), server)
    add_tls_port(server, GatewayConfig(tls_port=port, tls_cert_file=str(certs / "server.pem"),
                                       tls_key_file=str(certs / "server.key")))
    server.start()
    try:
        trusted = TLSOptions(ca_file=str(certs / "ca.pem"))
        with MemosClient(f"grpcs://127.0.0.1:{port}", tls=trusted, timeout_s=10) as client:
            client.ping()
        rogue = TLSOptions(ca_file=str(certs / "rogue-ca.pem"))
        with MemosClient(f"grpcs://127.0.0.1:{port}", tls=rogue, timeout_s=5) as client:
            with pytest.raises(Unavailable):
                client.ping()
    finally:
        server.stop(grace=None)
