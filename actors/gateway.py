"""The Ray Serve gRPC gateway: protobuf in, `MemoryService` calls, protobuf out.

Method names match the RPC names of `memos.v1.MemoryService`. Every error leaves as a proper gRPC
status: memos errors map to their status code with their message; anything unexpected becomes
INTERNAL with a short message (the traceback goes to the replica's log, never to the client).
"""
from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any, Awaitable, Callable, Optional

import grpc
from ray import serve

from memos_cluster.api import convert
from memos_cluster.api.memos.v1 import memos_pb2 as pb
from memos_cluster.config import MemosConfig, config_from_dict, load_config, with_overrides
from memos_cluster.errors import FailedPrecondition, InternalError, InvalidArgument, MemosError
from memos_cluster.parametric.store import AdapterListing, current_of
from memos_cluster.scheduler.scheduler import CONTROL_ACTIONS

from actors.events import AccessShipper
from actors.grpc_servicer import UndecodableRequest
from actors.handles import call_actor
from actors.directory import get_or_create_directory
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


def _set_status(grpc_context: Any, exc: Exception) -> None:
    """Call from an except block: the error's gRPC code and message (see _as_memos_error)."""
    error = _as_memos_error(exc)
    grpc_context.set_code(getattr(grpc.StatusCode, error.status))
    grpc_context.set_details(error.message)


def rpc(response_cls: type):
    """Make `async def Name(self, request) -> response` a Serve gRPC method. Serve passes the
    context only to methods whose signature names `grpc_context`, so the wrapper keeps that
    signature (no functools.wraps: inspect would then see the handler's). Every failure leaves as
    a status: memos errors as their code and message, anything else as INTERNAL with the trace in
    the replica's log; the client gets an empty `response_cls` with it."""
    def wrap(handler: Callable[[Any, Any], Awaitable[Any]]):
        async def method(self, request: Any, grpc_context=None) -> Any:
            try:
                _check_decoded(request)
                return await handler(self, request)
            except Exception as exc:  # the edge: every failure leaves as a status
                _set_status(grpc_context, exc)
            return response_cls()

        method.__name__, method.__qualname__ = handler.__name__, handler.__qualname__
        method.__doc__ = handler.__doc__
        return method
    return wrap


