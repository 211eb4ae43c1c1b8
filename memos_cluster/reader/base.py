"""The memory reader interface: what a reader is given and what it returns.

A reader turns a memory's text into a `MemoryStructure` (core/structure.py): resolved time
expressions, entity mentions and relation triples. It is deterministic, has no side effect and
never raises for a text it cannot make sense of: it returns less structure instead. A second
reader (an LLM reader, say) implements the same `read_many`.

Who calls it: the plaintext tier's write path (tiers/plaintext/tier.py: add, update, reindex),
in batches, before the write lock is taken.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Protocol, Sequence

from memos_cluster.core.structure import EMPTY_STRUCTURE, MemoryStructure

# "Caroline: I went ..." -- a speaker prefix as conversation ingest writes it (data/locomo.py).
SPEAKER_PREFIX = re.compile(r"^\s*([A-Z][\w.'-]*(?: [A-Z][\w.'-]*){0,2}):\s+")


@dataclass(frozen=True)
class ReaderInput:
    text: str
    event_time_ms: Optional[int] = None  # what relative dates are relative to; None: unresolved
    speaker: str = ""  # who says "I"; "" to take it from a "Name: " prefix of the text


class MemoryReader(Protocol):
    name: str  # recorded in each structure it makes

    def read_many(self, inputs: Sequence[ReaderInput]) -> list[MemoryStructure]:
        """One structure per input, in order."""
        ...


class NullReader:
    """The reader that reads nothing (`reader.backend: none`)."""

    name = ""

    def read_many(self, inputs: Sequence[ReaderInput]) -> list[MemoryStructure]:
        return [EMPTY_STRUCTURE for _ in inputs]


def split_speaker(item: ReaderInput) -> tuple[str, int]:
    """(speaker, offset of the body in the text): the given speaker, or the text's "Name: "
    prefix (then the body starts after it)."""
    match = SPEAKER_PREFIX.match(item.text)
    if match:
        return item.speaker or match.group(1), match.end()
    return item.speaker, 0
