"""Chat between protobuf and domain types (the RPC codecs of memos_cluster.api.rpcs)."""
from __future__ import annotations

from memos_cluster.api.convert import (
    generate_stats_from_pb, generate_stats_to_pb, token_to_pb)
from memos_cluster.api.memos.v1 import memos_pb2 as pb
from memos_cluster.core.tier_types import (
    ChatCall, ChatMessage, ChatStats, SamplingParams, TokenEvent)


def chat_from_pb(message: pb.ChatRequest) -> ChatCall:
    """Unset numbers stay 0 and an unset `remember` None: ActivationService applies the
    configured defaults."""
    return ChatCall(
        cube_ids=tuple(message.cube_ids),
        messages=tuple(ChatMessage(m.role, m.content, m.name) for m in message.messages),
        sampling=SamplingParams(max_new_tokens=message.max_new_tokens,
                                temperature=message.temperature, top_p=message.top_p,
                                seed=message.seed),
        retrieval_top_k=message.retrieval_top_k,
        remember=message.remember if message.HasField("remember") else None)


def chat_to_pb(call: ChatCall) -> pb.ChatRequest:
    s = call.sampling
    request = pb.ChatRequest(
        cube_ids=list(call.cube_ids),
        messages=[pb.ChatMessage(role=m.role, content=m.content, name=m.name)
                  for m in call.messages],
        max_new_tokens=s.max_new_tokens, temperature=s.temperature, top_p=s.top_p, seed=s.seed,
        retrieval_top_k=call.retrieval_top_k)
    if call.remember is not None:
        request.remember = call.remember
    return request


def chat_event_to_pb(event: TokenEvent | ChatStats) -> pb.ChatResponse:
    if isinstance(event, TokenEvent):
        return pb.ChatResponse(token=token_to_pb(event))
    return pb.ChatResponse(stats=pb.ChatStats(generate=generate_stats_to_pb(event.generate),
                                              answer=event.answer,
                                              remembered=list(event.remembered)))


def chat_event_from_pb(message: pb.ChatResponse) -> TokenEvent | ChatStats:
    if message.WhichOneof("event") == "token":
        return TokenEvent(message.token.token_id, message.token.text)
    s = message.stats
    return ChatStats(generate_stats_from_pb(s.generate), s.answer, tuple(s.remembered))
