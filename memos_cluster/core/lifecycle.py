"""A memory's lifecycle: its state, when it held in the world, when it stops being served, and
the feedback that changes it. Plain dataclasses and constants: no Milvus, no protobuf.

Who uses them: the plaintext tier stores states and validity as fields of every memory
(tiers/plaintext/lifecycle.py) and decides supersessions with a policy
(tiers/plaintext/supersede.py); every read filters by state (tiers/plaintext/filters.py); the
gateway tells the derived tiers (KV caches, adapters) when a memory stops being active, through
the path updates and deletes use (actors/operations.py); the scheduler archives expired memories.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Optional

from memos_cluster.core.errors import FailedPrecondition

# Stored states. Deleted memories are gone (with their history), as before.
ACTIVE = "active"  # served by every read and every tier
SUPERSEDED = "superseded"  # a newer memory says otherwise; kept, with valid_to and its successor
ARCHIVED = "archived"  # judged wrong (feedback) or expired and archived; kept, never served
STORED_STATES = (ACTIVE, SUPERSEDED, ARCHIVED)
# A view, not a stored state: active with expires_at in the past. Reads see it at once; the
# scheduler's next cycle archives or deletes it (scheduler.expire_action).
EXPIRED = "expired"
READ_STATES = (*STORED_STATES, EXPIRED)

# The most a TTL or an expiry may reach ahead (ms): 100 years. Further is a unit mistake.
MAX_TTL_MS = 100 * 365 * 86_400_000

# Feedback kinds (the Feedback operation).
WRONG = "wrong"  # archives the memory
OUTDATED = "outdated"  # supersedes it; the feedback's text, if any, becomes its successor
USEFUL = "useful"  # counts as accesses for the scheduler; the memory is unchanged
FEEDBACK_KINDS = (WRONG, OUTDATED, USEFUL)
USEFUL_ACCESSES = 3  # access events one `useful` feedback counts as (the scheduler's frequency)


def effective_state(state: str, expires_at_ms: Optional[int], now_ms: int) -> str:
    """The state a read sees: an active memory past its expiry reads as expired."""
    if state == ACTIVE and expires_at_ms is not None and expires_at_ms <= now_ms:
        return EXPIRED
    return state


def require_active(memory_id: str, state: str, superseded_by: str, action: str,
                   field: str) -> None:
    """FailedPrecondition naming the state (and the successor) of a memory that is no longer
    active. Who calls it: UpdateMemory, Feedback and a state change, each before it writes."""
    if state != ACTIVE:
        by = f" (by {superseded_by!r})" if superseded_by else ""
        raise FailedPrecondition(f"memory {memory_id!r} is {state}{by}; only an active memory "
                                 f"can {action}", field)


def successor_id(memory_id: str, version: int, text: str) -> str:
    """The id of the memory an `outdated` feedback's text adds: the same feedback sent twice
    names the same memory, so a retry stores nothing twice."""
    digest = hashlib.sha256(f"{memory_id}\0{version}\0{text}".encode()).hexdigest()
    return f"next-{digest[:24]}"


@dataclass(frozen=True)
class Fact:
    """A single-valued fact a memory states: `subject`'s `slot` is `value` (lower case).
    Made by tiers/plaintext/supersede.py from the reader's relations."""

    subject: str  # the canonical name, lower case ("alice")
    slot: str  # "residence", "employer", "relationship", "favourite colour", ...
    value: str  # "berlin"

    @property
    def key(self) -> str:
        """What two memories about the same slot share (stored, and queried on writes)."""
        return f"{self.subject}|{self.slot}"


@dataclass(frozen=True)
class Supersession:
    """One decision: `old_id` no longer holds from `valid_to_ms`, because `new_id` says so.
    The gateway writes each to the audit log and drops the old memory's caches and adapters."""

    cube_id: str
    old_id: str
    new_id: str
    valid_to_ms: Optional[int]  # the successor's valid_from; None when it has none
    reason: str  # "alice residence: paris -> berlin (rule)"


@dataclass(frozen=True)
class Feedback:
    """A Feedback request: someone judged a memory."""

    cube_id: str
    memory_id: str
    kind: str  # one of FEEDBACK_KINDS
    text: str = ""  # outdated: the successor's text; otherwise a note for the audit log
