"""Months named in a query, matched against memories' event times. Pure functions.

"When did Melanie go camping in June?" is about a memory of June: in hybrid mode the memories
whose event time falls in the named month (and year, when one follows it in the same clause)
get `search.date_boost` added to their fused score. Event times are read in UTC, as ingest
writes them (data/locomo.py parses session dates as UTC). Only capitalised month names count:
lower-case "may" is a verb, and a query starting with "May" is asking leave.
Who calls it: PlaintextTier._hybrid, and the cross-validation (bench/crossval.py) that chose the
boost. LoCoMo dev: 110 of 997 questions name a month (docs/retrieval.md).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Hashable, Optional, Sequence, TypeVar

Key = TypeVar("Key", bound=Hashable)

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
# A month name, then optionally a year before the clause ends ("in July 2023", "on 13 October,
# 2023"; not a year two sentences on).
_MONTH = re.compile(r"\b(" + "|".join(MONTHS) + r")\b(?:[^.?!;]*?\b((?:19|20)\d\d)\b)?")


@dataclass(frozen=True)
class MonthRef:
    month: int  # 1..12
    year: Optional[int] = None  # None: that month of any year

    def holds(self, event_time_ms: Optional[int]) -> bool:
        if event_time_ms is None:
            return False
        moment = datetime.fromtimestamp(event_time_ms / 1000, timezone.utc)
        return moment.month == self.month and self.year in (None, moment.year)


def named_month(query: str) -> Optional[MonthRef]:
    """The first month the query names, or None."""
    for match in _MONTH.finditer(query):
        if match.group(1) == "May" and match.start() == 0:
            continue
        year = int(match.group(2)) if match.group(2) else None
        return MonthRef(MONTHS.index(match.group(1)) + 1, year)
    return None


def boost_in_month(fused: Sequence[tuple[Key, float]], event_times: dict[Key, Optional[int]],
                   ref: Optional[MonthRef], boost: float) -> list[tuple[Key, float]]:
    """Add `boost` to the score of each key whose event time (ms since the epoch) `ref` holds;
    best first, ties in the fused order. No month or no boost: the fused list unchanged."""
    if ref is None or boost <= 0:
        return list(fused)
    boosted = [(key, score + boost * ref.holds(event_times.get(key))) for key, score in fused]
    return sorted(boosted, key=lambda pair: pair[1], reverse=True)
