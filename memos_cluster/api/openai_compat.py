"""OpenAI's chat completions API over the Chat operation (docs/chat.md): a request body as a
ChatCall, the answer as a `chat.completion` or its `chat.completion.chunk` stream, errors in
OpenAI's shape. Pure translation, no HTTP: actors/openai_routes.py serves it.

Where memory lives: the extra body field `"memos": {"cube_ids": [...], "remember": bool,
"retrieval_top_k": int}` (the SDK's `extra_body`); without it, OpenAI's own `user` field names
the cube (one user's memory); with neither, the request is refused (400), since there is no
memory to answer from.
"""
from __future__ import annotations

import time
import uuid
from typing import Any, Mapping, Optional

from memos_cluster.core.errors import InvalidArgument, MemosError, NotFound
from memos_cluster.core.tier_types import (
    ChatCall, ChatMessage, ChatStats, GenerateStats, SamplingParams)

# gRPC code -> OpenAI's error type (the HTTP status is the memos front's, HTTP_STATUS).
ERROR_TYPES: Mapping[str, str] = {
    "INVALID_ARGUMENT": "invalid_request_error", "NOT_FOUND": "not_found_error",
    "UNAUTHENTICATED": "authentication_error", "PERMISSION_DENIED": "permission_error",
    "RESOURCE_EXHAUSTED": "rate_limit_error", "ALREADY_EXISTS": "invalid_request_error",
    "FAILED_PRECONDITION": "invalid_request_error",
}
# Request fields this server does not implement: refused by name rather than ignored.
UNSUPPORTED = ("tools", "tool_choice", "functions", "function_call", "logprobs",
               "top_logprobs", "response_format", "logit_bias", "audio", "modalities",
               "prediction")
FINISH = {"eos": "stop", "length": "length"}


def error_body(error: MemosError) -> dict[str, Any]:
    """A memos error in OpenAI's shape: {"error": {message, type, param, code}}."""
    return {"error": {"message": error.message,
                      "type": ERROR_TYPES.get(error.status, "server_error"),
                      "param": error.field or None, "code": error.status.lower()}}


def models_body(model_id: str) -> dict[str, Any]:
    return {"object": "list", "data": [{"id": model_id, "object": "model", "created": 0,
                                        "owned_by": "memos-cluster"}]}


