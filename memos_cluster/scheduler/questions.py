"""Each cube's frequent questions: decayed counts of the queries that reached its memories.
Pure bookkeeping, no I/O.

The scheduler keeps them beside memory frequencies: a question adapter learns a cube's most
frequent questions (tiers/parametric/distill.py), since those are the queries an adapter can
answer without retrieval. A question's count decays like a memory's (frequency.decay); a cube
keeps at most `per_cube` questions, the coldest dropped first.

Who uses it: `Scheduler.record` (Search and Generate access events carry their query) and
`Scheduler._execute` (consolidation asks for the frequent ones).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from memos_cluster.scheduler.frequency import decay


def question_key(query: str) -> str:
    """Queries that differ only in spacing count as one question."""
    return " ".join(query.split())


@dataclass
class QuestionLog:
    half_life_s: float
    per_cube: int = 256
    # cube -> question -> (decayed count at the time, that time in seconds)
    counts: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)

    def record(self, cube_id: str, query: str, time_s: float) -> None:
        key = question_key(query)
        if not key:
            return
        questions = self.counts.setdefault(cube_id, {})
        count, updated = questions.get(key, (0.0, time_s))
        now = max(time_s, updated)
        questions[key] = (decay(count, now - updated, self.half_life_s)
                          + decay(1.0, now - time_s, self.half_life_s), now)
        if len(questions) > self.per_cube:
            coldest = min(questions, key=lambda q: self.frequency(cube_id, q, now))
            del questions[coldest]

    def frequency(self, cube_id: str, question: str, now_s: float) -> float:
        count, updated = self.counts.get(cube_id, {}).get(question, (0.0, now_s))
        return decay(count, now_s - updated, self.half_life_s)

    def frequent(self, cube_id: str, now_s: float, min_frequency: float,
                 limit: int) -> list[str]:
        """The cube's questions asked at least `min_frequency` (decayed), hottest first."""
        scored = [(self.frequency(cube_id, q, now_s), q) for q in self.counts.get(cube_id, {})]
        return [q for f, q in sorted(scored, key=lambda x: (-x[0], x[1]))
                if f >= min_frequency][:limit]

    def to_json(self) -> dict:
        return {c: [[q, n, t] for q, (n, t) in qs.items()] for c, qs in self.counts.items()}

    @classmethod
    def from_json(cls, data: dict, half_life_s: float, per_cube: int) -> "QuestionLog":
        log = cls(half_life_s, per_cube)
        log.counts = {c: {q: (float(n), float(t)) for q, n, t in rows}
                      for c, rows in data.items()}
        return log
