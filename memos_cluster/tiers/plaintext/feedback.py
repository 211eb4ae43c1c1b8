"""The Feedback operation on one shard: someone judged a memory (docs/lifecycle.md).

Who uses it: `PlaintextTier.feedback`, for the gateway's Feedback operation. The gateway
records who and when in the audit log, counts `useful` as accesses for the scheduler, and tells
the derived tiers (KV caches, adapters) when a memory stopped being active.
"""
from __future__ import annotations

from typing import Any

from memos_cluster.core.errors import NotFound
from memos_cluster.core.lifecycle import (
    ARCHIVED, READ_STATES, SUPERSEDED, USEFUL, WRONG, Feedback, require_active, successor_id)
from memos_cluster.core.types import FeedbackResult, NewMemory


def give_feedback(tier: Any, feedback: Feedback) -> FeedbackResult:
    """Who calls it: the gateway's Feedback operation. `wrong` archives the memory;
    `outdated` supersedes it, by the feedback's text added as a new memory when given;
    `useful` changes nothing here (the gateway counts it as accesses). The memory must be
    active: FailedPrecondition names its state otherwise."""
    cube_id, memory_id = feedback.cube_id, feedback.memory_id
    found = tier.get(cube_id, [memory_id], READ_STATES).items
    if not found:
        raise NotFound(f"memory {memory_id!r} does not exist in cube {cube_id!r}", "id")
    current = found[0]
    require_active(memory_id, current.state, current.superseded_by, "be judged", "memory_id")
    if feedback.kind == USEFUL:
        return FeedbackResult(current)
    note = f"feedback {feedback.kind}" + (f": {feedback.text}" if feedback.text else "")
    if feedback.kind == WRONG:
        return FeedbackResult(tier.lifecycle.set_state(cube_id, memory_id, ARCHIVED, note))
    successor, superseded = None, ()
    if feedback.text:  # the successor first: a crash leaves both active, nothing lost
        new_id = successor_id(memory_id, current.version, feedback.text)
        superseded = tier.add(cube_id, [NewMemory(
            feedback.text, id=new_id, memory_type=current.memory_type,
            metadata=current.metadata, source="feedback")]).superseded
        successor = tier.get(cube_id, [new_id], READ_STATES).items[0]
    if any(s.old_id == memory_id for s in superseded):  # the rule did it already
        return FeedbackResult(tier.get(cube_id, [memory_id], READ_STATES).items[0],
                              successor, superseded)
    judged = tier.lifecycle.set_state(
        cube_id, memory_id, SUPERSEDED, note, successor.id if successor else "",
        successor.valid_from_ms if successor else tier.store.now_ms())
    return FeedbackResult(judged, successor, superseded)
