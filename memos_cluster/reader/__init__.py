"""Reading memories: resolved dates, entities and relations (docs/structure.md).

`make_reader(config)` gives the configured reader: the spaCy reader (`reader.backend: spacy`,
the default; in a process of its own with `reader.own_process`, the default: process.py) or
none (`none`). Who calls it: the plaintext tier, once per shard.
"""
from __future__ import annotations

from memos_cluster.core.config import ReaderConfig
from memos_cluster.reader.base import MemoryReader, NullReader, ReaderInput
from memos_cluster.reader.spacy_reader import SpacyReader

__all__ = ["MemoryReader", "NullReader", "ReaderInput", "SpacyReader", "make_reader"]


def make_reader(config: ReaderConfig) -> MemoryReader:
    if config.backend == "none":
        return NullReader()
    if config.own_process:
        from memos_cluster.reader.process import ProcessReader

        return ProcessReader(max_chars=config.max_parse_chars)
    return SpacyReader(max_chars=config.max_parse_chars)
