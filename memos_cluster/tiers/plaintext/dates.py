"""Time in hybrid search. Pure functions.

Two signals, both applied to the fused candidates (fusion.fuse_hybrid), each with its weight
chosen by leave-one-conversation-out cross-validation (bench locomo --cross-validate):
- a query that names a time ("in May 2023", "last week", "in June", "on 20 May") ranks first the
  memories whose event time, or a date they mention ("yesterday" resolved at ingest), falls in
  it (`search.date_boost`). Relative phrases resolve against the request's reference time
  (SearchQuery.reference_time_ms, default now); a month or day named without a year matches
  that month (or day) of any year;
- a question that asks when ("When did ...", "What date ...", "How long ago ...") ranks higher
  the memories that hold a resolved time expression (`search.when_boost`): the answer to a
  "when" is a memory that says when.
Event times and resolved dates are UTC, as ingest writes them.
Who calls it: fusion.fuse_hybrid (Searcher._hybrid and the cross-validation).
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Hashable, Optional, Sequence, TypeVar

from memos_cluster.reader.times import find_times

Key = TypeVar("Key", bound=Hashable)
_YEAR = re.compile(r"\b(?:19|20)\d\d\b")
_WHEN = re.compile(r"^\s*(?:when\b|what\s+(?:date|day|month|year|time)\b|how\s+long\s+ago\b|"
                   r"which\s+(?:date|day|month|year)\b|in\s+what\s+(?:month|year)\b)",
                   re.IGNORECASE)


@dataclass(frozen=True)
class MemoryTimes:
    """What a memory says about time: its event time and the periods its text mentions."""

    event_time_ms: Optional[int] = None
    periods: tuple[tuple[int, int], ...] = ()  # resolved mentions: [start, end) epoch ms


@dataclass(frozen=True)
class QueryTime:
    start_ms: int
    end_ms: int  # exclusive
    granularity: str  # day, weekend, week, month, year
    any_year: bool  # a month or day named without a year: that month or day of any year

    def overlaps(self, start_ms: int, end_ms: int) -> bool:
        if not self.any_year:
            return start_ms < self.end_ms and self.start_ms < end_ms
        want = _utc(self.start_ms)
        for moment in (_utc(start_ms), _utc(max(start_ms, end_ms - 1))):
            if moment.month == want.month and (self.granularity != "day"
                                               or moment.day == want.day):
                return True
        return False

    def holds(self, times: MemoryTimes) -> bool:
        if times.event_time_ms is not None and self.overlaps(times.event_time_ms,
                                                             times.event_time_ms + 1):
            return True
        return any(self.overlaps(s, e) for s, e in times.periods)


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, timezone.utc)


@functools.lru_cache(maxsize=4096)
def query_times(query: str, reference_ms: int) -> tuple[QueryTime, ...]:
    """The resolved time expressions of a query (the reader's rules, against the reference
    time). A query starting "May I ..." names no month. Cached: the cross-validation asks for
    each question's thousands of times."""
    out = []
    for mention in find_times(query, reference_ms):
        if not mention.is_resolved:
            continue
        absolute = mention.granularity in ("day", "month") and \
            not re.search(r"\b(?:ago|last|next|this|yesterday|today|tomorrow|before|after)\b",
                          mention.span, re.IGNORECASE)
        out.append(QueryTime(mention.start_ms, mention.end_ms, mention.granularity,
                             absolute and not _YEAR.search(mention.span)))
    return tuple(out)


def is_when_question(query: str) -> bool:
    return bool(_WHEN.search(query))


@dataclass(frozen=True)
class TimeMatches:
    """Which memories the two time boosts apply to, for one query."""

    in_time: frozenset = frozenset()  # keys of memories a time the query names holds
    dated: frozenset = frozenset()  # keys of memories with a resolved date, if asked when


def time_matches(times: Callable[[], dict[Key, MemoryTimes]], query: str, reference_ms: int,
                 month_only: bool = False) -> TimeMatches:
    """The memories (keys of `times()`) each boost applies to; `month_only`: only months the
    query names count (the search before the reader, the cross-validation's "before").
    `times` is called only when the query names a time or asks when (most do neither)."""
    wanted = query_times(query, reference_ms)
    if month_only:
        wanted = tuple(q for q in wanted if q.granularity == "month")
    asks_when = is_when_question(query)
    if not wanted and not asks_when:
        return TimeMatches()
    memories = times()
    in_time = frozenset(k for k, t in memories.items() if any(q.holds(t) for q in wanted))
    dated = frozenset(k for k, t in memories.items() if t.periods) if asks_when \
        else frozenset()
    return TimeMatches(in_time, dated)


def boost_times(fused: Sequence[tuple[Key, float]], matches: TimeMatches, date_boost: float,
                when_boost: float) -> list[tuple[Key, float]]:
    """Add `date_boost` to each candidate a time the query names holds, and `when_boost` to
    each candidate with a resolved date when the query asks when; best first, ties in the
    fused order. Neither applies: the fused list unchanged."""
    in_time = matches.in_time if date_boost > 0 else frozenset()
    dated = matches.dated if when_boost > 0 else frozenset()
    if not in_time and not dated:
        return list(fused)
    boosted = [(key, score + date_boost * (key in in_time) + when_boost * (key in dated))
               for key, score in fused]
    return sorted(boosted, key=lambda pair: pair[1], reverse=True)
