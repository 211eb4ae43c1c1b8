"""The gateway's HTTP front: the REST/JSON routes of `memos_cluster.api.http_routes` (one per
operation, Generate and Chat as server-sent events), OpenAI's chat completions and models
(`actors/openai_routes.py`), the OpenAPI document at /openapi.json with its docs
page at /docs, and the MCP server at /mcp (`actors/mcp_app.py`), all on Serve's HTTP port.

Built once per gateway replica, after its constructor (`MemoryGateway.__serve_build_asgi_app__`),
so every route runs the replica's own path: validate -> authenticate and authorize -> audit ->
the operation, with the same keys, limits, audit and metrics as gRPC (transport="http").
"""
from __future__ import annotations

import contextlib
import json
import time
from typing import Any, AsyncIterator, Callable

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from memos_cluster.api.http_routes import (
    ROUTES, Route, check_routes, error_json, message_json, request_message)
from memos_cluster.api.openapi import openapi_document
from memos_cluster.api.rpcs import CODECS
from memos_cluster.console import CONSOLE_DIR, SWAGGER_ASSETS
from memos_cluster.core.config import LimitsConfig
from memos_cluster.core.errors import InvalidArgument, NotFound, Unimplemented

from actors.http_common import error_response, json_body, request_metadata
from actors.mcp_app import build_mcp
from actors.openai_routes import add_openai_routes


async def _unrouted(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """What the router itself answers (no such path, a method the path lacks), in the error
    shape instead of FastAPI's {"detail": ...}. Ids with encoded slashes land here too: the
    path is decoded before routing, so `a%2Fb` is two segments and matches no route."""
    if exc.status_code == 404:
        return error_response(NotFound(f"no route {request.method} {request.url.path[:200]}",
                                       "path"))
    if exc.status_code == 405:
        return error_response(Unimplemented(
            f"{request.method} is not a method of {request.url.path[:200]}", "method"), 405)
    return error_response(InvalidArgument(str(exc.detail)[:200], ""), exc.status_code)


class UrlLimit:
    """A pure ASGI middleware: a path plus query longer than `max_url_bytes` is 414 in the
    error shape before routing (limits.max_url_bytes; docs/api.md). Pure ASGI rather than
    BaseHTTPMiddleware, which would buffer Generate's event stream."""

    def __init__(self, app: Any, max_url_bytes: int):
        self.app, self.max_url_bytes = app, max_url_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http":
            size = len(scope.get("raw_path") or scope["path"].encode()) \
                + len(scope.get("query_string") or b"")
            if size > self.max_url_bytes:
                response = error_response(InvalidArgument(
                    f"the URL is {size} bytes, more than the limit of {self.max_url_bytes}",
                    "url"), 414)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _body(request: Request, route: Route, limits: LimitsConfig) -> Any:
    if not route.has_body:
        return None
    return await json_body(request, limits, allow_empty=True)


def _sse(name: str, data: dict) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _event_stream(gateway: Any, route: Route, metadata: tuple, args: tuple,
                        count: Callable[[str], None]) -> Response:
    """Generate as server-sent events: `token` events, then one `stats` event. The first event
    is awaited before the response starts, so bad input and refused callers get their HTTP
    status; a failure later ends the stream with an `error` event."""
    codec = CODECS[route.operation]
    events = gateway.stream(metadata, route.operation, args)
    first = await events.__anext__()

    async def body() -> AsyncIterator[bytes]:
        status, event = "OK", first
        try:
            while True:
                reply = codec.reply(event)
                kind = reply.WhichOneof("event")
                yield _sse(kind, message_json(getattr(reply, kind)))
                try:
                    event = await events.__anext__()
                except StopAsyncIteration:
                    break
        except Exception as exc:  # the edge: a failure mid-stream becomes an error event
            error = gateway.as_memos_error(exc)
            status = error.status
            yield _sse("error", error_json(error)["error"])
        finally:
            count(status)
    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})


def _endpoint(gateway: Any, route: Route):
    codec = CODECS[route.operation]
    limits = gateway.config.limits

    async def endpoint(request: Request) -> Response:
        began, status = time.perf_counter(), "OK"

        def count(final: str) -> None:
            gateway.count(route.operation, final, began, "http")
        try:
            message = request_message(route, dict(request.path_params),
                                      await _body(request, route, limits),
                                      {k: request.query_params.getlist(k)
                                       for k in request.query_params})
            args = codec.parse(message)
            if route.streaming:
                response = await _event_stream(gateway, route, request_metadata(request), args,
                                               count)
                status = None  # counted when the stream ends
                return response
            result = await gateway.run(request_metadata(request), route.operation, args)
            return JSONResponse(message_json(codec.reply(result)))
        except Exception as exc:  # the edge: every failure leaves as its status and JSON
            error = gateway.as_memos_error(exc)
            status = error.status
            return error_response(error)
        finally:
            if status is not None:
                count(status)
    endpoint.__name__ = f"{route.operation}_{route.method.lower()}"
    return endpoint


def build_http_app(gateway: Any) -> FastAPI:
    """The replica's ASGI app. Who calls it: `MemoryGateway.__serve_build_asgi_app__`."""
    check_routes()
    mcp, mcp_route = build_mcp(gateway)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        async with mcp.session_manager.run():  # the MCP transport's task group
            yield

    app = FastAPI(title="memos-cluster", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    add_openai_routes(app, gateway)  # /v1/chat/completions and /v1/models
    for route in ROUTES:
        app.add_api_route(route.full_path, _endpoint(gateway, route), methods=[route.method],
                          include_in_schema=False)
    document = openapi_document()
    app.add_api_route("/openapi.json", lambda: JSONResponse(document), methods=["GET"],
                      include_in_schema=False)
    # Swagger UI and the console from files in the package: no CDN, the machine may be offline.
    app.mount("/docs/assets", StaticFiles(directory=SWAGGER_ASSETS), name="swagger-assets")
    app.add_api_route("/docs", lambda: get_swagger_ui_html(
        openapi_url="/openapi.json", title="memos-cluster API",
        swagger_js_url="/docs/assets/swagger-ui-bundle.js",
        swagger_css_url="/docs/assets/swagger-ui.css",
        swagger_favicon_url="/docs/assets/favicon.png"), methods=["GET"], include_in_schema=False)
    # StaticFiles(html=True) itself redirects /console to /console/.
    app.mount("/console", StaticFiles(directory=CONSOLE_DIR, html=True), name="console")
    app.router.routes.append(mcp_route)
    app.add_exception_handler(StarletteHTTPException, _unrouted)
    app.add_middleware(UrlLimit, max_url_bytes=gateway.config.limits.max_url_bytes)
    return app
