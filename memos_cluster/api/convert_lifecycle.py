"""Protobuf <-> domain for the lifecycle: a memory's state and validity, supersessions, and the
Feedback operation. Who uses it: api/convert.py (Memory, NewMemory, SearchFilter, ...) and
api/rpcs.py (AddMemories' and Feedback's replies), both directions."""
from __future__ import annotations

from typing import Any, Optional

from memos_cluster.api.memos.v1 import memos_pb2 as pb
from memos_cluster.core.lifecycle import Feedback, Supersession
from memos_cluster.core.types import FeedbackResult


def opt(message: Any, name: str) -> Optional[int]:
    """A proto3 `optional int64`: None when unset."""
    return int(getattr(message, name)) if message.HasField(name) else None


def set_opt(target: Any, name: str, value: Optional[int]) -> None:
    if value is None:
        target.ClearField(name)
    else:
        setattr(target, name, int(value))


def lifecycle_to_pb(item: Any, target: pb.Memory) -> None:
    """A MemoryItem's lifecycle fields onto its Memory message."""
    target.state, target.superseded_by = item.state, item.superseded_by
    target.state_reason = item.state_reason
    target.supersedes.extend(item.supersedes)
    for name in ("valid_from_ms", "valid_to_ms", "expires_at_ms"):
        set_opt(target, name, getattr(item, name))


def lifecycle_from_pb(message: pb.Memory) -> dict[str, Any]:
    """MemoryItem keyword arguments of a Memory message's lifecycle fields."""
    return dict(state=message.state or "active", superseded_by=message.superseded_by,
                supersedes=tuple(message.supersedes), state_reason=message.state_reason,
                valid_from_ms=opt(message, "valid_from_ms"),
                valid_to_ms=opt(message, "valid_to_ms"),
                expires_at_ms=opt(message, "expires_at_ms"))


def supersession_to_pb(decision: Supersession) -> pb.Supersession:
    message = pb.Supersession(cube_id=decision.cube_id, old_id=decision.old_id,
                              new_id=decision.new_id, reason=decision.reason)
    set_opt(message, "valid_to_ms", decision.valid_to_ms)
    return message


def supersession_from_pb(message: pb.Supersession) -> Supersession:
    return Supersession(message.cube_id, message.old_id, message.new_id,
                        opt(message, "valid_to_ms"), message.reason)


def feedback_from_pb(message: pb.FeedbackRequest) -> Feedback:
    return Feedback(message.cube_id, message.memory_id, message.kind, message.text)


def feedback_to_pb(feedback: Feedback) -> pb.FeedbackRequest:
    return pb.FeedbackRequest(cube_id=feedback.cube_id, memory_id=feedback.memory_id,
                              kind=feedback.kind, text=feedback.text)


def feedback_result_to_pb(result: FeedbackResult, memory_to_pb: Any) -> pb.FeedbackResponse:
    message = pb.FeedbackResponse(superseded=[supersession_to_pb(d) for d in result.superseded])
    memory_to_pb(result.memory, message.memory)
    if result.successor is not None:
        memory_to_pb(result.successor, message.successor)
    return message


def feedback_result_from_pb(message: pb.FeedbackResponse, memory_from_pb: Any) -> FeedbackResult:
    return FeedbackResult(
        memory_from_pb(message.memory),
        memory_from_pb(message.successor) if message.HasField("successor") else None,
        tuple(supersession_from_pb(d) for d in message.superseded))
