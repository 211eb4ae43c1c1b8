"""The gRPC transport of `MemosClient`: the client's module that speaks gRPC (the core proper,
outside `memos_cluster.client`, imports neither grpc nor ray).

Each method takes and returns domain types (the `memos_cluster.client.Transport` protocol),
converting to and from protobuf here; a non-OK status raises the memos exception of that status
with the server's message.
"""
from __future__ import annotations

from typing import Any, Iterator, Optional, Sequence

import grpc

from memos_cluster.activation.engine import BlockStats, GenerateStats, TokenEvent
from memos_cluster.activation.service import GenerateCall
from memos_cluster.api import convert, convert_auth
from memos_cluster.auth.access import Principal
from memos_cluster.auth.state import CubeAccess, KeyInfo, User
from memos_cluster.parametric.store import AdapterListing
from memos_cluster.parametric.trainer import TrainingJob
from memos_cluster.scheduler.scheduler import SchedulerStatus, TierStatus
from memos_cluster.api.memos.v1 import memos_pb2 as pb
from memos_cluster.api.memos.v1 import memos_pb2_grpc as pb_grpc
from memos_cluster.errors import ERRORS_BY_STATUS, InternalError, MemosError
from memos_cluster.types import (
    AddResult,
    CubeSpec,
    CubeStats,
    DeleteResult,
    GetResult,
    MemoryItem,
    MemoryUpdate,
    NewMemory,
    SearchHit,
    SearchQuery,
    ShardHealth,
    ShardsStatus,
)

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

    def _rpc(self, method: str, request: Any) -> Any:
        try:
            return getattr(self._stub, method)(request, timeout=self._timeout_s,
                                               metadata=self._metadata)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from None

    def create_cube(self, spec: CubeSpec) -> CubeSpec:
        request = pb.CreateCubeRequest(cube_id=spec.cube_id, description=spec.description)
        convert.dict_to_struct(spec.metadata, request.metadata)
        return convert.cube_spec_from_pb(self._rpc("CreateCube", request).cube)

    def delete_cube(self, cube_id: str) -> int:
        return self._rpc("DeleteCube", pb.DeleteCubeRequest(cube_id=cube_id)).num_memories_deleted

    def list_cubes(self) -> list[CubeSpec]:
        return [convert.cube_spec_from_pb(c)
                for c in self._rpc("ListCubes", pb.ListCubesRequest()).cubes]

    def get_cube(self, cube_id: str) -> CubeStats:
        return convert.stats_from_pb(self._rpc("GetCube", pb.GetCubeRequest(cube_id=cube_id)).stats)

    def add(self, cube_id: str, items: Sequence[NewMemory]) -> AddResult:
        request = pb.AddMemoriesRequest(cube_id=cube_id)
        for item in items:
            convert.new_memory_to_pb(item, request.memories.add())
        reply = self._rpc("AddMemories", request)
        return AddResult(ids=tuple(reply.ids), num_inserted=reply.num_inserted,
                         num_unchanged=reply.num_unchanged)

    def search(self, query: SearchQuery) -> list[SearchHit]:
        request = convert.search_to_pb(query)
        return [convert.hit_from_pb(h) for h in self._rpc("Search", request).hits]

    def get(self, cube_id: str, ids: Sequence[str]) -> GetResult:
        reply = self._rpc("GetMemories", pb.GetMemoriesRequest(cube_id=cube_id, ids=list(ids)))
        return GetResult(items=tuple(convert.memory_from_pb(m) for m in reply.memories),
                         missing_ids=tuple(reply.missing_ids))

    def update(self, update: MemoryUpdate) -> MemoryItem:
        reply = self._rpc("UpdateMemory", convert.update_to_pb(update))
        return convert.memory_from_pb(reply.memory)

    def history(self, cube_id: str, memory_id: str) -> list[MemoryItem]:
        reply = self._rpc("GetMemoryHistory",
                          pb.GetMemoryHistoryRequest(cube_id=cube_id, id=memory_id))
        return [convert.memory_from_pb(m) for m in reply.versions]

    def delete(self, cube_id: str, ids: Sequence[str]) -> DeleteResult:
        reply = self._rpc("DeleteMemories",
                          pb.DeleteMemoriesRequest(cube_id=cube_id, ids=list(ids)))
        return DeleteResult(num_deleted=reply.num_deleted, missing_ids=tuple(reply.missing_ids))

    def health(self) -> list[ShardHealth]:
        reply = self._rpc("Health", pb.HealthRequest())
        return [ShardHealth(shard_id=s.shard_id, is_ok=s.ok, detail=s.detail)
                for s in reply.shards]

    def ping(self) -> None:
        self._rpc("Ping", pb.PingRequest())

    def activate(self, cube_id: str, memory_ids: Sequence[str], replace: bool) -> BlockStats:
        request = pb.ActivateMemoriesRequest(cube_id=cube_id, memory_ids=list(memory_ids),
                                             replace=replace)
        return convert.block_stats_from_pb(self._rpc("ActivateMemories", request))

    def train(self, cube_id: str, memory_ids: Sequence[str], rank: int, steps: int,
              learning_rate: float) -> TrainingJob:
        return convert.job_from_pb(self._rpc("TrainAdapter", pb.TrainAdapterRequest(
            cube_id=cube_id, memory_ids=list(memory_ids), rank=rank, steps=steps,
            learning_rate=learning_rate)))

    def training_job(self, job_id: str) -> TrainingJob:
        return convert.job_from_pb(self._rpc("GetTrainingJob",
                                             pb.GetTrainingJobRequest(job_id=job_id)))

    def cancel_training(self, job_id: str) -> TrainingJob:
        return convert.job_from_pb(self._rpc("CancelTraining",
                                             pb.CancelTrainingRequest(job_id=job_id)))

    def adapters(self, cube_id: str) -> AdapterListing:
        reply = self._rpc("ListAdapters", pb.ListAdaptersRequest(cube_id=cube_id))
        current = [a.version for a in reply.adapters if a.current]
        return AdapterListing(tuple(convert.adapter_from_pb(a) for a in reply.adapters),
                              current[0] if current else 0)

    def delete_adapter(self, cube_id: str, version: int) -> None:
        self._rpc("DeleteAdapter", pb.DeleteAdapterRequest(cube_id=cube_id, version=version))

    def tier_status(self, cube_id: str) -> TierStatus:
        return convert.tier_status_from_pb(
            self._rpc("GetTierStatus", pb.GetTierStatusRequest(cube_id=cube_id)))

    def scheduler(self, action: str) -> SchedulerStatus:
        return convert.scheduler_status_from_pb(
            self._rpc("ControlScheduler", pb.ControlSchedulerRequest(action=action)))

    def shards(self) -> ShardsStatus:
        return convert.shards_status_from_pb(self._rpc("ListShards", pb.ListShardsRequest()))

    def reshard(self, shard_ids: Sequence[str]) -> ShardsStatus:
        return convert.shards_status_from_pb(
            self._rpc("Reshard", pb.ReshardRequest(shard_ids=list(shard_ids))))

    def generate(self, call: GenerateCall) -> Iterator[TokenEvent | GenerateStats]:
        try:
            for message in self._stub.Generate(convert.generate_to_pb(call),
                                               timeout=self._timeout_s,
                                               metadata=self._metadata):
                yield convert.generate_event_from_pb(message)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from None

    # ---- tenancy -------------------------------------------------------------------------------
    def whoami(self) -> Principal:
        return convert_auth.principal_from_pb(self._rpc("WhoAmI", pb.WhoAmIRequest()))

    def create_user(self, user_id: str, role: str) -> User:
        return convert_auth.user_from_pb(self._rpc(
            "CreateUser", pb.CreateUserRequest(user_id=user_id, role=role)))

    def list_users(self) -> list[User]:
        reply = self._rpc("ListUsers", pb.ListUsersRequest())
        return [convert_auth.user_from_pb(u) for u in reply.users]

    def delete_user(self, user_id: str) -> None:
        self._rpc("DeleteUser", pb.DeleteUserRequest(user_id=user_id))

    def create_key(self, user_id: str, name: str, expires_in_s: Optional[float],
                   rate_limit_rps: float) -> tuple[KeyInfo, str]:
        reply = self._rpc("CreateApiKey", pb.CreateApiKeyRequest(
            user_id=user_id, name=name, expires_in_s=int(expires_in_s or 0),
            rate_limit_rps=rate_limit_rps))
        return convert_auth.key_from_pb(reply.key), reply.api_key

    def list_keys(self, user_id: str) -> list[KeyInfo]:
        reply = self._rpc("ListApiKeys", pb.ListApiKeysRequest(user_id=user_id))
        return [convert_auth.key_from_pb(k) for k in reply.keys]

    def revoke_key(self, key_id: str) -> KeyInfo:
        return convert_auth.key_from_pb(self._rpc("RevokeApiKey",
                                                  pb.RevokeApiKeyRequest(key_id=key_id)))

    def share_cube(self, cube_id: str, user_id: str, permission: str) -> CubeAccess:
        return convert_auth.access_from_pb(self._rpc("ShareCube", pb.ShareCubeRequest(
            cube_id=cube_id, user_id=user_id, permission=permission)))

    def revoke_cube(self, cube_id: str, user_id: str) -> CubeAccess:
        return convert_auth.access_from_pb(self._rpc("RevokeCube", pb.RevokeCubeRequest(
            cube_id=cube_id, user_id=user_id)))

    def cube_access(self, cube_id: str) -> CubeAccess:
        return convert_auth.access_from_pb(self._rpc("GetCubeAccess",
                                                     pb.GetCubeAccessRequest(cube_id=cube_id)))
