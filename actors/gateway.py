"""The Ray Serve gateway: every operation of the table (`memos_cluster.core.operations`), over
gRPC and over the Ray transport, through one path.

Its gRPC methods are generated from the table and the protobuf codecs (`memos_cluster.api.rpcs`),
one per RPC of `memos.v1.MemoryService`, named as Serve wants them. Every call, whatever its
front, runs `run`: validate -> authenticate and authorize -> audit -> the operation. Every error
leaves as a proper status: memos errors map to their code with their message; anything
unexpected becomes INTERNAL with a short message (the traceback goes to the replica's log, never
to the client).
"""
from __future__ import annotations

import inspect
import logging
import time
import uuid
from typing import Any, Optional

import grpc
from ray import serve
from ray.serve import context as serve_context

from memos_cluster.api.rpcs import CODECS, response_class
from memos_cluster.core import logs
from memos_cluster.core.config import MemosConfig, config_from_dict, load_config, with_overrides
from memos_cluster.core.errors import InternalError, InvalidArgument, MemosError
from memos_cluster.core.operations import OPERATIONS, Operation, operation_of_kind, validate
from memos_cluster.core.validation import check_request_bytes

from actors import metrics
from actors.auth import AuthGate
from actors.directory import get_or_create_directory
from actors.events import AccessShipper
from actors.grpc_servicer import UndecodableRequest
from actors.handles import DirectoryHandle, SchedulerHandle
from actors.operations import Operations
from actors.scheduler import create_scheduler_actor
from actors.services import build_services

logger = logging.getLogger("memos_cluster.gateway")


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


def _count(rpc: str, status: str, began: float, transport: str = "grpc") -> None:
    """Request metrics of one call (memos_requests_total, memos_request_latency_ms), labelled
    with the front it came through (grpc, ray, http, mcp)."""
    latency_ms = logs.elapsed_ms(began)
    metrics.inc("memos_requests_total", rpc=rpc, status=status, transport=transport)
    metrics.observe("memos_request_latency_ms", latency_ms, rpc=rpc, transport=transport)
    metrics.REQUEST_STATS.record(rpc, transport, status, latency_ms)


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
        self._gate = AuthGate(config)
        timeout_s = config.cluster.call_timeout_s
        # Access events for the scheduler: buffered (bounded) and shipped off the request path.
        scheduler = (SchedulerHandle(create_scheduler_actor(config), timeout_s)
                     if config.scheduler.enabled else None)
        if scheduler is not None:
            scheduler.start()
        note = AccessShipper(config, scheduler).note
        services.activation.on_access = note
        self._ops = Operations(config, services,
                               DirectoryHandle(get_or_create_directory(config), timeout_s),
                               scheduler, self._gate, note)
        # An adapter found trained on a memory no longer active is marked stale (Generate
        # already left it out): the same path as a delete's.
        services.activation.on_stale = \
            lambda cube_id, ids: self._ops.invalidate_later(cube_id, ids, deleted=True)
        # Each operation's implementation, and its signature for Ray-transport callers (the
        # caller, first parameter, is not the client's to send).
        self._impl = {name: getattr(self._ops, name) for name in OPERATIONS}
        self._signatures = {
            name: inspect.signature(op).replace(
                parameters=list(inspect.signature(op).parameters.values())[1:])
            for name, op in self._impl.items()}

    def _check_request(self, request: Any) -> None:
        """What only a protobuf request can get wrong: undecodable bytes, oversize."""
        if isinstance(request, UndecodableRequest):
            raise InvalidArgument(f"{request.message_type}: field {request.field or '?'} "
                                  f"{request.reason}", request.field)
        check_request_bytes(request.ByteSize(), self._config.limits)

    async def _admit(self, metadata: tuple, name: str, args: tuple) -> tuple[Operation, Any]:
        """Validate, authenticate and authorize, audit: what every call does before its
        operation runs, under the request's id (see memos_cluster/core/logs.py)."""
        logs.request_id.set(_serve_request_id())
        op = validate(self._config, name, args)
        who = await self._gate.check(metadata, name, args)
        if op.audit is not None:
            line = op.audit(args)
            if line is not None:
                await self._gate.audit(who, *line)
        return op, who

    async def run(self, metadata: tuple, name: str, args: tuple) -> Any:
        """One call of an operation on domain types, as every front (gRPC, HTTP, MCP, the Ray
        transport) runs it."""
        _, who = await self._admit(metadata, name, args)
        return await self._impl[name](who, *args)

    async def stream(self, metadata: tuple, name: str, args: tuple):
        """The streaming counterpart of `run` (Generate)."""
        _, who = await self._admit(metadata, name, args)
        async for event in self._impl[name](who, *args):
            yield event

    # ---- the HTTP front (actors/http_app.py) and the MCP tools (actors/mcp_app.py) ---------------
    def __serve_build_asgi_app__(self):
        """Serve calls it once, after the constructor: the replica's HTTP app."""
        from actors.http_app import build_http_app

        return build_http_app(self)

    @property
    def config(self) -> MemosConfig:
        return self._config

    @staticmethod
    def count(operation: str, status: str, began: float, transport: str) -> None:
        _count(OPERATIONS[operation].rpc, status, began, transport)

    as_memos_error = staticmethod(_as_memos_error)

    # ---- the Ray transport -----------------------------------------------------------------
    def _check_ray_call(self, method: str, args: tuple, streaming: bool) -> None:
        operation_of_kind(method, streaming)
        try:
            self._signatures[method].bind(*args)
        except TypeError as exc:  # wrong arguments from a hand-rolled caller
            raise InvalidArgument(f"{method}: {exc}", "args") from None

    async def call(self, method: str, args: tuple, metadata: tuple) -> Any:
        """Who calls it: `memos_cluster.client.ray_transport.RayTransport`, through a Serve
        deployment handle, for clients running on the cluster. The same path as the RPCs, on
        domain types; memos errors travel back as themselves."""
        self._check_ray_call(method, tuple(args), streaming=False)
        began, status = time.perf_counter(), "OK"
        try:
            return await self.run(tuple(metadata), method, tuple(args))
        except Exception as exc:  # the edge: memos errors as they are, the rest INTERNAL
            error = _as_memos_error(exc)
            status = error.status
            raise error from None
        finally:
            _count(OPERATIONS[method].rpc, status, began, "ray")

    async def call_stream(self, method: str, args: tuple, metadata: tuple):
        """The streaming counterpart of `call` (Generate), for the Ray transport."""
        self._check_ray_call(method, tuple(args), streaming=True)
        async for event in self.stream(tuple(metadata), method, tuple(args)):
            yield event


