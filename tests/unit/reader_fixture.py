"""Hand-labelled LoCoMo turns for evaluating a memory reader (time expressions and named entities).

The labels live in fixtures/reader_labels.json (keys and labels only: the LoCoMo text is CC BY-NC
and stays in ../shared); `load_labelled_turns` joins them with the turn text read at run time.
The labelling rules are in the fixture's "rules" object.

Mentions are dicts. Gold ones come from the fixture, with "char_start"/"char_end" added (offsets
into the raw turn text, without any "Speaker: " prefix):
  time:   {"span", "start": "YYYY-MM-DD" | None, "end": ... | None, "granularity": str | None}
  entity: {"span", "name", "type"}
Predicted mentions need "span", and "char_start" if the span occurs more than once (without it the
first whole-word occurrence is used; a reader that sees "Speaker: text" must subtract the prefix
length). A predicted time's "start" may be "YYYY-MM-DD", a date/datetime, epoch ms (UTC) or None.

Scoring (one-to-one, greedy in gold order):
  times:    a prediction matches a gold time when the spans overlap; the match is correct when,
            for a resolved gold time, start (as a UTC date) and granularity agree, and for an
            unresolved gold time (start None), the prediction is unresolved too.
  entities: a match needs overlapping spans and the same canonical name, compared case-insensitively
            and ignoring spaces/punctuation ("Door Dash" == "DoorDash"); the type is not compared.
precision = correct / predicted, recall = correct / gold; `Score` adds up over turns.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

from memos_cluster.data.locomo import locomo_session_time_ms

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "reader_labels.json"
GRANULARITIES = ("day", "week", "weekend", "month", "year")


@dataclass(frozen=True)
class LabelledTurn:
    sample_id: str
    dia_id: str
    speaker: str
    text: str  # raw turn["text"]: no speaker prefix, no image caption
    session_time_ms: int  # the session's date and time, epoch ms, UTC
    times: list = field(default_factory=list)
    entities: list = field(default_factory=list)
    notes: str = ""


def locate(text: str, span: str, occurrence: int = 0) -> Optional[int]:
    """Offset of the `occurrence`-th (0-based) whole-word occurrence of `span` in `text`, or None.
    Whole-word: a span that starts (ends) with a letter or digit may not be preceded (followed) by
    one, so "I" matches in "I'm" but not in "It"."""
    seen, at = 0, text.find(span)
    while at >= 0:
        end = at + len(span)
        left_ok = not (span[:1].isalnum() and at > 0 and text[at - 1].isalnum())
        right_ok = not (span[-1:].isalnum() and end < len(text) and text[end].isalnum())
        if left_ok and right_ok:
            if seen == occurrence:
                return at
            seen += 1
        at = text.find(span, at + 1)
    return None


def _with_offsets(text: str, mention: Mapping[str, Any], where: str) -> dict:
    at = locate(text, mention["span"], mention.get("occurrence", 0))
    if at is None:
        raise ValueError(f"{where}: span {mention['span']!r} is not in the turn text")
    return {**mention, "char_start": at, "char_end": at + len(mention["span"])}


def load_labelled_turns(shared_dir: Path, fixture: Path = FIXTURE) -> list[LabelledTurn]:
    """The labelled turns, in fixture order, with their text from `shared_dir` (the ../shared
    folder holding data/locomo/locomo-dev5.json). Raises ValueError if a label does not fit."""
    labels = json.loads(Path(fixture).read_text())
    data_path = Path(shared_dir) / "data" / "locomo" / "locomo-dev5.json"
    samples = {s["sample_id"]: s["conversation"] for s in json.loads(data_path.read_text())}
    turns = []
    for row in labels["turns"]:
        where = f"{row['sample_id']} {row['dia_id']}"
        conversation = samples[row["sample_id"]]
        session = "session_" + row["dia_id"][1:].split(":")[0]
        turn = next(t for t in conversation[session] if t["dia_id"] == row["dia_id"])
        when = locomo_session_time_ms(conversation[f"{session}_date_time"])
        day = datetime.fromtimestamp(when / 1000, timezone.utc).date().isoformat()
        if day != row["session_date"]:
            raise ValueError(f"{where}: session date is {day}, the fixture says {row['session_date']}")
        text = turn["text"]
        turns.append(LabelledTurn(
            sample_id=row["sample_id"], dia_id=row["dia_id"], speaker=turn["speaker"], text=text,
            session_time_ms=when,
            times=[_with_offsets(text, m, where) for m in row["times"]],
            entities=[_with_offsets(text, m, where) for m in row["entities"]],
            notes=row.get("notes", "")))
    return turns


@dataclass
class Score:
    """Counts for precision/recall; add Scores to pool turns. `matched` counts span matches
    regardless of resolution/name, to tell detection errors from resolution errors."""
    correct: int = 0
    matched: int = 0
    predicted: int = 0
    gold: int = 0

    def __add__(self, other: "Score") -> "Score":
        return Score(self.correct + other.correct, self.matched + other.matched,
                     self.predicted + other.predicted, self.gold + other.gold)

    @property
    def precision(self) -> float:
        """1.0 when nothing was predicted (and recall 1.0 when there is no gold)."""
        return self.correct / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.correct / self.gold if self.gold else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def _as_date(value: Any) -> Optional[date]:
    if value is None:
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc).date()
    if isinstance(value, date):
        return value
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value / 1000, timezone.utc).date()
    return date.fromisoformat(str(value)[:10])


def _interval(text: str, mention: Mapping[str, Any]) -> Optional[tuple[int, int]]:
    start = mention.get("char_start")
    if start is None:
        start = locate(text, mention["span"], mention.get("occurrence", 0))
        if start is None:
            return None
    return start, mention.get("char_end", start + len(mention["span"]))


def _norm_name(name: str) -> str:
    return "".join(ch for ch in name.casefold() if ch.isalnum())


def _score(predicted: Sequence[Mapping], gold_items: Sequence[Mapping], text: str, same) -> Score:
    spans = [_interval(text, p) for p in predicted]
    used: set[int] = set()
    score = Score(predicted=len(predicted), gold=len(gold_items))
    for g in gold_items:
        overlapping = [i for i, s in enumerate(spans) if i not in used and s is not None
                       and s[0] < g["char_end"] and g["char_start"] < s[1]]
        if not overlapping:
            continue
        pick = next((i for i in overlapping if same(predicted[i], g)), overlapping[0])
        used.add(pick)
        score.matched += 1
        score.correct += bool(same(predicted[pick], g))
    return score


def _same_time(p: Mapping, g: Mapping) -> bool:
    if g["start"] is None:
        return p.get("start") is None
    return _as_date(p.get("start")) == _as_date(g["start"]) and p.get("granularity") == g["granularity"]


def _same_entity(p: Mapping, g: Mapping) -> bool:
    return _norm_name(p.get("name", "")) == _norm_name(g["name"])


def score_times(predicted: Sequence[Mapping], gold: LabelledTurn) -> Score:
    """Predicted time mentions of one turn against its gold times."""
    return _score(predicted, gold.times, gold.text, _same_time)


def score_entities(predicted: Sequence[Mapping], gold: LabelledTurn) -> Score:
    """Predicted entity mentions of one turn against its gold entities."""
    return _score(predicted, gold.entities, gold.text, _same_entity)


def score(pairs: Iterable[tuple[Sequence[Mapping], Sequence[Mapping], LabelledTurn]]) -> tuple[Score, Score]:
    """(times, entities) Scores pooled over (predicted_times, predicted_entities, gold) triples."""
    times, entities = Score(), Score()
    for p_times, p_entities, gold in pairs:
        times += score_times(p_times, gold)
        entities += score_entities(p_entities, gold)
    return times, entities
