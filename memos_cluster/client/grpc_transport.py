"""The gRPC transport of `MemosClient`: the client's module that speaks gRPC.

One generic path: an operation's arguments (domain types) become its request through its codec
(`memos_cluster.api.rpcs`), the RPC named in the operation table is called, and the response
becomes the result; a non-OK status raises the memos exception of that status with the server's
message.
"""
from __future__ import annotations

from typing import Any, Iterator, Optional, Sequence

import grpc

from memos_cluster.api.memos.v1 import memos_pb2_grpc as pb_grpc
from memos_cluster.api.rpcs import CODECS
from memos_cluster.core.errors import ERRORS_BY_STATUS, InternalError, MemosError
from memos_cluster.core.operations import operation_of_kind

_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def error_from_rpc(exc: grpc.RpcError) -> MemosError:
    code = exc.code()
    cls = ERRORS_BY_STATUS.get(code.name if code else "", InternalError)
    return cls(exc.details() or (code.name if code else "unknown error"))


class GrpcTransport:
    """Calls a gateway at `address` (host:port). The channel connects on the first call, so
    constructing one does no I/O. `tls`: (root certificates, private key, certificate chain)
    for a TLS channel, each None for gRPC's default; None: plaintext."""

    def __init__(self, address: str, timeout_s: float,
                 metadata: Sequence[tuple[str, str]], application: str,
                 tls: Optional[tuple[Optional[bytes], ...]] = None, server_name: str = ""):
        self.address = address
        self._timeout_s = timeout_s
        # Serve routes a gRPC call to an application by the "application" metadata.
        self._metadata = (("application", application),) + tuple(metadata)
        options = [("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
                   ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES)]
        if tls is None:
            self._channel = grpc.insecure_channel(address, options=options)
        else:
            if server_name:
                options.append(("grpc.ssl_target_name_override", server_name))
            self._channel = grpc.secure_channel(
                address, grpc.ssl_channel_credentials(*tls), options=options)
        self._stub = pb_grpc.MemoryServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def _method(self, operation: str, streaming: bool) -> Any:
        return getattr(self._stub, operation_of_kind(operation, streaming).rpc)

    def call(self, operation: str, *args: Any) -> Any:
        codec = CODECS[operation]
        method = self._method(operation, streaming=False)
        try:
            reply = method(codec.build(*args), timeout=self._timeout_s, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from None
        return codec.read(reply)

    def stream(self, operation: str, *args: Any) -> Iterator[Any]:
        codec = CODECS[operation]
        method = self._method(operation, streaming=True)
        try:
            for message in method(codec.build(*args), timeout=self._timeout_s,
                                  metadata=self._metadata):
                yield codec.read(message)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from None
