"""Validation of the lifecycle's inputs: expiries, TTLs, states and feedback (validity times
and as_of are times like event times: validation.check_event_time). Who calls
it: core/validation.py (requests that carry them) and the operation table (Feedback), before
anything is authorized, audited or stored. Expiries are compared with the wall clock of the
process validating (the gateway's): a memory that would be invisible the moment it is stored is
refused rather than stored."""
from __future__ import annotations

import time
from typing import Any, Optional, Sequence

from memos_cluster.core.errors import InvalidArgument
from memos_cluster.core.lifecycle import FEEDBACK_KINDS, MAX_TTL_MS, READ_STATES, Feedback

MAX_FEEDBACK_CHARS = 4000  # an outdated feedback's text becomes a memory; a note is shorter


def now_ms() -> int:
    return int(time.time() * 1000)


def check_expiry(value: Optional[int], field: str) -> None:
    """An expiry must be an integer in the future and at most MAX_TTL_MS ahead."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{field} must be an integer (epoch milliseconds)", field)
    now = now_ms()
    if value <= now:
        raise InvalidArgument(f"{field} {value} is in the past (now is {now}): the memory "
                              "would never be served", field)
    if value - now > MAX_TTL_MS:
        raise InvalidArgument(f"{field} is more than 100 years ahead; epoch milliseconds, "
                              "not microseconds?", field)


def check_ttl(value: Any, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TTL_MS:
        raise InvalidArgument(f"{field} must be 0 (never) or a positive number of "
                              "milliseconds up to 100 years", field)


def check_states(states: Sequence[str], field: str = "states") -> tuple[str, ...]:
    for state in states:
        if state not in READ_STATES:
            raise InvalidArgument(f"{field}: unknown state {str(state)[:40]!r}; one of "
                                  f"{', '.join(READ_STATES)}", field)
    return tuple(dict.fromkeys(states))


def check_feedback_fields(feedback: Feedback) -> None:
    """The kind and the text (the ids are checked by the caller, with the limits)."""
    if feedback.kind not in FEEDBACK_KINDS:
        raise InvalidArgument(f"kind must be one of {', '.join(FEEDBACK_KINDS)}, not "
                              f"{str(feedback.kind)[:40]!r}", "kind")
    if not isinstance(feedback.text, str) or len(feedback.text) > MAX_FEEDBACK_CHARS:
        raise InvalidArgument(f"text is longer than {MAX_FEEDBACK_CHARS} characters", "text")
    if feedback.kind == "outdated" and feedback.text and not feedback.text.strip():
        raise InvalidArgument("an outdated feedback's text becomes the memory's successor; "
                              "it must not be blank", "text")
