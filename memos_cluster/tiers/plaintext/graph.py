"""A cube's entity graph: entities, which memories mention them, and the memories' relations.
Bookkeeping only (no Milvus, no tensors): the rows it is built from live in Milvus (entity rows
in the shard's entity collection, mentions and relations in each memory's `structure`), so the
graph is rebuilt from them after a restart (structure.py loads it) and kept current on writes.

Entity resolution, cheapest first (`resolve`): the normalised exact name or alias (any label:
"Caroline" tagged PERSON by spaCy, NAME by the noun-phrase rule and the "I" of her turns are one
entity), then a fuzzy name match (difflib ratio >= FUZZY_RATIO, names of 5+ characters), then
the cosine of name embeddings (>= EMBED_COSINE, same label), which the caller computes only for
names the first two left unmatched.

Who uses it: `StructureIndex` (structure.py), under its lock.
"""
from __future__ import annotations

import bisect
import difflib
import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Optional, Sequence

from memos_cluster.core.structure import (
    Entity, EntityNeighbour, EntityPage, EntityQuery, EntityRelation,
    MemoryStructure)

CANDIDATE = "CANDIDATE"  # the reader's label for a word that is a name only if already known
FUZZY_RATIO = 0.9  # difflib similarity for two names to be one entity
FUZZY_MIN_CHARS = 5  # shorter names match exactly only ("Mel" is not "Meg")
FUZZY_LENGTHS = 3  # a fuzzy match differs in length by at most this many characters
EMBED_COSINE = 0.9  # name-embedding cosine for two names of one label to be one entity
MAX_NEIGHBOURS = 24  # neighbours GetEntity returns (the console draws them)
MAX_RELATIONS = 100


def normalise(name: str) -> str:
    """The key names are compared by: lower case, no leading article, no possessive, words
    of letters and digits only."""
    key = name.lower().strip()
    key = re.sub(r"^(?:the|a|an)\s+", "", key)
    key = re.sub(r"'s$", "", key)
    return " ".join(re.findall(r"[^\W_]+", key))


def _place(graph: CubeGraph, name: str, label: str, embedded: Optional[str]) -> Optional[str]:
    """Where an unmatched name goes: an entity named so meanwhile, a person it shortens or
    completes, the entity its embedding matched, or a new one (not for a CANDIDATE). Returns
    the entity changed or created, None when nothing was."""
    if graph.match(name) is not None:
        return None  # created earlier in this batch
    person = label in ("PERSON", "NAME", CANDIDATE)
    short = graph.match_short_name(name) if person else None
    full = graph.match_full_name(name) if person and short is None else None
    if short is not None:
        graph.add_alias(short, name)
        return short
    if full is not None:
        graph.rename(full, name)
        return full
    if label == CANDIDATE:
        return None  # a capitalised word opening a sentence names no new entity
    if embedded is not None and embedded in graph.entities:
        graph.add_alias(embedded, name)
        return embedded
    entity_id = entity_id_for(graph.cube_id, name)
    graph.add_entity(EntityRecord(entity_id, name, label))
    return entity_id


def entity_id_for(cube_id: str, name: str) -> str:
    """A stable, URL-safe id: the name's slug and a short hash of (cube, normalised name)."""
    slug = "-".join(re.findall(r"[a-z0-9]+", normalise(name)))[:40] or "entity"
    digest = hashlib.sha1(f"{cube_id}\0{normalise(name)}".encode()).hexdigest()[:6]
    return f"{slug}-{digest}"


@dataclass
class EntityRecord:
    """What is stored of an entity (its row in the entity collection)."""

    entity_id: str
    name: str
    label: str
    aliases: list[str] = field(default_factory=list)

    def keys(self) -> list[str]:
        return [normalise(self.name), *(normalise(a) for a in self.aliases)]


@dataclass
class _MemoryFacts:
    entity_ids: frozenset[str]
    relations: tuple[tuple[str, str, str, str, str], ...]  # subj id, subj, pred, obj id, obj
    event_time_ms: Optional[int]


