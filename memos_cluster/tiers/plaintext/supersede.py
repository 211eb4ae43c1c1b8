"""Contradiction, as policy: which single-valued facts a memory states, and which memories a new
one supersedes. Pure: no Milvus, no spaCy; the reader's relations are its input.

Who uses it: `Lifecycle` (lifecycle.py) on every add and update of the plaintext tier, under the
shard's write lock, with the cube's active memories that share a fact key with the new ones.
`SupersedePolicy` is the seam an LLM judge can take over later: it sees the same candidates and
returns the same decisions, which the gateway writes to the audit log.

The rule (`RuleSupersede`): for each (subject, slot), the memory whose fact began latest holds it
(valid_from, then recorded time); every earlier one with another value is superseded by the next
later one with a different value, its `valid_to` that one's valid_from. Same values never
supersede each other ("I live in Berlin" twice is not a contradiction).
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Mapping, Optional, Protocol, Sequence

from memos_cluster.core.config import LifecycleConfig
from memos_cluster.core.lifecycle import Fact, Supersession
from memos_cluster.core.structure import MemoryStructure

NO_TIME = -(2 ** 62)  # orders a fact without a valid_from before every dated one


@dataclass(frozen=True)
class SlotRule:
    """One single-valued slot: the predicates that state it, and the labels its value needs."""

    slot: str
    predicates: Mapping[str, Optional[str]]  # "live in" or "be single" -> fixed value or None
    labels: frozenset[str]  # spaCy labels the value's entity must have; empty: any


@dataclass(frozen=True)
class FactReader:
    """Facts from a memory's structure, by the configured slots (lifecycle.slots)."""

    rules: tuple[SlotRule, ...]
    possessive: tuple[str, ...]  # "favourite *", "name", ...
    slot_words: Mapping[str, tuple[str, ...]]  # slot -> words BM25 also finds it by

    @classmethod
    def from_config(cls, config: LifecycleConfig) -> "FactReader":
        rules = []
        for slot, spec in sorted(config.slots.items()):
            predicates: dict[str, Optional[str]] = {}
            for entry in _split(spec):
                phrase, _, value = entry.partition("=")
                predicates[" ".join(phrase.split())] = value.strip() or None
            rules.append(SlotRule(slot, predicates,
                                  frozenset(_split(config.slot_labels.get(slot, "")))))
        return cls(tuple(rules), tuple(_split(config.possessive_slots)),
                   {slot: tuple(_split(words)) for slot, words in config.slot_words.items()})

    def words(self, facts: Sequence[Fact]) -> str:
        """The words (lifecycle.slot_words) of these facts' slots, once each, for BM25."""
        return " ".join(dict.fromkeys(w for f in facts for w in self.slot_words.get(f.slot, ())))

    def facts(self, structure: MemoryStructure) -> tuple[Fact, ...]:
        """Each (subject, slot) the memory states once; a slot it gives two values is left
        out (it is not a single claim, e.g. "we dated Tom and Sam")."""
        labels = {e.name: e.label for e in structure.entities}
        found: dict[tuple[str, str], set[str]] = {}
        for relation in structure.relations:
            for rule in self.rules:
                value, fixed = _match(rule, relation.predicate, relation.object)
                if value is None or not (fixed or _labelled(
                        rule.labels, labels.get(relation.object, "CONCEPT"))):
                    continue
                found.setdefault((relation.subject.lower(), rule.slot), set()).add(value)
        owners = {r.object: r.subject for r in structure.relations if r.predicate == "has"}
        for relation in structure.relations:
            owner = owners.get(relation.subject)
            if relation.predicate == "be" and owner and self._is_possessive(relation.subject):
                slot = relation.subject.lower().replace("favorite", "favourite")
                found.setdefault((owner.lower(), slot), set()).add(relation.object.lower())
        return tuple(Fact(subject, slot, next(iter(values)))
                     for (subject, slot), values in sorted(found.items()) if len(values) == 1)

    def _is_possessive(self, noun: str) -> bool:
        return any(fnmatch.fnmatchcase(noun.lower(), p) for p in self.possessive)


