"""What the gateway's HTTP front, its MCP endpoint and its OpenAI-compatible routes share:
the caller's key as gRPC-style metadata, a request's JSON body within the limits, and a memos
error as an HTTP response. One home, so
actors/http_app.py (which mounts the other two) and actors/mcp_app.py import it, not each
other."""
from __future__ import annotations

import json
from typing import Any, Optional

from fastapi import Request
from fastapi.responses import JSONResponse

from memos_cluster.api.http_routes import HTTP_STATUS, RETRY_AFTER_S, error_json
from memos_cluster.core.config import LimitsConfig
from memos_cluster.core.errors import InvalidArgument, MemosError
from memos_cluster.core.validation import check_json_depth, check_request_bytes


def error_response(error: MemosError, http_status: Optional[int] = None) -> JSONResponse:
    """An error as its HTTP status (`http_status`, else its code's) and the one JSON error
    shape (never a traceback)."""
    headers = {}
    if error.status in RETRY_AFTER_S:
        headers["Retry-After"] = str(RETRY_AFTER_S[error.status])
    return JSONResponse(error_json(error), headers=headers,
                        status_code=http_status or HTTP_STATUS.get(error.status, 500))


def request_metadata(request: Request) -> tuple[tuple[str, str], ...]:
    """What the auth gate reads: the authorization header(s), as gRPC metadata would carry.
    Who calls it: the HTTP routes, and the MCP endpoint's key check (actors/mcp_app.py)."""
    return tuple(("authorization", v) for v in request.headers.getlist("authorization"))


async def json_body(request: Request, limits: LimitsConfig, allow_empty: bool = False) -> Any:
    """The request's JSON body, checked against the size and nesting limits; None for an empty
    one where `allow_empty`. Who calls it: the memos routes and the OpenAI routes."""
    raw = await request.body()
    check_request_bytes(len(raw), limits)
    if allow_empty and not raw.strip():
        return None
    try:
        body = json.loads(raw)
    except RecursionError:  # nesting past the parser's stack: the same answer as the limit's
        raise InvalidArgument(f"body nests deeper than {limits.max_json_depth} levels",
                              "body") from None
    except ValueError as exc:  # invalid UTF-8 lands here too
        raise InvalidArgument(f"the request body is not JSON: {exc}", "body") from None
    check_json_depth(body, "body", limits.max_json_depth)
    return body