class CubeGraph:
    def __init__(self, cube_id: str):
        self.cube_id = cube_id
        self.entities: dict[str, EntityRecord] = {}
        self._by_key: dict[str, str] = {}  # normalised name or alias -> entity id
        # The same keys by (first character, length): the fuzzy match compares a name only
        # with keys of its first character and a length within FUZZY_LENGTHS, and scanning
        # every key for them held the GIL for half of an add at a few thousand entities.
        self._by_start: dict[tuple[str, int], list[str]] = {}
        self._memories: dict[str, _MemoryFacts] = {}
        self._mentioned_by: dict[str, set[str]] = {}  # entity id -> memory ids
        self._people: dict[str, str] = {}  # PERSON entity id -> normalised name (short names)
        # The same pairs as (name, id), sorted: a short name's matches are one bisect away
        # (every search asks, for each query word; a cube may know thousands of people).
        self._people_by_name: list[tuple[str, str]] = []

    # ---- entities ------------------------------------------------------------------------
    def add_entity(self, record: EntityRecord) -> None:
        self.entities[record.entity_id] = record
        self._index_person(record)
        for key in record.keys():
            self._index_key(key, record.entity_id)

    def add_alias(self, entity_id: str, alias: str) -> EntityRecord:
        record = self.entities[entity_id]
        if normalise(alias) not in record.keys():
            record.aliases.append(alias)
        self._index_key(normalise(alias), entity_id)
        return record

    def match(self, name: str) -> Optional[str]:
        """An entity by exact normalised name, else by fuzzy name; None when neither."""
        key = normalise(name)
        if not key:
            return None
        if key in self._by_key:
            return self._by_key[key]
        if len(key) < FUZZY_MIN_CHARS:
            return None
        similar = [k for length in range(len(key) - FUZZY_LENGTHS, len(key) + FUZZY_LENGTHS + 1)
                   for k in self._by_start.get((key[:1], length), ())]
        close = difflib.get_close_matches(key, similar, n=1, cutoff=FUZZY_RATIO)
        return self._by_key[close[0]] if close else None

    def _index_key(self, key: str, entity_id: str) -> None:
        """Make `key` find the entity, unless it already finds another (the first wins)."""
        if key not in self._by_key:
            self._by_key[key] = entity_id
            self._by_start.setdefault((key[:1], len(key)), []).append(key)

    def lookup(self, key: str) -> Optional[str]:
        """An entity by an already normalised name or alias."""
        return self._by_key.get(key)

    def match_short_name(self, name: str) -> Optional[str]:
        """A person called by the start of their name ("Mel" for Melanie): the one PERSON
        entity whose name starts with it (3+ characters); None when none or several do."""
        key = normalise(name)
        if len(key) < 3 or " " in key:
            return None
        found: set[str] = set()
        start = bisect.bisect_left(self._people_by_name, (key, ""))
        for full, entity_id in self._people_by_name[start:]:
            if not full.startswith(key):
                break
            if full != key:
                found.add(entity_id)
                if len(found) > 1:
                    return None
        return found.pop() if found else None

    def match_full_name(self, name: str) -> Optional[str]:
        """The person a longer name completes, when the short one came first ("Melanie" after
        "Hey Mel!"): the one PERSON entity whose name starts this one; None when none or
        several do."""
        key = normalise(name)
        found = {entity_id for entity_id, short in self._people.items()
                 if len(short) >= 3 and " " not in short and key.startswith(short)
                 and key != short}
        return found.pop() if len(found) == 1 else None

    def rename(self, entity_id: str, name: str) -> None:
        """Make `name` the entity's name, its old name an alias (the longer name wins)."""
        record = self.entities[entity_id]
        if normalise(name) != normalise(record.name):
            record.aliases = [a for a in record.aliases if normalise(a) != normalise(name)]
            record.aliases.append(record.name)
            record.name = name
        self._index_key(normalise(name), entity_id)
        self._index_person(record)

    def set_label(self, entity_id: str, label: str) -> None:
        record = self.entities[entity_id]
        record.label = label
        self._index_person(record)

    def _index_person(self, record: EntityRecord) -> None:
        if record.label == "PERSON":
            old = self._people.get(record.entity_id)
            if old is not None:
                self._people_by_name.remove((old, record.entity_id))
            self._people[record.entity_id] = normalise(record.name)
            bisect.insort(self._people_by_name, (self._people[record.entity_id],
                                                 record.entity_id))

    def find(self, ref: str) -> Optional[str]:
        """An entity by id, else by name or alias (GetEntity accepts either)."""
        return ref if ref in self.entities else self._by_key.get(normalise(ref))

    # ---- memories ------------------------------------------------------------------------
    def put_memory(self, memory_id: str, structure: MemoryStructure,
                   event_time_ms: Optional[int]) -> None:
        """Record (or replace) what a memory mentions; its mentions carry entity ids."""
        self.remove_memory(memory_id)
        ids = frozenset(m.entity_id for m in structure.entities if m.entity_id in self.entities)
        by_name = {normalise(m.name): m.entity_id for m in structure.entities if m.entity_id}
        relations = tuple((by_name.get(normalise(r.subject), ""), r.subject, r.predicate,
                           by_name.get(normalise(r.object), ""), r.object)
                          for r in structure.relations)
        self._memories[memory_id] = _MemoryFacts(ids, relations, event_time_ms)
        for entity_id in ids:
            self._mentioned_by.setdefault(entity_id, set()).add(memory_id)

    def remove_memory(self, memory_id: str) -> None:
        facts = self._memories.pop(memory_id, None)
        if facts is not None:
            for entity_id in facts.entity_ids:
                self._mentioned_by.get(entity_id, set()).discard(memory_id)

    def entities_of(self, memory_id: str) -> frozenset[str]:
        facts = self._memories.get(memory_id)
        return facts.entity_ids if facts else frozenset()

    def num_mentions(self, entity_id: str) -> int:
        return len(self._mentioned_by.get(entity_id, ()))

    # ---- views ---------------------------------------------------------------------------
    def view(self, entity_id: str) -> Entity:
        r = self.entities[entity_id]
        return Entity(r.entity_id, self.cube_id, r.name, r.label, tuple(r.aliases),
                      self.num_mentions(entity_id))

    def page(self, query: EntityQuery, page_size: int) -> EntityPage:
        """ListEntities: entities with at least one current mention, most mentioned first."""
        needle = query.name_contains.lower()
        matching = [e for e in self.entities.values()
                    if self.num_mentions(e.entity_id) > 0
                    and (not query.label or e.label == query.label)
                    and (not needle or any(needle in n.lower() for n in [e.name, *e.aliases]))]
        matching.sort(key=lambda e: (-self.num_mentions(e.entity_id), e.name.lower(),
                                     e.entity_id))
        chosen = matching[query.offset:query.offset + page_size]
        end = query.offset + len(chosen)
        return EntityPage(tuple(self.view(e.entity_id) for e in chosen),
                          end if end < len(matching) else None, len(matching))

    def detail_parts(self, entity_id: str, max_memories: int
                     ) -> tuple[list[str], list[EntityRelation], list[EntityNeighbour]]:
        """GetEntity's memory ids (newest event first), relations and neighbours."""
        memory_ids = sorted(self._mentioned_by.get(entity_id, ()),
                            key=lambda m: (-(self._memories[m].event_time_ms or 0), m))
        relations, shared = [], Counter()
        for memory_id in memory_ids:
            facts = self._memories[memory_id]
            shared.update(e for e in facts.entity_ids if e != entity_id)
            for subj_id, subj, pred, obj_id, obj in facts.relations:
                if entity_id in (subj_id, obj_id) and len(relations) < MAX_RELATIONS:
                    relations.append(EntityRelation(subj, pred, obj, memory_id,
                                                    facts.event_time_ms))
        neighbours = [EntityNeighbour(self.view(e), n) for e, n in
                      sorted(shared.items(), key=lambda p: (-p[1], p[0]))[:MAX_NEIGHBOURS]]
        return memory_ids[:max_memories], relations, neighbours

    def memory_count(self) -> int:
        return len(self._memories)


