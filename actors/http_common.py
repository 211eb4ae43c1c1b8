"""What the gateway's HTTP front, its MCP endpoint and its OpenAI-compatible routes share:
the caller's key as gRPC-style metadata, and a memos error as an HTTP response. One home, so
actors/http_app.py (which mounts the other two) and actors/mcp_app.py import it, not each
other."""
from __future__ import annotations

from typing import Optional

from fastapi import Request
from fastapi.responses import JSONResponse

from memos_cluster.api.http_routes import HTTP_STATUS, RETRY_AFTER_S, error_json
from memos_cluster.core.errors import MemosError


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
