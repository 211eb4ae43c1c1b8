"""MemosClient: the typed Python client of the gRPC API.

Every RPC is one method returning domain types (`memos_cluster.types`); a non-OK status raises the
memos exception of that status (`memos_cluster.errors`), with the server's message. A closed or
unreachable gateway raises Unavailable.
"""
from __future__ import annotations

import time
from typing import Any, Iterable, Optional, Sequence

import grpc

from memos_cluster.api import convert
from memos_cluster.api.memos.v1 import memos_pb2 as pb
from memos_cluster.api.memos.v1 import memos_pb2_grpc as pb_grpc
from memos_cluster.errors import ERRORS_BY_STATUS, InternalError, MemosError, Unavailable
from memos_cluster.types import (
    AddResult,
    CubeSpec,
    CubeStats,
    DeleteResult,
    GetResult,
    MemoryItem,
    NewMemory,
    SearchFilter,
    SearchHit,
    SearchMode,
    ShardHealth,
)

_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def error_from_rpc(exc: grpc.RpcError) -> MemosError:
    code = exc.code()
    cls = ERRORS_BY_STATUS.get(code.name if code else "", InternalError)
    return cls(exc.details() or (code.name if code else "unknown error"))


class MemosClient:
    """A connection to a memos-cluster gateway, e.g. `MemosClient("127.0.0.1:9000")`.
    `metadata` is sent with every call (later: authorization); `timeout_s` bounds each call;
    `application` is the Serve application name (`gateway.app_name`)."""

    def __init__(self, address: str, timeout_s: float = 60.0,
                 metadata: Optional[Sequence[tuple[str, str]]] = None,
                 application: str = "memos"):
        self.address = address
        self._timeout_s = timeout_s
        # Serve routes a gRPC call to an application by the "application" metadata.
        self._metadata = (("application", application),) + tuple(metadata or ())
        # Lazy: grpc connects on the first call, so constructing a client does no I/O.
        self._channel = grpc.insecure_channel(address, options=[
            ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
        ])
        self._stub = pb_grpc.MemoryServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "MemosClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _call(self, method: str, request: Any) -> Any:
        try:
            return getattr(self._stub, method)(request, timeout=self._timeout_s,
                                               metadata=self._metadata)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from None

    # ---- cubes -----------------------------------------------------------------------------
    def create_cube(self, cube_id: str, description: str = "",
                    metadata: Optional[dict[str, Any]] = None) -> CubeSpec:
        request = pb.CreateCubeRequest(cube_id=cube_id, description=description)
        convert.dict_to_struct(metadata, request.metadata)
        return convert.cube_spec_from_pb(self._call("CreateCube", request).cube)

    def delete_cube(self, cube_id: str) -> int:
        """Purge a cube and all its memories; returns how many memories it held."""
        return self._call("DeleteCube", pb.DeleteCubeRequest(cube_id=cube_id)).num_memories_deleted

    def list_cubes(self) -> list[CubeSpec]:
        return [convert.cube_spec_from_pb(c)
                for c in self._call("ListCubes", pb.ListCubesRequest()).cubes]

    def get_cube(self, cube_id: str) -> CubeStats:
        return convert.stats_from_pb(self._call("GetCube", pb.GetCubeRequest(cube_id=cube_id)).stats)

    # ---- memories --------------------------------------------------------------------------
    def add(self, cube_id: str, items: Iterable[NewMemory | str]) -> AddResult:
        """Add a batch; plain strings are shorthand for NewMemory(text=...)."""
        request = pb.AddMemoriesRequest(cube_id=cube_id)
        for item in items:
            convert.new_memory_to_pb(NewMemory(text=item) if isinstance(item, str) else item,
                                     request.memories.add())
        reply = self._call("AddMemories", request)
        return AddResult(ids=tuple(reply.ids), num_inserted=reply.num_inserted,
                         num_unchanged=reply.num_unchanged)

    def search(self, cube_ids: str | Sequence[str], query: str, top_k: int = 0,
               mode: Optional[SearchMode] = None,
               filter: Optional[SearchFilter] = None) -> list[SearchHit]:
        """top_k 0 and mode None take the server's defaults."""
        cubes = [cube_ids] if isinstance(cube_ids, str) else list(cube_ids)
        request = pb.SearchRequest(cube_ids=cubes, query=query, top_k=top_k,
                                   mode=convert.MODE_TO_PB.get(mode, pb.SEARCH_MODE_UNSPECIFIED))
        if filter is not None:
            convert.filter_to_pb(filter, request.filter)
        return [convert.hit_from_pb(h) for h in self._call("Search", request).hits]

    def get(self, cube_id: str, ids: Sequence[str]) -> GetResult:
        reply = self._call("GetMemories", pb.GetMemoriesRequest(cube_id=cube_id, ids=list(ids)))
        return GetResult(items=tuple(convert.memory_from_pb(m) for m in reply.memories),
                         missing_ids=tuple(reply.missing_ids))

    def update(self, cube_id: str, memory_id: str, text: str,
               metadata: Optional[dict[str, Any]] = None, memory_type: str = "",
               event_time_ms: Optional[int] = None,
               expected_version: int = 0) -> MemoryItem:
        """A new version of a memory; metadata None keeps the old metadata."""
        request = pb.UpdateMemoryRequest(
            cube_id=cube_id, id=memory_id, text=text, memory_type=memory_type,
            replace_metadata=metadata is not None,
            has_event_time=event_time_ms is not None, event_time_ms=event_time_ms or 0,
            expected_version=expected_version)
        convert.dict_to_struct(metadata, request.metadata)
        return convert.memory_from_pb(self._call("UpdateMemory", request).memory)

    def history(self, cube_id: str, memory_id: str) -> list[MemoryItem]:
        """Every version, oldest first."""
        reply = self._call("GetMemoryHistory",
                           pb.GetMemoryHistoryRequest(cube_id=cube_id, id=memory_id))
        return [convert.memory_from_pb(m) for m in reply.versions]

    def delete(self, cube_id: str, ids: Sequence[str]) -> DeleteResult:
        reply = self._call("DeleteMemories",
                           pb.DeleteMemoriesRequest(cube_id=cube_id, ids=list(ids)))
        return DeleteResult(num_deleted=reply.num_deleted, missing_ids=tuple(reply.missing_ids))

    def health(self) -> list[ShardHealth]:
        reply = self._call("Health", pb.HealthRequest())
        return [ShardHealth(shard_id=s.shard_id, is_ok=s.ok, detail=s.detail)
                for s in reply.shards]

    def wait_ready(self, timeout_s: float = 120.0, poll_s: float = 0.5) -> None:
        """Block until the gateway answers Health with every shard ok, or raise Unavailable.
        Who calls it: the CLI and tests, right after starting a cluster."""
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                shards = self.health()
                if shards and all(s.is_ok for s in shards):
                    return
                last = "; ".join(f"{s.shard_id}: {s.detail}" for s in shards if not s.is_ok)
            except MemosError as exc:
                last = exc.message
            time.sleep(poll_s)
        raise Unavailable(f"gateway {self.address} not ready after {timeout_s:.0f} s: {last}")

    def ping(self) -> None:
        """A no-op round trip through the gateway (the overhead baseline)."""
        self._call("Ping", pb.PingRequest())