def resolve_mentions(graph: CubeGraph, structures: Sequence[MemoryStructure],
                     embed_match: Any = None) -> tuple[list[MemoryStructure], set[str]]:
    """Give every mention an entity id, creating entities for new names. Returns the
    structures with ids and the ids of entities created or given a new alias or name (to
    persist). `embed_match(names_and_labels) -> list[Optional[entity id]]`: the embedding
    step for the names exact and fuzzy matching left over; None skips it."""
    changed: set[str] = set()
    pending: dict[str, tuple[str, str]] = {}  # normalised name -> (name, label) unmatched
    for structure in structures:
        for mention in structure.entities:
            key = normalise(mention.name)
            if key and key not in pending and graph.match(mention.name) is None:
                pending[key] = (mention.name, mention.label)
    matched = embed_match([p for p in pending.values() if p[1] != CANDIDATE]) \
        if embed_match and pending else []
    by_embedding = dict(zip([p for p in pending.values() if p[1] != CANDIDATE], matched))
    # In the batch's order, so a short name and its full name in one batch meet ("Hey Mel!",
    # then Melanie's first "I").
    for name, label in pending.values():
        entity_id = _place(graph, name, label, by_embedding.get((name, label)))
        if entity_id is not None:
            changed.add(entity_id)
    out = []
    for structure in structures:
        mentions = []
        for mention in structure.entities:
            entity_id = graph.match(mention.name) or ""
            record = graph.entities.get(entity_id)
            if record is not None and mention.label == "PERSON" and record.label != "PERSON":
                graph.set_label(entity_id, "PERSON")  # NER's person outranks the phrase rule
                changed.add(entity_id)
            mentions.append(replace(mention, entity_id=entity_id))
        out.append(replace(structure, entities=tuple(mentions)))
    return out, changed
