"""Fusion of several retrievers' result lists. Pure functions.

- `minmax_fuse` (the default, `search.fusion: score`): each list's scores are rescaled to 0..1
  (best 1, worst candidate 0) and summed with weights; a document missing from a list gets 0 from
  it. It keeps how far ahead a strong BM25 match is, which rank fusion throws away.
- `rrf_fuse` (`search.fusion: rrf`): weighted reciprocal rank fusion,
  score(d) = sum_i w_i / (k + rank_i(d)), rank starting at 1.
- `fuse_hybrid`: one of those, then the neighbour spread and the time boosts (hybrid search).
- `explain_hybrid`: each candidate's parts of that score (Search with `explain`).
Measured on LoCoMo dev (997 questions, BM25 weight 0.7, dense 0.3, 50 candidates each):
recall@5/@10 61.1/70.4 with score fusion against 57.9/67.9 with RRF (k 60).
Fusing here rather than in Milvus's hybrid_search lets the method and weights be configured, and
on milvus-lite it is faster (419 turns: hybrid_search 42 ms a query, the two searches 25 ms).
"""
from __future__ import annotations

from typing import Callable, Hashable, Sequence, TypeVar

from memos_cluster.core.types import ScoreParts
from memos_cluster.tiers.plaintext.dates import TimeMatches, boost_times
from memos_cluster.tiers.plaintext.entity_rank import boost_entities

Key = TypeVar("Key", bound=Hashable)


def minmax_fuse(scored: Sequence[Sequence[tuple[Key, float]]],
                weights: Sequence[float] | None = None) -> list[tuple[Key, float]]:
    """scored: per retriever, (key, score) pairs with higher scores better. Returns fused
    (key, score) pairs, best first; ties keep first-seen order."""
    if weights is None:
        weights = [1.0] * len(scored)
    if len(weights) != len(scored):
        raise ValueError(f"{len(weights)} weights for {len(scored)} result lists")
    fused: dict[Key, float] = {}
    for weight, pairs in zip(weights, scored):
        if not pairs:
            continue
        values = [score for _, score in pairs]
        low, span = min(values), max(values) - min(values)
        for key, score in pairs:
            share = (score - low) / span if span > 0 else 1.0
            fused[key] = fused.get(key, 0.0) + weight * share
    return sorted(fused.items(), key=lambda pair: pair[1], reverse=True)


def rrf_fuse(ranked: Sequence[Sequence[Key]], k: int = 60,
             weights: Sequence[float] | None = None) -> list[tuple[Key, float]]:
    """Fused (key, score) pairs, best first; ties keep first-seen order."""
    if weights is None:
        weights = [1.0] * len(ranked)
    if len(weights) != len(ranked):
        raise ValueError(f"{len(weights)} weights for {len(ranked)} result lists")
    if k < 0:
        raise ValueError("k must be >= 0")
    scores: dict[Key, float] = {}
    for weight, keys in zip(weights, ranked):
        for rank, key in enumerate(keys, start=1):
            scores[key] = scores.get(key, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda pair: pair[1], reverse=True)


def spread_to_neighbours(fused: Sequence[tuple[Key, float]], predecessor: dict[Key, Key],
                         share: float) -> list[tuple[Key, float]]:
    """Each candidate also gets `share` of its better neighbour's fused score (its predecessor
    or its successor among the candidates; `predecessor` maps a key to the key before it in its
    conversation). Many answers span a turn and its reply, and a reply ("Yes, last May!") rarely
    shares a word with the question. Only candidates are re-scored: a neighbour that no
    retriever returned stays out, which cross-validated no worse than adding it. Returns
    (key, score) pairs best first; ties keep the fused order.
    LoCoMo dev, cross-validated (bench locomo --cross-validate): see docs/retrieval.md."""
    if share <= 0:
        return list(fused)
    scores = dict(fused)
    best_neighbour: dict[Key, float] = {}
    for key, before in predecessor.items():
        if key in scores and before in scores:
            best_neighbour[key] = max(best_neighbour.get(key, 0.0), scores[before])
            best_neighbour[before] = max(best_neighbour.get(before, 0.0), scores[key])
    spread = [(key, score + share * best_neighbour.get(key, 0.0)) for key, score in fused]
    return sorted(spread, key=lambda pair: pair[1], reverse=True)


