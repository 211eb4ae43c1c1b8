"""Scoring generated answers against gold answers (LoCoMo QA). Pure functions.

- token F1: the harmonic mean of precision and recall of the normalized answer's tokens against
  the gold answer's (SQuAD's normalization: lower case, no punctuation, no articles);
- containment: whether the normalized gold answer appears in the normalized answer, which
  credits a right answer given in a longer sentence.
Both in percent when averaged (`AnswerTable`), overall and per category.
"""
from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import dataclass, field

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
