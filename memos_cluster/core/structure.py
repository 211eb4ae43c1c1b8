"""What a memory reader finds in a memory (dates, entities, relations) and the entity graph a
cube builds from it. Plain dataclasses: no spaCy, no Milvus, no protobuf.

Who makes them: a `MemoryReader` (memos_cluster/reader/) on the plaintext tier's write path
gives a `MemoryStructure` per memory; the tier's entity graph (tiers/plaintext/graph.py) gives
the `Entity`, `EntityPage` and `EntityDetail` views that ListEntities and GetEntity return.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional

DAY_MS = 86_400_000
GRANULARITIES = ("day", "weekend", "week", "month", "year")


@dataclass(frozen=True)
class TimeMention:
    """A time expression in a memory's text, resolved against the memory's event time."""

    span: str  # the phrase as written ("yesterday", "the Sunday before 25 May 2023")
    start_char: int  # offsets in the memory's text
    end_char: int
    start_ms: Optional[int] = None  # the period's first instant, 00:00 UTC, epoch ms; None: unresolved
    end_ms: Optional[int] = None  # the period's end, exclusive, epoch ms
    granularity: str = ""  # one of GRANULARITIES, "" when unresolved

    @property
    def is_resolved(self) -> bool:
        return self.start_ms is not None and self.end_ms is not None

    def label(self) -> str:
        """The resolved period as a person writes it: "7 May 2023", "the week of 1 May 2023",
        "May 2023", "2023"; "" when unresolved. The prompt shows it beside the phrase."""
        if not self.is_resolved:
            return ""
        start = datetime.fromtimestamp(self.start_ms / 1000, timezone.utc)
        if self.granularity == "year":
            return f"{start.year}"
        if self.granularity == "month":
            return f"{start:%B} {start.year}"
        day = f"{start.day} {start:%B} {start.year}"
        if self.granularity == "week":
            return f"the week of {day}"
        if self.granularity == "weekend":
            return f"the weekend of {day}"
        return day


@dataclass(frozen=True)
class EntityMention:
    """A person, place, organisation or thing a memory mentions."""

    span: str  # as written ("I" resolved to the speaker keeps "I" here)
    start_char: int
    end_char: int
    name: str  # the reader's canonical name ("Caroline", "LGBTQ support group")
    label: str  # spaCy's NER label (PERSON, ORG, GPE, ...) or CONCEPT for a noun phrase
    entity_id: str = ""  # the cube's entity it resolved to; set by the graph when stored


@dataclass(frozen=True)
class Relation:
    """A (subject, predicate, object) triple from the dependency parse, names canonical."""

    subject: str
    predicate: str  # the verb's lemma with its particle or preposition ("go to")
    object: str


@dataclass(frozen=True)
class MemoryStructure:
    """Everything a reader found in one memory; empty when it found nothing or none ran."""

    times: tuple[TimeMention, ...] = ()
    entities: tuple[EntityMention, ...] = ()
    relations: tuple[Relation, ...] = ()
    reader: str = ""  # the reader that made it ("spacy:en_core_web_sm-3.8.0"); "" none ran

    @property
    def is_empty(self) -> bool:
        return not (self.times or self.entities or self.relations)

    def resolved_times(self) -> tuple[TimeMention, ...]:
        return tuple(t for t in self.times if t.is_resolved)

    def annotate(self, text: str) -> str:
        """`text` with each resolved date written beside its phrase ("yesterday [7 May 2023]"),
        so a small model can copy the date. Who calls it: tier_types.block_memory, for every
        prompt a memory goes into. Offsets must be this text's (the reader's own)."""
        out, last = [], 0
        for t in sorted(self.resolved_times(), key=lambda t: t.start_char):
            label = t.label()
            if t.start_char < last or t.end_char > len(text) or \
                    text[t.start_char:t.end_char] != t.span:
                continue  # not this text's offsets (an edited text): leave it as written
            if label.lower() in t.span.lower():
                continue  # "7 May 2023" says its date already
            out.append(text[last:t.end_char] + f" [{label}]")
            last = t.end_char
        return "".join(out) + text[last:]

    def to_json(self) -> dict[str, Any]:
        """The stored form (a Milvus JSON field, an archive column): short keys, lists."""
        if self.is_empty and not self.reader:
            return {}
        return {"r": self.reader,
                "t": [[t.span, t.start_char, t.end_char, t.start_ms, t.end_ms, t.granularity]
                      for t in self.times],
                "e": [[e.span, e.start_char, e.end_char, e.name, e.label, e.entity_id]
                      for e in self.entities],
                "rel": [[r.subject, r.predicate, r.object] for r in self.relations]}

    @classmethod
    def from_json(cls, data: Optional[dict[str, Any]]) -> "MemoryStructure":
        if not data:
            return EMPTY_STRUCTURE
        return cls(times=tuple(TimeMention(*t) for t in data.get("t", ())),
                   entities=tuple(EntityMention(*e) for e in data.get("e", ())),
                   relations=tuple(Relation(*r) for r in data.get("rel", ())),
                   reader=str(data.get("r", "")))


EMPTY_STRUCTURE = MemoryStructure()
# A memory stored before the reader ran (reader.mode deferred: tiers/plaintext/deferred.py).
PENDING_READER = "pending"
PENDING_STRUCTURE = MemoryStructure(reader=PENDING_READER)


def stored_periods(data: Optional[dict[str, Any]]) -> tuple[tuple[int, int], ...]:
    """The resolved periods ([start, end) epoch ms) of a stored structure (`to_json`'s form),
    read without building the dataclasses: a search does it for every candidate."""
    return tuple((t[3], t[4]) for t in (data or {}).get("t", ())
                 if t[3] is not None and t[4] is not None)


# ---- the entity graph's views (ListEntities, GetEntity) -------------------------------------------
@dataclass(frozen=True)
class Entity:
    """One entity of a cube: the mentions that resolved to one name."""

    entity_id: str  # stable within the cube
    cube_id: str
    name: str  # canonical name (the first mention's)
    label: str  # PERSON, ORG, GPE, ..., CONCEPT
    aliases: tuple[str, ...] = ()  # other names that resolved to it
    num_mentions: int = 0  # current memories that mention it


@dataclass(frozen=True)
class EntityQuery:
    """One page of a cube's entities, most mentioned first (ListEntities)."""

    cube_id: str
    name_contains: str = ""  # case-insensitive, over the name and aliases; "" matches all
    label: str = ""  # "" any
    page_size: int = 0  # 0: the server's default (50)
    offset: int = 0


@dataclass(frozen=True)
class EntityPage:
    entities: tuple[Entity, ...]
    next_offset: Optional[int]  # None on the last page
    total: int  # entities matching, over every page


@dataclass(frozen=True)
class EntityRelation:
    """A relation of a memory that names the entity as subject or object."""

    subject: str
    predicate: str
    object: str
    memory_id: str
    time_ms: Optional[int] = None  # the memory's event time, epoch ms


@dataclass(frozen=True)
class EntityNeighbour:
    entity: Entity
    num_shared: int  # current memories that mention both


@dataclass(frozen=True)
class EntityDetail:
    """GetEntity: an entity, the memories that mention it, its relations and neighbours."""

    entity: Entity
    memories: tuple[Any, ...] = ()  # MemoryItems mentioning it, newest event first, at most 50
    relations: tuple[EntityRelation, ...] = ()
    neighbours: tuple[EntityNeighbour, ...] = field(default_factory=tuple)  # most shared first


@dataclass(frozen=True)
class ReindexStep:
    """One batch of a reindex (the reader run again over stored memories, in id order)."""

    num_read: int  # memories read in this batch
    num_changed: int  # of them, memories whose structure changed and were rewritten
    next_after: Optional[str]  # the cursor for the next batch (last id read); None: done
    total: int  # the cube's current memories
    # The memories rewritten: their prompt text may have changed (resolved dates shown beside
    # their phrases), so KV caches built on them are dropped (actors/reindex.py).
    changed_ids: tuple[str, ...] = ()
