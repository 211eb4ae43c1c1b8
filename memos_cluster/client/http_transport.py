"""The HTTP/JSON transport of `MemosClient` (`http://host:port`, `https://host:port`): the same
operations over the gateway's REST routes (`memos_cluster.api.http_routes`), through the same
protobuf codecs as gRPC, so a result is identical whichever transport carried it. Generate is
read as server-sent events. An error reply raises the memos exception of its code.
"""
from __future__ import annotations

import json
from typing import Any, Iterator, Sequence
from urllib.parse import quote

import httpx2

from memos_cluster.api.http_routes import (
    ROUTE_OF, error_from_json, message_json, parse_json, reply_message)
from memos_cluster.api.rpcs import CODECS, response_class
from memos_cluster.core.errors import InvalidArgument, Unavailable
from memos_cluster.core.operations import operation_of_kind


def _headers(metadata: Sequence[tuple[str, str]]) -> dict[str, str]:
    """gRPC-style metadata as HTTP headers (`request_id` is Serve's X-Request-Id)."""
    return {("x-request-id" if k == "request_id" else k): v for k, v in metadata}


class HttpTransport:
    """Calls a gateway's HTTP port at `base_url`. Connects on the first call."""

    def __init__(self, base_url: str, timeout_s: float, metadata: Sequence[tuple[str, str]]):
        self.address = base_url
        self._client = httpx2.Client(base_url=base_url, timeout=timeout_s,
                                     headers=_headers(metadata))

    def close(self) -> None:
        self._client.close()

    def _request(self, operation: str, streaming: bool,
                 args: tuple) -> tuple[dict[str, Any], str]:
        """The keyword arguments of the HTTP request for an operation's arguments, and the
        path parameter with the longest value (the one to name if the URL is too long)."""
        route = ROUTE_OF[operation_of_kind(operation, streaming).name]
        data = message_json(CODECS[operation].build(*args))
        path, longest = route.full_path, ("url", -1)
        for name in route.path_params:
            value = str(data.pop(name))
            if not value:  # an empty path segment would route elsewhere
                raise InvalidArgument(f"{name} must not be empty", name)
            path = path.replace("{" + name + "}", quote(value, safe=""))
            longest = max(longest, (name, len(value)), key=lambda pair: pair[1])
        if route.has_body:
            return {"method": route.method, "url": path, "json": data}, longest[0]
        params = [(k, _query(v)) for k, vs in data.items()
                  for v in (vs if isinstance(vs, list) else [vs])]
        return {"method": route.method, "url": path, "params": params}, longest[0]

    def call(self, operation: str, *args: Any) -> Any:
        request, longest = self._request(operation, False, args)
        try:
            response = self._client.request(**request)
        except httpx2.InvalidURL:
            raise _too_long(longest, request["url"]) from None
        except httpx2.TransportError as exc:
            raise Unavailable(f"the gateway at {self.address} is unreachable: {exc}") from None
        if response.status_code != 200:
            raise error_from_json(response.status_code, _json_or_none(response.content))
        return CODECS[operation].read(reply_message(operation, response.json()))

    def stream(self, operation: str, *args: Any) -> Iterator[Any]:
        request, longest = self._request(operation, True, args)
        codec, reply_cls = CODECS[operation], response_class(operation)
        try:
            with self._client.stream(**request) as response:
                if response.status_code != 200:
                    raise error_from_json(response.status_code,
                                          _json_or_none(response.read()))
                for name, data in _events(response.iter_lines()):
                    if name == "error":
                        raise error_from_json(200, {"error": data})
                    yield codec.read(parse_json(reply_cls, {name: data}))
        except httpx2.InvalidURL:
            raise _too_long(longest, request["url"]) from None
        except httpx2.TransportError as exc:
            raise Unavailable(f"the gateway at {self.address} is unreachable: {exc}") from None


def _too_long(field: str, url: str) -> InvalidArgument:
    """A path too long for any URL: its longest id is past every limit the gateway has
    (`limits.max_id_chars` is far shorter), so it is refused here, naming that field."""
    return InvalidArgument(f"{field}: too long for a URL ({len(url)} characters)", field)


def _events(lines: Iterator[str]) -> Iterator[tuple[str, Any]]:
    """Server-sent events as (event name, decoded JSON data)."""
    name, data = "message", []
    for line in lines:
        if not line:
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())


def _query(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return None
