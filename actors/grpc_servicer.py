"""The servicer hook Serve's gRPC proxy registers (`gRPCOptions.grpc_servicer_functions`).

It does what the generated `add_MemoryServiceServicer_to_server` does, with one difference: a
request that fails to parse (a string with invalid UTF-8, truncated bytes) does not become an
UNKNOWN status with a parser trace. Its deserializer returns an `UndecodableRequest` naming the
offending field instead, which travels to the gateway replica like any request and is answered
INVALID_ARGUMENT there.

It also opens the gateway's TLS port (`gateway.tls_port`) on the same server, since Serve's
proxy only opens a plaintext one. The proxy gets no memos config, so the hook reads the TLS
settings from its node's environment (`MEMOS__GATEWAY__TLS_*`, the config's environment form):
`cluster.start` sets them before it starts a local Ray; on Kubernetes the pod spec does.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import grpc
from google.protobuf import descriptor as pb_descriptor
from google.protobuf.message import DecodeError

from memos_cluster.api.memos.v1 import memos_pb2 as pb
from memos_cluster.core.config import GatewayConfig, load_config

logger = logging.getLogger("memos_cluster.gateway")

SERVICE_NAME = "memos.v1.MemoryService"
SERVICER_FUNCTION = "actors.grpc_servicer.add_memory_service_to_server"


@dataclass(frozen=True)
class UndecodableRequest:
    message_type: str  # e.g. "memos.v1.AddMemoriesRequest"
    field: str  # dotted path of the bad field, "" when it cannot be told
    reason: str


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise DecodeError("truncated varint")
        byte = data[pos]
        result |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return result, pos
        shift += 7


def find_bad_utf8(data: bytes, desc: pb_descriptor.Descriptor, prefix: str = "") -> str:
    """The dotted path of the first string field holding invalid UTF-8, or "" if none is found.
    Walks the wire format against the message descriptor (only for requests that failed)."""
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            _, pos = _read_varint(data, pos)
            continue
        if wire_type in (1, 5):
            pos += 8 if wire_type == 1 else 4
            continue
        if wire_type != 2:
            raise DecodeError(f"unsupported wire type {wire_type}")
        length, pos = _read_varint(data, pos)
        chunk, pos = data[pos:pos + length], pos + length
        field = desc.fields_by_number.get(number)
        if field is None:
            continue
        path = f"{prefix}{field.name}"
        if field.type == field.TYPE_STRING:
            try:
                chunk.decode("utf-8")
            except UnicodeDecodeError:
                return path
        elif field.type == field.TYPE_MESSAGE:
            found = find_bad_utf8(chunk, field.message_type, f"{path}.")
            if found:
                return found
    return ""


def _lenient(message_cls):
    def deserialize(data: bytes):
        try:
            return message_cls.FromString(data)
        except DecodeError as exc:
            desc = message_cls.DESCRIPTOR
            try:
                field = find_bad_utf8(data, desc)
            except DecodeError:
                field = ""
            reason = "is not valid UTF-8" if field else f"could not be parsed ({exc})"
            return UndecodableRequest(desc.full_name, field, reason)
    return deserialize


def add_memory_service_to_server(servicer, server) -> None:
    """Who calls it: Serve's gRPC proxy at start-up, with its own servicer and server."""
    service = pb.DESCRIPTOR.services_by_name["MemoryService"]
    handlers = {}
    for method in service.methods:
        request_cls = getattr(pb, method.input_type.name)
        response_cls = getattr(pb, method.output_type.name)
        make_handler = (grpc.unary_stream_rpc_method_handler if method.server_streaming
                        else grpc.unary_unary_rpc_method_handler)
        handlers[method.name] = make_handler(
            getattr(servicer, method.name),
            request_deserializer=_lenient(request_cls),
            response_serializer=response_cls.SerializeToString,
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    if hasattr(server, "add_registered_method_handlers"):
        server.add_registered_method_handlers(SERVICE_NAME, handlers)
    add_tls_port(server, load_config(environ=os.environ).gateway)


def server_credentials(gateway: GatewayConfig) -> grpc.ServerCredentials:
    """The TLS server credentials of `gateway` (certificate files read now)."""
    chain = Path(gateway.tls_cert_file).read_bytes()
    key = Path(gateway.tls_key_file).read_bytes()
    roots = Path(gateway.tls_client_ca_file).read_bytes() if gateway.tls_client_ca_file else None
    return grpc.ssl_server_credentials([(key, chain)], root_certificates=roots,
                                       require_client_auth=roots is not None)


def add_tls_port(server, gateway: GatewayConfig) -> None:
    """Listen for TLS on gateway.tls_port as well (no-op when it is 0)."""
    if not gateway.tls_port:
        return
    server.add_secure_port(f"[::]:{gateway.tls_port}", server_credentials(gateway))
    logger.info("gRPC TLS on port %d (client certificates %s)", gateway.tls_port,
                "required" if gateway.tls_client_ca_file else "not asked")
