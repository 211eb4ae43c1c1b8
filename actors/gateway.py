"""The Ray Serve gRPC gateway: protobuf in, `MemoryService` calls, protobuf out.

Method names match the RPC names of `memos.v1.MemoryService`. Every error leaves as a proper gRPC
status: memos errors map to their status code with their message; anything unexpected becomes
INTERNAL with a short message (the traceback goes to the replica's log, never to the client).
"""
from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Optional

import grpc
import ray
from ray import serve

from memos_cluster.api import convert
from memos_cluster.api.memos.v1 import memos_pb2 as pb
from memos_cluster.config import MemosConfig, load_config, with_overrides
from memos_cluster.errors import InvalidArgument, MemosError
from memos_cluster.service import MemoryService
from memos_cluster.types import SearchMode

from actors.directory import get_or_create_directory
from actors.grpc_servicer import UndecodableRequest
from actors.handles import ShardHandle

logger = logging.getLogger("memos_cluster.gateway")


class MemoryGateway:
    def __init__(self, config: MemosConfig):
        self._config = config
        directory = get_or_create_directory(config)
        shard_ids = ray.get(directory.ensure_shards.remote())
        ring = ray.get(directory.ring.remote())
        timeout_s = config.cluster.call_timeout_s
        shards = {s: ShardHandle(s, config.ray.namespace, timeout_s) for s in shard_ids}
        self._service = MemoryService(config, ring, shards)
        self._default_mode = SearchMode(config.search.default_mode)

    async def _serve(self, request: Any, grpc_context, empty: Any,
                     work: Callable[[], Awaitable[Any]]) -> Any:
        try:
            if isinstance(request, UndecodableRequest):
                raise InvalidArgument(
                    f"{request.message_type}: field {request.field or '?'} {request.reason}",
                    request.field)
            return await work()
        except MemosError as exc:
            grpc_context.set_code(getattr(grpc.StatusCode, exc.status))
            grpc_context.set_details(exc.message)
        except Exception:  # the edge: log it here, send the client a status, not a trace
            logger.exception("unexpected error in the gateway")
            grpc_context.set_code(grpc.StatusCode.INTERNAL)
            grpc_context.set_details("internal error in the memos gateway; see its log")
        return empty

    async def CreateCube(self, request: pb.CreateCubeRequest, grpc_context=None):
        async def work():
            spec = await self._service.create_cube(convert.cube_from_pb(request))
            return pb.CreateCubeResponse(cube=convert.cube_to_pb(spec))
        return await self._serve(request, grpc_context, pb.CreateCubeResponse(), work)

    async def DeleteCube(self, request: pb.DeleteCubeRequest, grpc_context=None):
        async def work():
            num = await self._service.delete_cube(request.cube_id)
            return pb.DeleteCubeResponse(num_memories_deleted=num)
        return await self._serve(request, grpc_context, pb.DeleteCubeResponse(), work)

    async def ListCubes(self, request: pb.ListCubesRequest, grpc_context=None):
        async def work():
            cubes = await self._service.list_cubes()
            return pb.ListCubesResponse(cubes=[convert.cube_to_pb(c) for c in cubes])
        return await self._serve(request, grpc_context, pb.ListCubesResponse(), work)

    async def GetCube(self, request: pb.GetCubeRequest, grpc_context=None):
        async def work():
            stats = await self._service.get_cube(request.cube_id)
            return pb.GetCubeResponse(stats=convert.stats_to_pb(stats))
        return await self._serve(request, grpc_context, pb.GetCubeResponse(), work)

    async def AddMemories(self, request: pb.AddMemoriesRequest, grpc_context=None):
        async def work():
            items = [convert.new_memory_from_pb(m) for m in request.memories]
            result = await self._service.add(request.cube_id, items)
            return pb.AddMemoriesResponse(ids=list(result.ids), num_inserted=result.num_inserted,
                                          num_unchanged=result.num_unchanged)
        return await self._serve(request, grpc_context, pb.AddMemoriesResponse(), work)

    async def Search(self, request: pb.SearchRequest, grpc_context=None):
        async def work():
            query = convert.search_from_pb(request, self._config.search.default_top_k,
                                           self._default_mode)
            response = pb.SearchResponse()
            for hit in await self._service.search(query):
                convert.hit_to_pb(hit, response.hits.add())
            return response
        return await self._serve(request, grpc_context, pb.SearchResponse(), work)

    async def GetMemories(self, request: pb.GetMemoriesRequest, grpc_context=None):
        async def work():
            result = await self._service.get(request.cube_id, list(request.ids))
            return pb.GetMemoriesResponse(
                memories=[convert.memory_to_pb(m) for m in result.items],
                missing_ids=list(result.missing_ids))
        return await self._serve(request, grpc_context, pb.GetMemoriesResponse(), work)

    async def UpdateMemory(self, request: pb.UpdateMemoryRequest, grpc_context=None):
        async def work():
            item = await self._service.update(convert.update_from_pb(request))
            return pb.UpdateMemoryResponse(memory=convert.memory_to_pb(item))
        return await self._serve(request, grpc_context, pb.UpdateMemoryResponse(), work)

    async def GetMemoryHistory(self, request: pb.GetMemoryHistoryRequest, grpc_context=None):
        async def work():
            versions = await self._service.history(request.cube_id, request.id)
            return pb.GetMemoryHistoryResponse(
                versions=[convert.memory_to_pb(m) for m in versions])
        return await self._serve(request, grpc_context, pb.GetMemoryHistoryResponse(), work)

    async def DeleteMemories(self, request: pb.DeleteMemoriesRequest, grpc_context=None):
        async def work():
            result = await self._service.delete(request.cube_id, list(request.ids))
            return pb.DeleteMemoriesResponse(num_deleted=result.num_deleted,
                                             missing_ids=list(result.missing_ids))
        return await self._serve(request, grpc_context, pb.DeleteMemoriesResponse(), work)

    async def Health(self, request: pb.HealthRequest, grpc_context=None):
        async def work():
            shards = await self._service.health()
            return pb.HealthResponse(
                ok=all(s.is_ok for s in shards),
                shards=[pb.ShardHealth(shard_id=s.shard_id, ok=s.is_ok, detail=s.detail)
                        for s in shards])
        return await self._serve(request, grpc_context, pb.HealthResponse(), work)

    async def Ping(self, request: pb.PingRequest, grpc_context=None):
        return pb.PingResponse()


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
    `config` (a memos YAML path) and `overrides` (a mapping of dotted keys, as `--set` takes)."""
    args = args or {}
    config = load_config(args.get("config"))
    return build_app(with_overrides(config, dict(args.get("overrides") or {})))
