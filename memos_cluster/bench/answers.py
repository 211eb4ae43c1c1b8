"""Scoring generated answers against gold answers (LoCoMo QA). Pure functions.

- token F1: the harmonic mean of precision and recall of the normalized answer's tokens against
  the gold answer's (SQuAD's normalization: lower case, no punctuation, no articles);
- containment: whether the normalized gold answer appears in the normalized answer, which
  credits a right answer given in a longer sentence;
- for a date: whether the answer names the gold answer's period (`names_gold_date`): LoCoMo
  writes many temporal answers as anchored phrases ("The week before 9 June 2023"), which an
  answer giving the right day ("on 1 June 2023") never contains word for word.
Both in percent when averaged (`AnswerTable`), overall and per category.
"""
from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

_ARTICLES = re.compile(r"\b(a|an|the|and)\b")
_PUNCTUATION = str.maketrans({c: " " for c in string.punctuation})


def normalize(text: str) -> str:
    lowered = str(text).lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", lowered).split())


def token_f1(prediction: str, gold: str) -> float:
    predicted, wanted = normalize(prediction).split(), normalize(gold).split()
    if not predicted or not wanted:
        return float(predicted == wanted)
    common = sum((Counter(predicted) & Counter(wanted)).values())
    if not common:
        return 0.0
    precision, recall = common / len(predicted), common / len(wanted)
    return 2 * precision * recall / (precision + recall)


def names_gold_date(prediction: str, gold: str) -> Optional[bool]:
    """Whether the answer names a period within the gold answer's (a day inside the gold week
    counts, the month around it does not); None when the gold answer is no period the
    reader's rules resolve ("4 years", "Since 2016")."""
    from datetime import date, datetime, timezone

    from memos_cluster.reader.times import find_times, resolve_phrase

    wanted = resolve_phrase(gold.strip().rstrip("."), date(2023, 1, 1))
    if wanted is None or not re.search(r"\b(?:19|20)\d\d\b", gold):
        return None
    base = int(datetime(wanted.start.year, 6, 30, tzinfo=timezone.utc).timestamp() * 1000)
    low = _ms(wanted.start) - 86_400_000
    high = _ms(wanted.end) + 86_400_000
    return any(t.is_resolved and low <= t.start_ms and t.end_ms <= high
               for t in find_times(prediction, base) if _absolute(t.span))


def _absolute(span: str) -> bool:
    """A date the answer states, not one relative to an unknown day ("last week")."""
    return not re.search(r"\b(?:ago|last|next|this|yesterday|today|tomorrow)\b", span, re.I)


def _ms(day) -> int:
    from datetime import datetime, timezone

    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000)


def contains(prediction: str, gold: str) -> bool:
    wanted = normalize(gold)
    return bool(wanted) and f" {wanted} " in f" {normalize(prediction)} "


@dataclass
class AnswerTable:
    """Sums of per-question scores by group ("all", or a category)."""

    f1: dict[str, float] = field(default_factory=dict)
    contained: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, category: str, prediction: str, gold: str) -> None:
        for group in ("all", category):
            self.counts[group] = self.counts.get(group, 0) + 1
            self.f1[group] = self.f1.get(group, 0.0) + token_f1(prediction, gold)
            self.contained[group] = self.contained.get(group, 0) + contains(prediction, gold)

    def scores(self, group: str = "all") -> dict[str, float]:
        """{"f1": ..., "contains": ..., "n": ...}, scores in percent."""
        n = self.counts.get(group, 0)
        return {"f1": round(100 * self.f1.get(group, 0.0) / n, 1) if n else 0.0,
                "contains": round(100 * self.contained.get(group, 0) / n, 1) if n else 0.0,
                "n": n}