def _text(content: Any, field: str) -> str:
    """A message's content: a string, or OpenAI's list of text parts (joined by newlines)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text" \
                    or not isinstance(part.get("text"), str):
                raise InvalidArgument(f"{field}[{i}] must be a text part "
                                      "({\"type\": \"text\", \"text\": ...})", field)
            parts.append(part["text"])
        return "\n".join(parts)
    raise InvalidArgument(f"{field} must be a string or a list of text parts", field)


def _number(body: dict, name: str, kind: type, default: Any) -> Any:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise InvalidArgument(f"{name} must be {'a number' if kind is float else 'an integer'}",
                              name)
    return kind(value)


def _memos_options(body: dict) -> tuple[tuple[str, ...], Optional[bool], int]:
    """(cube ids, remember, retrieval_top_k) from the `memos` extra field or `user`."""
    extra = body.get("memos") or {}
    if not isinstance(extra, dict):
        raise InvalidArgument("memos must be an object", "memos")
    cubes = extra.get("cube_ids")
    if cubes is None and body.get("user"):
        cubes = [body["user"]]
    if not cubes:
        raise InvalidArgument("name the cubes to answer from: \"memos\": {\"cube_ids\": [...]} "
                              "(the SDK's extra_body) or the user field", "memos.cube_ids")
    if not isinstance(cubes, list) or not all(isinstance(c, str) for c in cubes):
        raise InvalidArgument("memos.cube_ids must be a list of strings", "memos.cube_ids")
    remember = extra.get("remember")
    if remember is not None and not isinstance(remember, bool):
        raise InvalidArgument("memos.remember must be true or false", "memos.remember")
    top_k = _number(extra, "retrieval_top_k", int, 0)
    return tuple(cubes), remember, top_k


def chat_call(body: Any, model_id: str) -> tuple[ChatCall, bool, bool]:
    """(the call, stream, include usage in the stream) for a request body; InvalidArgument
    naming the field for anything malformed, NotFound for another model."""
    if not isinstance(body, dict):
        raise InvalidArgument("the request body must be a JSON object", "body")
    for name in UNSUPPORTED:
        if body.get(name) not in (None, [], False):
            raise InvalidArgument(f"{name} is not supported by this server", name)
    model = body.get("model")
    if model not in (None, model_id):
        raise NotFound(f"the model {str(model)[:100]!r} does not exist; this server serves "
                       f"{model_id!r} (GET /v1/models)", "model")
    if _number(body, "n", int, 1) != 1:
        raise InvalidArgument("n must be 1", "n")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidArgument("messages must be a non-empty list", "messages")
    parsed = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidArgument(f"messages[{i}] must be an object", f"messages[{i}]")
        role = message.get("role")
        role = "system" if role == "developer" else role  # OpenAI's newer name for system
        name = message.get("name") or ""
        if not isinstance(role, str) or not isinstance(name, str):
            raise InvalidArgument(f"messages[{i}].role and name must be strings",
                                  f"messages[{i}].role")
        parsed.append(ChatMessage(role, _text(message.get("content"),
                                              f"messages[{i}].content"), name))
    max_tokens = _number(body, "max_completion_tokens", int, None)
    max_tokens = _number(body, "max_tokens", int, 0) if max_tokens is None else max_tokens
    sampling = SamplingParams(max_tokens, _number(body, "temperature", float, 0.0),
                              _number(body, "top_p", float, 0.0), _number(body, "seed", int, 0))
    if sampling.max_new_tokens < 0:
        raise InvalidArgument("max_tokens must be positive", "max_tokens")
    cubes, remember, top_k = _memos_options(body)
    stream = body.get("stream", False)
    options = body.get("stream_options") or {}
    if not isinstance(stream, bool) or not isinstance(options, dict):
        raise InvalidArgument("stream must be true or false, stream_options an object",
                              "stream")
    call = ChatCall(cubes, tuple(parsed), sampling, top_k, remember, stream)
    return call, stream, bool(options.get("include_usage"))


class Completion:
    """One response's identity and its shapes (the whole completion, or its chunks)."""

    def __init__(self, model_id: str, clock: Any = time.time):
        self.id = "chatcmpl-" + uuid.uuid4().hex[:24]
        self.created = int(clock())
        self.model = model_id

    def _head(self, kind: str) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model,
                "system_fingerprint": None}

    def chunk(self, delta: dict[str, Any], finish: Optional[str] = None) -> dict[str, Any]:
        return {**self._head("chat.completion.chunk"),
                "choices": [{"index": 0, "delta": delta, "logprobs": None,
                             "finish_reason": finish}]}

    def usage_chunk(self, stats: ChatStats) -> dict[str, Any]:
        return {**self._head("chat.completion.chunk"), "choices": [],
                "usage": usage(stats.generate)}

    def final_chunk(self, stats: ChatStats) -> dict[str, Any]:
        chunk = self.chunk({}, FINISH.get(stats.generate.finish_reason, "stop"))
        chunk["memos"] = memos_detail(stats)
        return chunk

    def whole(self, stats: ChatStats) -> dict[str, Any]:
        return {**self._head("chat.completion"),
                "choices": [{"index": 0, "logprobs": None,
                             "message": {"role": "assistant", "content": stats.answer,
                                         "refusal": None},
                             "finish_reason": FINISH.get(stats.generate.finish_reason,
                                                         "stop")}],
                "usage": usage(stats.generate), "memos": memos_detail(stats)}


def usage(stats: GenerateStats) -> dict[str, Any]:
    return {"prompt_tokens": stats.prompt_tokens, "completion_tokens": stats.num_generated,
            "total_tokens": stats.prompt_tokens + stats.num_generated,
            "prompt_tokens_details": {"cached_tokens": stats.prefill_tokens_saved}}


def memos_detail(stats: ChatStats) -> dict[str, Any]:
    """What memos adds to a completion: the memories the prompt held and the tier that
    served each, time to first token, and the ids the turn was remembered as."""
    g = stats.generate
    return {"ttft_ms": round(g.ttft_ms, 1), "total_ms": round(g.total_ms, 1),
            "memories": [{"cube_id": m.cube_id, "memory_id": m.memory_id,
                          "version": m.version, "tier": m.tier} for m in g.memories],
            "remembered": list(stats.remembered)}