class MemoryGateway:
    def __init__(self, config: MemosConfig):
        self._config = config
        services = build_services(config)
        self._service = services.memory
        self._activation = services.activation
        self._parametric = services.parametric
        self._directory = get_or_create_directory(config)
        self._background: set[asyncio.Task] = set()
        # Access events for the scheduler: buffered (bounded) and shipped off the request path.
        self._scheduler = create_scheduler_actor(config) if config.scheduler.enabled else None
        if self._scheduler is not None:
            self._scheduler.start.remote()
        self._note = AccessShipper(config, self._scheduler).note
        self._activation.on_access = self._note
        self._operations = self._operation_table()
        # Checked against each Ray-transport call's arguments; worked out once.
        self._signatures = {name: inspect.signature(op) for name, op in self._operations.items()}

    def _invalidate_later(self, cube_id: str, ids: list[str], deleted: bool) -> None:
        """Drop KV caches holding the old versions (and, for deletes, stop serving adapters
        trained on the memories), off the request path: a stale cache can never be used anyway
        (blocks are composed from current versions), so the write does not wait for, or fail
        with, the KV actor."""
        loop = asyncio.get_running_loop()
        work = [self._activation.invalidate(cube_id, ids, deleted)]
        if deleted:
            work.append(self._parametric.mark_stale(cube_id, ids))
        for coroutine in work:
            task = loop.create_task(coroutine)
            self._background.add(task)
            task.add_done_callback(self._log_background)

    # ---- operations shared by the RPCs and the Ray transport (domain types) -----------------
    async def _search(self, query):
        hits = await self._parametric.annotate(await self._service.search(query))
        self._note([(h.item.cube_id, h.item.id, h.item.version) for h in hits], "search")
        return hits

    async def _get(self, cube_id, ids):
        result = await self._service.get(cube_id, ids)
        self._note([(m.cube_id, m.id, m.version) for m in result.items], "get")
        return result

    async def _update(self, update):
        item = await self._service.update(update)
        self._invalidate_later(item.cube_id, [item.id], deleted=False)
        return item

    async def _delete(self, cube_id, ids):
        result = await self._service.delete(cube_id, ids)
        if result.num_deleted:
            self._invalidate_later(cube_id, list(ids), deleted=True)
        return result

    async def _activate(self, cube_id, memory_ids, replace=False):
        return await self._activation.activate(cube_id, memory_ids, replace)

    async def _train(self, cube_id, memory_ids, rank=0, steps=0, learning_rate=0.0):
        parametric = self._parametric
        return await parametric.train(cube_id, memory_ids,
                                      parametric.spec(rank, steps, learning_rate))

    async def _adapters(self, cube_id) -> AdapterListing:
        records = await self._parametric.list(cube_id)
        current = current_of(records)
        return AdapterListing(tuple(records), current.version if current else 0)

    async def _tier_status(self, cube_id):
        await self._service.get_cube(cube_id)  # NotFound for an unknown cube
        return await call_actor(self._require_scheduler(), "scheduler", "tier_status", cube_id,
                                timeout_s=self._config.cluster.call_timeout_s)

    async def _control_scheduler(self, action):
        if action not in CONTROL_ACTIONS:
            raise InvalidArgument(f"action must be one of {CONTROL_ACTIONS}", "action")
        return await call_actor(self._require_scheduler(), "scheduler", "control", action,
                                timeout_s=self._config.gateway.request_timeout_s)

    async def _shards(self):
        return await call_actor(self._directory, "the cube directory", "status",
                                timeout_s=self._config.gateway.request_timeout_s)

    async def _reshard(self, shard_ids):
        status = await call_actor(self._directory, "the cube directory", "reshard",
                                  tuple(shard_ids), timeout_s=self._config.gateway.request_timeout_s)
        await self._service.router.refresh()
        return status

    def _require_scheduler(self):
        if self._scheduler is None:
            raise FailedPrecondition("the scheduler is disabled (scheduler.enabled: false)")
        return self._scheduler

    def _operation_table(self) -> dict[str, Callable[..., Awaitable[Any]]]:
        """What `call` serves: every operation by its client-side name."""
        service = self._service
        return {"create_cube": service.create_cube, "delete_cube": service.delete_cube,
                "list_cubes": service.list_cubes, "get_cube": service.get_cube,
                "add": service.add, "search": self._search, "get": self._get,
                "update": self._update, "history": service.history, "delete": self._delete,
                "health": service.health, "activate": self._activate, "train": self._train,
                "training_job": self._parametric.job,
                "cancel_training": self._parametric.cancel, "adapters": self._adapters,
                "delete_adapter": self._parametric.delete, "tier_status": self._tier_status,
                "scheduler": self._control_scheduler, "shards": self._shards,
                "reshard": self._reshard, "ping": self._ping}

    def _log_background(self, task: asyncio.Task) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("invalidating after a write failed (stale KV caches stay unusable; "
                           "adapters are marked stale on the next delete): %s",
                           task.exception())

    @rpc(pb.CreateCubeResponse)
    async def CreateCube(self, request: pb.CreateCubeRequest):
        spec = await self._service.create_cube(convert.cube_from_pb(request))
        return pb.CreateCubeResponse(cube=convert.cube_to_pb(spec))

    @rpc(pb.DeleteCubeResponse)
    async def DeleteCube(self, request: pb.DeleteCubeRequest):
        num = await self._service.delete_cube(request.cube_id)
        return pb.DeleteCubeResponse(num_memories_deleted=num)

    @rpc(pb.ListCubesResponse)
    async def ListCubes(self, request: pb.ListCubesRequest):
        cubes = await self._service.list_cubes()
        return pb.ListCubesResponse(cubes=[convert.cube_to_pb(c) for c in cubes])

    @rpc(pb.GetCubeResponse)
    async def GetCube(self, request: pb.GetCubeRequest):
        stats = await self._service.get_cube(request.cube_id)
        return pb.GetCubeResponse(stats=convert.stats_to_pb(stats))

    @rpc(pb.AddMemoriesResponse)
    async def AddMemories(self, request: pb.AddMemoriesRequest):
        items = [convert.new_memory_from_pb(m) for m in request.memories]
        result = await self._service.add(request.cube_id, items)
        return pb.AddMemoriesResponse(ids=list(result.ids), num_inserted=result.num_inserted,
                                      num_unchanged=result.num_unchanged)

    @rpc(pb.SearchResponse)
    async def Search(self, request: pb.SearchRequest):
        query = convert.search_from_pb(request)
        response = pb.SearchResponse()
        for hit in await self._search(query):
            convert.hit_to_pb(hit, response.hits.add())
        return response

    @rpc(pb.GetMemoriesResponse)
    async def GetMemories(self, request: pb.GetMemoriesRequest):
        result = await self._get(request.cube_id, list(request.ids))
        return pb.GetMemoriesResponse(
            memories=[convert.memory_to_pb(m) for m in result.items],
            missing_ids=list(result.missing_ids))

    @rpc(pb.UpdateMemoryResponse)
    async def UpdateMemory(self, request: pb.UpdateMemoryRequest):
        item = await self._update(convert.update_from_pb(request))
        return pb.UpdateMemoryResponse(memory=convert.memory_to_pb(item))

    @rpc(pb.GetMemoryHistoryResponse)
    async def GetMemoryHistory(self, request: pb.GetMemoryHistoryRequest):
        versions = await self._service.history(request.cube_id, request.id)
        return pb.GetMemoryHistoryResponse(
            versions=[convert.memory_to_pb(m) for m in versions])

    @rpc(pb.DeleteMemoriesResponse)
    async def DeleteMemories(self, request: pb.DeleteMemoriesRequest):
        result = await self._delete(request.cube_id, list(request.ids))
        return pb.DeleteMemoriesResponse(num_deleted=result.num_deleted,
                                         missing_ids=list(result.missing_ids))

    @rpc(pb.HealthResponse)
    async def Health(self, request: pb.HealthRequest):
        shards = await self._service.health()
        return pb.HealthResponse(
            ok=all(s.is_ok for s in shards),
            shards=[pb.ShardHealth(shard_id=s.shard_id, ok=s.is_ok, detail=s.detail)
                    for s in shards])

    async def _ping(self) -> None:
        """The no-op, the overhead baseline (the Ray transport's Ping)."""

    @rpc(pb.PingResponse)
    async def Ping(self, request: pb.PingRequest):
        return pb.PingResponse()

    @rpc(pb.ActivateMemoriesResponse)
    async def ActivateMemories(self, request: pb.ActivateMemoriesRequest):
        stats = await self._activate(request.cube_id, list(request.memory_ids), request.replace)
        return convert.block_stats_to_pb(stats)

    @rpc(pb.TrainingJob)
    async def TrainAdapter(self, request: pb.TrainAdapterRequest):
        return convert.job_to_pb(await self._train(
            request.cube_id, list(request.memory_ids), request.rank, request.steps,
            request.learning_rate))

    @rpc(pb.TrainingJob)
    async def GetTrainingJob(self, request: pb.GetTrainingJobRequest):
        return convert.job_to_pb(await self._parametric.job(request.job_id))

    @rpc(pb.TrainingJob)
    async def CancelTraining(self, request: pb.CancelTrainingRequest):
        return convert.job_to_pb(await self._parametric.cancel(request.job_id))

    @rpc(pb.ListAdaptersResponse)
    async def ListAdapters(self, request: pb.ListAdaptersRequest):
        listing = await self._adapters(request.cube_id)
        return pb.ListAdaptersResponse(adapters=[
            convert.adapter_to_pb(r, r.version == listing.current_version)
            for r in listing.adapters])

    @rpc(pb.GetTierStatusResponse)
    async def GetTierStatus(self, request: pb.GetTierStatusRequest):
        return convert.tier_status_to_pb(await self._tier_status(request.cube_id))

    @rpc(pb.ControlSchedulerResponse)
    async def ControlScheduler(self, request: pb.ControlSchedulerRequest):
        return convert.scheduler_status_to_pb(await self._control_scheduler(request.action))

    @rpc(pb.ListShardsResponse)
    async def ListShards(self, request: pb.ListShardsRequest):
        return convert.shards_status_to_pb(await self._shards())

    @rpc(pb.ListShardsResponse)
    async def Reshard(self, request: pb.ReshardRequest):
        return convert.shards_status_to_pb(await self._reshard(list(request.shard_ids)))

    @rpc(pb.DeleteAdapterResponse)
    async def DeleteAdapter(self, request: pb.DeleteAdapterRequest):
        await self._parametric.delete(request.cube_id, request.version)
        return pb.DeleteAdapterResponse()

    async def Generate(self, request: pb.GenerateRequest, grpc_context=None):
        """Server streaming: tokens as they come, then the stats. Errors end the stream with
        their status (before any token for bad input)."""
        try:
            _check_decoded(request)
            async for event in self._activation.generate(convert.generate_from_pb(request)):
                yield convert.generate_event_to_pb(event)
        except Exception as exc:
            # A stream's status reaches the client only if the generator raises after setting
            # it (Serve wraps it as the user's status); a plain return would end it as OK.
            _set_status(grpc_context, exc)
            raise

    # ---- the Ray transport -----------------------------------------------------------------
    async def call(self, method: str, args: tuple, metadata: tuple) -> Any:
        """Who calls it: `actors.ray_transport.RayTransport`, through a Serve deployment handle,
        for clients running on the cluster. The same service and validation as the RPCs above,
        on domain types; memos errors travel back as themselves. `metadata` carries the same
        (key, value) pairs a gRPC client sends (authorization, once issued)."""
        operation = self._operations.get(method)
        if operation is None:
            raise InvalidArgument(f"{method!r} is not a memos operation", "method")
        try:
            self._signatures[method].bind(*args)
        except TypeError as exc:  # wrong arguments from a hand-rolled caller
            raise InvalidArgument(f"{method}: {exc}", "args") from None
        try:
            return await operation(*args)
        except Exception as exc:  # the edge: memos errors as they are, the rest INTERNAL
            raise _as_memos_error(exc) from None

    async def call_stream(self, method: str, args: tuple, metadata: tuple):
        """The streaming counterpart of `call` (Generate), for the Ray transport."""
        if method != "generate" or len(args) != 1:
            raise InvalidArgument(f"{method!r} is not a streaming memos operation", "method")
        async for event in self._activation.generate(args[0]):
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
