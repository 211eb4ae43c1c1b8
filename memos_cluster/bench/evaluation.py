"""Scoring retrieval against evidence labels (LoCoMo-style). Pure functions.

Evidence recall@k: for each question, walk the ranked hits spending a budget of k dialogue turns
(a hit that covers n turns costs n; a hit that would overrun the budget is not taken), and count
the fraction of the question's evidence turns covered. Averaged over questions, overall and per
category (1 multi-hop, 2 temporal, 3 open-domain, 4 single-hop, 5 adversarial).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

CATEGORY_NAMES = {"1": "multi-hop", "2": "temporal", "3": "open-domain", "4": "single-hop",
                  "5": "adversarial"}


@dataclass(frozen=True)
class Question:
    question: str
    evidence: tuple[str, ...]  # dia_ids, e.g. ("D1:3",)
    category: str  # "1".."5"
    conversation: str  # sample_id, e.g. "conv-26"


def evidence_recall(ranked_turns: Sequence[Sequence[str]], evidence: Iterable[str],
                    budget: int) -> float:
    """ranked_turns: for each hit, best first, the dia_ids it covers."""
    wanted = set(evidence)
    if not wanted:
        raise ValueError("a question without evidence cannot be scored")
    covered: set[str] = set()
    spent = 0
    for turns in ranked_turns:
        cost = max(len(turns), 1)
        if spent + cost > budget:
            break
        spent += cost
        covered.update(turns)
    return len(wanted & covered) / len(wanted)


@dataclass
class RecallTable:
    """Sums of per-question recalls, by group ("all", a category, a conversation) and k."""

    ks: tuple[int, ...]
    sums: dict[str, dict[int, float]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, question: Question, ranked_turns: Sequence[Sequence[str]]) -> None:
        for group in ("all", question.category, question.conversation):
            self.counts[group] = self.counts.get(group, 0) + 1
            row = self.sums.setdefault(group, {k: 0.0 for k in self.ks})
            for k in self.ks:
                row[k] += evidence_recall(ranked_turns, question.evidence, k)

    def recall(self, group: str) -> dict[str, float]:
        """{"5": 0.61, ...} as fractions, keys as strings (the JSON shape of `bench locomo`)."""
        n = self.counts.get(group, 0)
        return {str(k): round(self.sums[group][k] / n, 4) if n else 0.0 for k in self.ks}

    def groups(self, prefix: str = "") -> list[str]:
        return sorted(g for g in self.counts if g.startswith(prefix))


def locomo_questions(sample: dict) -> list[Question]:
    """The questions of one LoCoMo conversation that name evidence turns."""
    out = []
    for qa in sample.get("qa", []):
        # A few labels join two turns with ";" ("D8:6; D9:17"); split them.
        evidence = tuple(part.strip() for e in qa.get("evidence", []) if isinstance(e, str)
                         for part in e.split(";") if part.strip())
        if evidence:
            out.append(Question(str(qa["question"]), evidence, str(qa["category"]),
                                sample["sample_id"]))
    return out
