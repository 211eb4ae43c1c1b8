"""Chat's arguments: defaults, then checks, whatever the transport (gRPC, HTTP's OpenAI route,
Ray, MCP). Who calls it: ActivationService.chat, before any memory is read or stored."""
from __future__ import annotations

from dataclasses import replace

from memos_cluster.core.config import ActivationConfig, LimitsConfig
from memos_cluster.core.errors import InvalidArgument
from memos_cluster.core.tier_types import CHAT_ROLES, ChatCall, GenerateCall
from memos_cluster.core.validation import (
    check_generate, check_id, check_text, sampling_with_defaults)

MAX_CHAT_MESSAGES = 512  # messages in one request; the model's context ends most chats sooner


def chat_with_defaults(call: ChatCall, activation: ActivationConfig) -> ChatCall:
    """max_new_tokens 0, top_p 0 and remember None become the configured defaults."""
    remember = activation.chat_remember if call.remember is None else call.remember
    return replace(call, sampling=sampling_with_defaults(call.sampling, activation),
                   remember=remember)


def check_chat(call: ChatCall, limits: LimitsConfig, activation: ActivationConfig) -> None:
    """A Chat call after `chat_with_defaults`: cubes, sampling and retrieval as Generate's;
    1..MAX_CHAT_MESSAGES messages of known roles with text, the last the user's."""
    if not call.messages:
        raise InvalidArgument("messages must hold at least one message", "messages")
    if len(call.messages) > MAX_CHAT_MESSAGES:
        raise InvalidArgument(f"at most {MAX_CHAT_MESSAGES} messages a request", "messages")
    for i, message in enumerate(call.messages):
        if message.role not in CHAT_ROLES:
            raise InvalidArgument(f"messages[{i}].role must be one of {', '.join(CHAT_ROLES)}, "
                                  f"not {str(message.role)[:40]!r}", f"messages[{i}].role")
        check_text(message.content, f"messages[{i}].content", limits.max_text_chars)
        if message.name:
            check_id(message.name, f"messages[{i}].name", limits)
    if call.messages[-1].role != "user":
        raise InvalidArgument("the last message must be the user's", "messages")
    # The rest as Generate checks it (the last user message stands for the query).
    check_generate(GenerateCall(call.cube_ids, call.messages[-1].content, call.sampling,
                                retrieval_top_k=call.retrieval_top_k), limits, activation)
