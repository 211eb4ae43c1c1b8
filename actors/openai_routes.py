"""The OpenAI-compatible routes of the gateway's HTTP front: POST /v1/chat/completions (JSON,
or server-sent `chat.completion.chunk`s ending with `data: [DONE]`) and GET /v1/models. They
run the Chat operation on the replica's own path (validate, authenticate with the Bearer key,
authorize, audit, metrics as transport "http"); the translation is memos_cluster/api/
openai_compat.py. Errors on these two routes are in OpenAI's shape; the rest of /v1 keeps
memos' own.

Who calls it: `build_http_app` (actors/http_app.py), once per replica.
"""
from __future__ import annotations

import json
import time
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from memos_cluster.api import openai_compat as oa
from memos_cluster.api.http_routes import HTTP_STATUS
from memos_cluster.core.errors import MemosError
from memos_cluster.core.tier_types import ChatStats, TokenEvent

from actors.http_common import json_body, request_metadata


def _error(error: MemosError) -> JSONResponse:
    return JSONResponse(oa.error_body(error), status_code=HTTP_STATUS.get(error.status, 500))


def _data(payload: Any) -> bytes:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


def _stream(completion: oa.Completion, first: Any, events: AsyncIterator, usage: bool,
            gateway: Any, count) -> StreamingResponse:
    """The chunks: the role, each token's text, the finish (with memos' detail), the usage
    when asked for, then [DONE]. A failure mid-stream sends an error object and ends."""
    async def body() -> AsyncIterator[bytes]:
        status, event = "OK", first
        try:
            yield _data(completion.chunk({"role": "assistant", "content": ""}))
            while True:
                if isinstance(event, TokenEvent):
                    if event.text:
                        yield _data(completion.chunk({"content": event.text}))
                elif isinstance(event, ChatStats):
                    yield _data(completion.final_chunk(event))
                    if usage:
                        yield _data(completion.usage_chunk(event))
                try:
                    event = await events.__anext__()
                except StopAsyncIteration:
                    break
            yield b"data: [DONE]\n\n"
        except Exception as exc:  # the edge: a failure mid-stream becomes an error object
            error = gateway.as_memos_error(exc)
            status = error.status
            yield _data(oa.error_body(error))
        finally:
            count(status)
    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})


def add_openai_routes(app: FastAPI, gateway: Any) -> None:
    model_id = gateway.config.activation.model

    async def completions(request: Request) -> Response:
        began, status = time.perf_counter(), "OK"

        def count(final: str) -> None:
            gateway.count("chat", final, began, "http")
        try:
            call, stream, usage = oa.chat_call(await json_body(request, gateway.config.limits), model_id)
            events = gateway.stream(request_metadata(request), "chat", (call,))
            # The first event is awaited before the response starts: bad input and refused
            # callers get their HTTP status, not a broken stream.
            first = await events.__anext__()
            completion = oa.Completion(model_id)
            if stream:
                status = None  # counted when the stream ends
                return _stream(completion, first, events, usage, gateway, count)
            event = first
            while not isinstance(event, ChatStats):
                event = await events.__anext__()
            return JSONResponse(completion.whole(event))
        except Exception as exc:  # the edge: every failure in OpenAI's error shape
            error = gateway.as_memos_error(exc)
            status = error.status
            return _error(error)
        finally:
            if status is not None:
                count(status)

    async def models(request: Request) -> Response:
        try:  # the key is checked as for every call
            await gateway.run(request_metadata(request), "whoami", ())
        except Exception as exc:  # the edge
            return _error(gateway.as_memos_error(exc))
        return JSONResponse(oa.models_body(model_id))

    app.add_api_route("/v1/chat/completions", completions, methods=["POST"],
                      include_in_schema=False)
    app.add_api_route("/v1/models", models, methods=["GET"], include_in_schema=False)
