"""The Ray Serve gRPC gateway: protobuf in, `MemoryService` calls, protobuf out.

Method names match the RPC names of `memos.v1.MemoryService`. Every error leaves as a proper gRPC
status: memos errors map to their status code with their message; anything unexpected becomes
INTERNAL with a short message (the traceback goes to the replica's log, never to the client).
"""
from __future__ import annotations

import inspect
import logging
import time
import uuid
from typing import Any, Awaitable, Callable, Optional

import grpc
from ray import serve
from ray.serve import context as serve_context

from memos_cluster import logs
from memos_cluster.api import convert, convert_auth
from memos_cluster.api.memos.v1 import memos_pb2 as pb
from memos_cluster.config import MemosConfig, config_from_dict, load_config, with_overrides
from memos_cluster.errors import InternalError, InvalidArgument, MemosError, ResourceExhausted

from actors import metrics
from actors.auth import AuthGate
from actors.events import AccessShipper
from actors.grpc_servicer import UndecodableRequest
from actors.directory import get_or_create_directory
from actors.operations import Operations
from actors.scheduler import create_scheduler_actor
from actors.services import build_services

logger = logging.getLogger("memos_cluster.gateway")


def _check_decoded(request: Any) -> None:
    if isinstance(request, UndecodableRequest):
        raise InvalidArgument(f"{request.message_type}: field {request.field or '?'} "
                              f"{request.reason}", request.field)


def _as_memos_error(exc: Exception) -> MemosError:
    """Call from an except block: memos errors as they are, anything else logged (the trace
    stays in this replica's log) and replaced by a short INTERNAL error."""
    if isinstance(exc, MemosError):
        return exc
    logger.exception("unexpected error in the gateway")
    return InternalError("internal error in the memos gateway; see its log")


def _set_status(grpc_context: Any, exc: Exception) -> str:
    """Call from an except block: the error's gRPC code and message (see _as_memos_error);
    returns the status name."""
    error = _as_memos_error(exc)
    if grpc_context is not None:
        grpc_context.set_code(getattr(grpc.StatusCode, error.status))
        grpc_context.set_details(error.message)
    return error.status


def _count(rpc: str, status: str, began: float) -> None:
    """Request metrics of one call (memos_requests_total, memos_request_latency_ms)."""
    metrics.inc("memos_requests_total", rpc=rpc, status=status)
    metrics.observe("memos_request_latency_ms", logs.elapsed_ms(began), rpc=rpc)


def rpc(response_cls: type):
    """Make `async def Name(self, request, metadata) -> response` a Serve gRPC method. Serve
    passes the context only to methods whose signature names `grpc_context`, so the wrapper keeps
    that signature (no functools.wraps: inspect would then see the handler's). The handler gets
    the call's metadata (the API key rides there). Every failure leaves as a status: memos
    errors as their code and message, anything else as INTERNAL with the trace in the replica's
    log; the client gets an empty `response_cls` with it."""
    def wrap(handler: Callable[[Any, Any, tuple], Awaitable[Any]]):
        name = handler.__name__

        async def method(self, request: Any, grpc_context=None) -> Any:
            began, status = time.perf_counter(), "OK"
            try:
                self._check_request(request)
                return await handler(self, request, _metadata(grpc_context))
            except Exception as exc:  # the edge: every failure leaves as a status
                status = _set_status(grpc_context, exc)
            finally:
                _count(name, status, began)
            return response_cls()

        method.__name__, method.__qualname__ = handler.__name__, handler.__qualname__
        method.__doc__ = handler.__doc__
        return method
    return wrap


def _serve_request_id() -> str:
    """Serve's id of the request being handled (a client may set it with `request_id`
    metadata); the same id is in Serve's own log lines for the call."""
    return serve_context._get_serve_request_context().request_id or uuid.uuid4().hex


def _metadata(grpc_context: Any) -> tuple:
    return tuple(grpc_context.invocation_metadata()) if grpc_context is not None else ()


