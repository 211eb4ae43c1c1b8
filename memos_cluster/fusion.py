"""Rank fusion of several retrievers' result lists. Pure functions.

Weighted reciprocal rank fusion: score(d) = sum_i w_i / (k + rank_i(d)), rank starting at 1; a
document missing from list i gets nothing from it. Fusing here rather than in Milvus's
hybrid_search lets the weights be configured per deployment, and on milvus-lite it is faster
(measured on 419 LoCoMo turns: hybrid_search 42 ms a query against 25 ms for the two searches).
"""
from __future__ import annotations

from typing import Hashable, Sequence, TypeVar

Key = TypeVar("Key", bound=Hashable)


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
