"""The entity graph in hybrid search. Pure functions over a cube's graph (graph.py).

A query that names entities of the cube ("What activities does Melanie partake in?") raises the
candidates that mention them, by `search.entity_boost` times the share of the query's entities a
candidate mentions. A speaker's own turns mention the speaker (the reader resolves "I"), so a
question about a person reaches what that person said, which rarely shares the question's words
("Melanie: I signed up for pottery classes"). Only named entities count (people, places,
organisations, works, names): a concept the query names ("pottery") is already BM25's.
Who calls it: Searcher._hybrid (each cube's graph alone) and the cross-validation.
"""
from __future__ import annotations

from typing import Hashable, Iterable, Sequence, TypeVar

from memos_cluster.tiers.plaintext.graph import CubeGraph, normalise

Key = TypeVar("Key", bound=Hashable)
MAX_WORDS = 4  # the longest name matched in a query, in words
UNNAMED = ("CONCEPT", "CANDIDATE")


def query_entities(graph: CubeGraph, query: str) -> frozenset[str]:
    """The named entities of the cube a query names: its word n-grams that are an entity's
    name or alias, or the start of one person's name ("Mel")."""
    words = normalise(query).split()
    found: set[str] = set()
    for n in range(MAX_WORDS, 0, -1):
        for i in range(len(words) - n + 1):
            key = " ".join(words[i:i + n])
            entity_id = graph.lookup(key)
            if entity_id is None and n == 1:
                entity_id = graph.match_short_name(key)
            if entity_id is not None and graph.entities[entity_id].label not in UNNAMED:
                found.add(entity_id)
    return frozenset(found)


def entity_shares(wanted: frozenset[str], mentioned: dict[Key, Iterable[str]]
                  ) -> dict[Key, float]:
    """Each candidate's share (0..1) of the query's entities it mentions."""
    if not wanted:
        return {}
    return {key: len(wanted.intersection(ids)) / len(wanted) for key, ids in mentioned.items()}


def boost_entities(fused: Sequence[tuple[Key, float]], shares: dict[Key, float],
                   boost: float) -> list[tuple[Key, float]]:
    """Add boost x share to each candidate; best first, ties in the fused order."""
    if boost <= 0 or not any(shares.values()):
        return list(fused)
    boosted = [(key, score + boost * shares.get(key, 0.0)) for key, score in fused]
    return sorted(boosted, key=lambda pair: pair[1], reverse=True)