def fuse_hybrid(scored: Sequence[Sequence[tuple[Key, float]]], weights: Sequence[float],
                *, method: str = "score", rrf_k: int = 60, neighbour_share: float = 0.0,
                predecessor: Callable[[], dict[Key, Key]] = dict, date_boost: float = 0.0,
                when_boost: float = 0.0, times: Callable[[], TimeMatches] = TimeMatches,
                entity_boost: float = 0.0,
                entity_shares: Callable[[], dict[Key, float]] = dict,
                ) -> list[tuple[Key, float]]:
    """Hybrid mode's whole ranking: `fuse_base`, then `boost`. Who calls it:
    Searcher._hybrid; the cross-validation (bench/crossval.py) calls the two halves, so
    the bench scores what the engine does."""
    fused = fuse_base(scored, weights, method=method, rrf_k=rrf_k,
                      neighbour_share=neighbour_share, predecessor=predecessor)
    return boost(fused, date_boost=date_boost, when_boost=when_boost, times=times,
                 entity_boost=entity_boost, entity_shares=entity_shares)


def fuse_base(scored: Sequence[Sequence[tuple[Key, float]]], weights: Sequence[float], *,
              method: str = "score", rrf_k: int = 60, neighbour_share: float = 0.0,
              predecessor: Callable[[], dict[Key, Key]] = dict) -> list[tuple[Key, float]]:
    """Fuse the retrievers' (key, score) lists, then the neighbour spread (`predecessor` is
    called only when the spread is on)."""
    if method == "rrf":
        fused = rrf_fuse([[key for key, _ in pairs] for pairs in scored], k=rrf_k,
                         weights=weights)
    else:
        fused = minmax_fuse(scored, weights=weights)
    if neighbour_share > 0:
        fused = spread_to_neighbours(fused, predecessor(), neighbour_share)
    return fused


def boost(fused: list[tuple[Key, float]], *, date_boost: float = 0.0, when_boost: float = 0.0,
          times: Callable[[], TimeMatches] = TimeMatches, entity_boost: float = 0.0,
          entity_shares: Callable[[], dict[Key, float]] = dict) -> list[tuple[Key, float]]:
    """The time boosts (dates.py: `times()` says which candidates a time the query names
    holds, and which hold a date when the query asks when), then the entity boost
    (entity_rank.py: `entity_shares()` gives each candidate's share of the entities the query
    names). Each callable is called only when its boost is on."""
    if date_boost > 0 or when_boost > 0:
        fused = boost_times(fused, times(), date_boost, when_boost)
    if entity_boost > 0:
        fused = boost_entities(fused, entity_shares(), entity_boost)
    return fused


def explain_hybrid(dense: Sequence[tuple[Key, float]], sparse: Sequence[tuple[Key, float]],
                   weights: Sequence[float], *, method: str = "score", rrf_k: int = 60,
                   neighbour_share: float = 0.0,
                   predecessor: Callable[[], dict[Key, Key]] = dict, date_boost: float = 0.0,
                   when_boost: float = 0.0, times: Callable[[], TimeMatches] = TimeMatches,
                   entity_boost: float = 0.0,
                   entity_shares: Callable[[], dict[Key, float]] = dict,
                   ) -> dict[Key, ScoreParts]:
    """Each candidate's parts of `fuse_hybrid`'s score for the same arguments (dense and BM25
    lists best first, weights in that order): fused + neighbour + date + when + entity is
    its score. Who calls it: Searcher._hybrid, for a query with `explain`; it runs the same
    steps again, so the ranking itself pays nothing when nobody asks."""
    base = fuse_base([dense, sparse], weights, method=method, rrf_k=rrf_k)
    fused = dict(base)
    spread = dict(spread_to_neighbours(base, predecessor(), neighbour_share)
                  if neighbour_share > 0 else base)
    matches = times() if date_boost > 0 or when_boost > 0 else TimeMatches()
    shares = entity_shares() if entity_boost > 0 else {}
    dense_at = {key: (rank, score) for rank, (key, score) in enumerate(dense, start=1)}
    sparse_at = {key: (rank, score) for rank, (key, score) in enumerate(sparse, start=1)}
    return {key: ScoreParts(
        dense_rank=dense_at.get(key, (0, 0.0))[0], dense_score=dense_at.get(key, (0, 0.0))[1],
        bm25_rank=sparse_at.get(key, (0, 0.0))[0], bm25_score=sparse_at.get(key, (0, 0.0))[1],
        fused=score, neighbour=spread[key] - score,
        date=date_boost if key in matches.in_time else 0.0,
        when=when_boost if key in matches.dated else 0.0,
        entity=entity_boost * shares.get(key, 0.0)) for key, score in fused.items()}