def _unary_rpc(op: Operation):
    """The gRPC method of a unary operation. Serve passes the context only to methods whose
    signature names `grpc_context`; the call's metadata carries the API key. The client gets an
    empty response with a failed status."""
    codec, empty = CODECS[op.name], response_class(op.name)

    async def method(self, request: Any, grpc_context=None) -> Any:
        began, status = time.perf_counter(), "OK"
        try:
            self._check_request(request)
            result = await self.run(_metadata(grpc_context), op.name, codec.parse(request))
            return codec.reply(result)
        except Exception as exc:  # the edge: every failure leaves as a status
            status = _set_status(grpc_context, exc)
        finally:
            _count(op.rpc, status, began)
        return empty()
    return method


def _streaming_rpc(op: Operation):
    """The gRPC method of a server-streaming operation (Generate): events as they come. Errors
    end the stream with their status (before any event for bad input or a refused caller)."""
    codec = CODECS[op.name]

    async def method(self, request: Any, grpc_context=None):
        began, status = time.perf_counter(), "OK"
        try:
            self._check_request(request)
            async for event in self.stream(_metadata(grpc_context), op.name,
                                            codec.parse(request)):
                yield codec.reply(event)
        except Exception as exc:
            # A stream's status reaches the client only if the generator raises after setting
            # it (Serve wraps it as the user's status); a plain return would end it as OK.
            status = _set_status(grpc_context, exc)
            raise
        finally:
            _count(op.rpc, status, began)
    return method


for _op in OPERATIONS.values():  # one method per RPC, named as Serve dispatches them
    _method = _streaming_rpc(_op) if _op.streaming else _unary_rpc(_op)
    _method.__name__ = _method.__qualname__ = _op.rpc
    _method.__doc__ = f"memos.v1.MemoryService/{_op.rpc}: the `{_op.name}` operation."
    setattr(MemoryGateway, _op.rpc, _method)


def build_app(config: MemosConfig):
    """The Serve application for a config. Who calls it: `app_builder`."""
    # The HTTP app is built per replica (__serve_build_asgi_app__); gRPC calls its RPC methods.
    deployment = serve.deployment(
        serve.ingress()(MemoryGateway),
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