class MemoryGateway:
    def __init__(self, config: MemosConfig):
        self._config = config
        logs.configure_json_logging("gateway")
        services = build_services(config)
        self._service = services.memory
        self._gate = AuthGate(config)
        # Access events for the scheduler: buffered (bounded) and shipped off the request path.
        scheduler = create_scheduler_actor(config) if config.scheduler.enabled else None
        if scheduler is not None:
            scheduler.start.remote()
        note = AccessShipper(config, scheduler).note
        services.activation.on_access = note
        self._ops = Operations(config, services, get_or_create_directory(config), scheduler,
                               self._gate, note)
        self._operations = self._ops.table()
        # Checked against each Ray-transport call's arguments; worked out once. The caller
        # (first parameter) is not the client's to send.
        self._signatures = {
            name: inspect.signature(op).replace(
                parameters=list(inspect.signature(op).parameters.values())[1:])
            for name, op in self._operations.items()}

    def _check_request(self, request: Any) -> None:
        _check_decoded(request)
        size = request.ByteSize()
        if size > self._config.limits.max_request_bytes:
            raise ResourceExhausted(f"the request is {size} bytes, more than the limit of "
                                    f"{self._config.limits.max_request_bytes}")

    async def _run(self, metadata: tuple, operation: str, *args: Any) -> Any:
        """Authenticate, authorize, then run one operation: what every RPC and every
        Ray-transport call does, under the request's id (see memos_cluster/logs.py)."""
        logs.request_id.set(_serve_request_id())
        who = await self._gate.check(metadata, operation, args)
        return await self._operations[operation](who, *args)

    @rpc(pb.CreateCubeResponse)
    async def CreateCube(self, request: pb.CreateCubeRequest, metadata):
        spec = await self._run(metadata, "create_cube", convert.cube_from_pb(request))
        return pb.CreateCubeResponse(cube=convert.cube_to_pb(spec))

    @rpc(pb.DeleteCubeResponse)
    async def DeleteCube(self, request: pb.DeleteCubeRequest, metadata):
        num = await self._run(metadata, "delete_cube", request.cube_id)
        return pb.DeleteCubeResponse(num_memories_deleted=num)

    @rpc(pb.ListCubesResponse)
    async def ListCubes(self, request: pb.ListCubesRequest, metadata):
        cubes = await self._run(metadata, "list_cubes")
        return pb.ListCubesResponse(cubes=[convert.cube_to_pb(c) for c in cubes])

    @rpc(pb.GetCubeResponse)
    async def GetCube(self, request: pb.GetCubeRequest, metadata):
        stats = await self._run(metadata, "get_cube", request.cube_id)
        return pb.GetCubeResponse(stats=convert.stats_to_pb(stats))

    @rpc(pb.AddMemoriesResponse)
    async def AddMemories(self, request: pb.AddMemoriesRequest, metadata):
        items = [convert.new_memory_from_pb(m) for m in request.memories]
        result = await self._run(metadata, "add", request.cube_id, items)
        return pb.AddMemoriesResponse(ids=list(result.ids), num_inserted=result.num_inserted,
                                      num_unchanged=result.num_unchanged)

    @rpc(pb.SearchResponse)
    async def Search(self, request: pb.SearchRequest, metadata):
        response = pb.SearchResponse()
        for hit in await self._run(metadata, "search", convert.search_from_pb(request)):
            convert.hit_to_pb(hit, response.hits.add())
        return response

    @rpc(pb.GetMemoriesResponse)
    async def GetMemories(self, request: pb.GetMemoriesRequest, metadata):
        result = await self._run(metadata, "get", request.cube_id, list(request.ids))
        return pb.GetMemoriesResponse(
            memories=[convert.memory_to_pb(m) for m in result.items],
            missing_ids=list(result.missing_ids))

    @rpc(pb.UpdateMemoryResponse)
    async def UpdateMemory(self, request: pb.UpdateMemoryRequest, metadata):
        item = await self._run(metadata, "update", convert.update_from_pb(request))
        return pb.UpdateMemoryResponse(memory=convert.memory_to_pb(item))

    @rpc(pb.GetMemoryHistoryResponse)
    async def GetMemoryHistory(self, request: pb.GetMemoryHistoryRequest, metadata):
        versions = await self._run(metadata, "history", request.cube_id, request.id)
        return pb.GetMemoryHistoryResponse(
            versions=[convert.memory_to_pb(m) for m in versions])

    @rpc(pb.DeleteMemoriesResponse)
    async def DeleteMemories(self, request: pb.DeleteMemoriesRequest, metadata):
        result = await self._run(metadata, "delete", request.cube_id, list(request.ids))
        return pb.DeleteMemoriesResponse(num_deleted=result.num_deleted,
                                         missing_ids=list(result.missing_ids))

    @rpc(pb.HealthResponse)
    async def Health(self, request: pb.HealthRequest, metadata):
        shards = await self._run(metadata, "health")
        return pb.HealthResponse(
            ok=all(s.is_ok for s in shards),
            shards=[pb.ShardHealth(shard_id=s.shard_id, ok=s.is_ok, detail=s.detail)
                    for s in shards])

    @rpc(pb.PingResponse)
    async def Ping(self, request: pb.PingRequest, metadata):
        await self._run(metadata, "ping")
        return pb.PingResponse()

    @rpc(pb.ActivateMemoriesResponse)
    async def ActivateMemories(self, request: pb.ActivateMemoriesRequest, metadata):
        stats = await self._run(metadata, "activate", request.cube_id, list(request.memory_ids),
                                request.replace)
        return convert.block_stats_to_pb(stats)

    @rpc(pb.TrainingJob)
    async def TrainAdapter(self, request: pb.TrainAdapterRequest, metadata):
        return convert.job_to_pb(await self._run(
            metadata, "train", request.cube_id, list(request.memory_ids), request.rank,
            request.steps, request.learning_rate))

    @rpc(pb.TrainingJob)
    async def GetTrainingJob(self, request: pb.GetTrainingJobRequest, metadata):
        return convert.job_to_pb(await self._run(metadata, "training_job", request.job_id))

    @rpc(pb.TrainingJob)
    async def CancelTraining(self, request: pb.CancelTrainingRequest, metadata):
        return convert.job_to_pb(await self._run(metadata, "cancel_training", request.job_id))

    @rpc(pb.ListAdaptersResponse)
    async def ListAdapters(self, request: pb.ListAdaptersRequest, metadata):
        listing = await self._run(metadata, "adapters", request.cube_id)
        return pb.ListAdaptersResponse(adapters=[
            convert.adapter_to_pb(r, r.version == listing.current_version)
            for r in listing.adapters])

    @rpc(pb.DeleteAdapterResponse)
    async def DeleteAdapter(self, request: pb.DeleteAdapterRequest, metadata):
        await self._run(metadata, "delete_adapter", request.cube_id, request.version)
        return pb.DeleteAdapterResponse()

    @rpc(pb.GetTierStatusResponse)
    async def GetTierStatus(self, request: pb.GetTierStatusRequest, metadata):
        return convert.tier_status_to_pb(await self._run(metadata, "tier_status",
                                                         request.cube_id))

    @rpc(pb.ControlSchedulerResponse)
    async def ControlScheduler(self, request: pb.ControlSchedulerRequest, metadata):
        return convert.scheduler_status_to_pb(await self._run(metadata, "scheduler",
                                                              request.action))

    @rpc(pb.ListShardsResponse)
    async def ListShards(self, request: pb.ListShardsRequest, metadata):
        return convert.shards_status_to_pb(await self._run(metadata, "shards"))

    @rpc(pb.ListShardsResponse)
    async def Reshard(self, request: pb.ReshardRequest, metadata):
        return convert.shards_status_to_pb(await self._run(metadata, "reshard",
                                                           list(request.shard_ids)))

    # ---- tenancy -----------------------------------------------------------------------------
    @rpc(pb.WhoAmIResponse)
    async def WhoAmI(self, request: pb.WhoAmIRequest, metadata):
        return convert_auth.principal_to_pb(await self._run(metadata, "whoami"))

    @rpc(pb.User)
    async def CreateUser(self, request: pb.CreateUserRequest, metadata):
        return convert_auth.user_to_pb(await self._run(metadata, "create_user", request.user_id,
                                                       request.role))

    @rpc(pb.ListUsersResponse)
    async def ListUsers(self, request: pb.ListUsersRequest, metadata):
        users = await self._run(metadata, "list_users")
        return pb.ListUsersResponse(users=[convert_auth.user_to_pb(u) for u in users])

    @rpc(pb.DeleteUserResponse)
    async def DeleteUser(self, request: pb.DeleteUserRequest, metadata):
        await self._run(metadata, "delete_user", request.user_id)
        return pb.DeleteUserResponse()

    @rpc(pb.CreateApiKeyResponse)
    async def CreateApiKey(self, request: pb.CreateApiKeyRequest, metadata):
        if request.expires_in_s < 0:
            raise InvalidArgument("expires_in_s must not be negative", "expires_in_s")
        info, secret = await self._run(metadata, "create_key", request.user_id, request.name,
                                       float(request.expires_in_s) or None,
                                       request.rate_limit_rps)
        return pb.CreateApiKeyResponse(key=convert_auth.key_to_pb(info), api_key=secret)

    @rpc(pb.ListApiKeysResponse)
    async def ListApiKeys(self, request: pb.ListApiKeysRequest, metadata):
        keys = await self._run(metadata, "list_keys", request.user_id)
        return pb.ListApiKeysResponse(keys=[convert_auth.key_to_pb(k) for k in keys])

    @rpc(pb.ApiKeyInfo)
    async def RevokeApiKey(self, request: pb.RevokeApiKeyRequest, metadata):
        return convert_auth.key_to_pb(await self._run(metadata, "revoke_key", request.key_id))

    @rpc(pb.CubeAccess)
    async def ShareCube(self, request: pb.ShareCubeRequest, metadata):
        return convert_auth.access_to_pb(await self._run(
            metadata, "share_cube", request.cube_id, request.user_id, request.permission))

    @rpc(pb.CubeAccess)
    async def RevokeCube(self, request: pb.RevokeCubeRequest, metadata):
        return convert_auth.access_to_pb(await self._run(
            metadata, "revoke_cube", request.cube_id, request.user_id))

    @rpc(pb.CubeAccess)
    async def GetCubeAccess(self, request: pb.GetCubeAccessRequest, metadata):
        return convert_auth.access_to_pb(await self._run(metadata, "cube_access",
                                                         request.cube_id))

    async def Generate(self, request: pb.GenerateRequest, grpc_context=None):
        """Server streaming: tokens as they come, then the stats. Errors end the stream with
        their status (before any token for bad input or a refused caller)."""
        began, status = time.perf_counter(), "OK"
        try:
            self._check_request(request)
            call = convert.generate_from_pb(request)
            async for event in self._stream(_metadata(grpc_context), call):
                yield convert.generate_event_to_pb(event)
        except Exception as exc:
            # A stream's status reaches the client only if the generator raises after setting
            # it (Serve wraps it as the user's status); a plain return would end it as OK.
            status = _set_status(grpc_context, exc)
            raise
        finally:
            _count("Generate", status, began)

    async def _stream(self, metadata: tuple, call):
        logs.request_id.set(_serve_request_id())
        who = await self._gate.check(metadata, "generate", (call,))
        async for event in self._ops.generate(who, call):
            yield event

    # ---- the Ray transport -----------------------------------------------------------------
    async def call(self, method: str, args: tuple, metadata: tuple) -> Any:
        """Who calls it: `actors.ray_transport.RayTransport`, through a Serve deployment handle,
        for clients running on the cluster. The same authentication, rules, service and
        validation as the RPCs above, on domain types; memos errors travel back as themselves."""
        if method not in self._operations:
            raise InvalidArgument(f"{method!r} is not a memos operation", "method")
        try:
            self._signatures[method].bind(*args)
        except TypeError as exc:  # wrong arguments from a hand-rolled caller
            raise InvalidArgument(f"{method}: {exc}", "args") from None
        began, status = time.perf_counter(), "OK"
        try:
            return await self._run(tuple(metadata), method, *args)
        except Exception as exc:  # the edge: memos errors as they are, the rest INTERNAL
            error = _as_memos_error(exc)
            status = error.status
            raise error from None
        finally:
            _count(f"ray:{method}", status, began)

    async def call_stream(self, method: str, args: tuple, metadata: tuple):
        """The streaming counterpart of `call` (Generate), for the Ray transport."""
        if method != "generate" or len(args) != 1:
            raise InvalidArgument(f"{method!r} is not a streaming memos operation", "method")
        async for event in self._stream(tuple(metadata), args[0]):
            yield event


def build_app(config: MemosConfig):
    """The Serve application for a config. Who calls it: `actors.cluster.start_serve`."""
    deployment = serve.deployment(
        MemoryGateway,
        name="MemoryGateway",
        num_replicas=config.gateway.num_replicas,
        ray_actor_options={"num_cpus": 0},
    )
    return deployment.bind(config)


def app_builder(args: Optional[dict[str, Any]] = None):
    """Entry point for Serve YAML (`import_path: actors.gateway:app_builder`). args may hold
    `config_dict` (a whole resolved memos config, as `memos-cluster up` deploys it), or `config`
    (a memos YAML path) and `overrides` (dotted keys, as `--set` takes, applied after the
    environment's MEMOS__* variables)."""
    args = args or {}
    if "config_dict" in args:
        return build_app(config_from_dict(args["config_dict"]))
    config = load_config(args.get("config"))
    return build_app(with_overrides(config, dict(args.get("overrides") or {})))