def _split(spec: str) -> list[str]:
    """A config list ("live in, move to") as its entries."""
    return [entry.strip() for entry in spec.split(",") if entry.strip()]


def _match(rule: SlotRule, predicate: str, obj: str) -> tuple[Optional[str], bool]:
    """(the slot's value, whether the rule fixed it) for a relation, or (None, False)."""
    for phrase in (predicate, f"{predicate} {obj}".lower()):
        if phrase in rule.predicates:
            fixed = rule.predicates[phrase]
            return (fixed or obj).lower(), fixed is not None
    return None, False


def _labelled(wanted: frozenset[str], label: str) -> bool:
    """NAMED: any named entity (spaCy's small model often mislabels names: "Spotify" GPE,
    "Grace" ORG), not a noun phrase ("a new flat")."""
    return not wanted or label in wanted or ("NAMED" in wanted and label != "CONCEPT")


@dataclass(frozen=True)
class Candidate:
    """A memory as the policy sees it: active ones stored, and the ones being written."""

    memory_id: str
    facts: tuple[Fact, ...]
    valid_from_ms: Optional[int]
    recorded_ms: int  # updated_at: the later of two same-time facts wins
    is_new: bool = False


class SupersedePolicy(Protocol):
    name: str

    def decide(self, cube_id: str, candidates: Sequence[Candidate]) -> list[Supersession]:
        """The supersessions among `candidates` (the cube's active memories sharing a fact
        key with the new ones, and the new ones). Each old id at most once."""
        ...


class RuleSupersede:
    """The deterministic rule (module docstring)."""

    name = "rule"

    def decide(self, cube_id: str, candidates: Sequence[Candidate]) -> list[Supersession]:
        by_key: dict[str, list[tuple[Candidate, Fact]]] = {}
        for candidate in candidates:
            for fact in candidate.facts:
                by_key.setdefault(fact.key, []).append((candidate, fact))
        decided: dict[str, Supersession] = {}
        for key in sorted(by_key):
            holders = sorted(by_key[key], key=lambda cf: (
                _time(cf[0].valid_from_ms), cf[0].recorded_ms, cf[0].is_new, cf[0].memory_id))
            if not any(c.is_new for c, _ in holders):
                continue  # stored facts were settled when they were written
            for i, (old, fact) in enumerate(holders):
                later = next(((c, f) for c, f in holders[i + 1:]
                              if f.value != fact.value and c.memory_id != old.memory_id), None)
                if later is None or old.memory_id in decided:
                    continue
                new, new_fact = later
                decided[old.memory_id] = Supersession(
                    cube_id, old.memory_id, new.memory_id, new.valid_from_ms,
                    f"{fact.subject} {fact.slot}: {fact.value} -> {new_fact.value} (rule)")
        return [decided[k] for k in sorted(decided)]


class NoSupersede:
    """lifecycle.supersede: off."""

    name = "off"

    def decide(self, cube_id: str, candidates: Sequence[Candidate]) -> list[Supersession]:
        return []


def make_policy(config: LifecycleConfig) -> SupersedePolicy:
    return RuleSupersede() if config.supersede == "rule" else NoSupersede()


def _time(value: Optional[int]) -> int:
    return NO_TIME if value is None else value


def valid_from_of(structure: MemoryStructure, explicit: Optional[int],
                  event_time_ms: Optional[int], recorded_ms: int) -> Optional[int]:
    """When a memory's fact began to hold: the caller's, else the earliest date the text
    names that is not after its event time ("I moved to Berlin last month"), else the event
    time, else when it was recorded. Who calls it: Lifecycle, for every memory written."""
    if explicit is not None:
        return explicit
    reference = event_time_ms if event_time_ms is not None else recorded_ms
    starts = [t.start_ms for t in structure.resolved_times() if t.start_ms <= reference]
    return min(starts) if starts else reference
