"""Search candidates' bookkeeping, pure: a conversation's order among the candidates (for the
neighbour spread), single-retriever hits, and the top_k cut with ties broken by id.
Who calls it: PlaintextTier.search."""
from __future__ import annotations

from memos_cluster.core.types import MemoryItem, ScoreParts, SearchHit


def predecessors(rows: dict[str, dict]) -> dict[str, str]:
    """pk -> the pk of the candidate just before it in its conversation: the one of the same
    cube whose text is the last line of its context (ingest puts a turn's preceding turns
    there, oldest first: data/locomo.py, the `context` of AddMemories)."""
    by_text = {(row["cube_id"], row["text"]): pk for pk, row in rows.items()}
    out = {}
    for pk, row in rows.items():
        if row["context"]:
            before = by_text.get((row["cube_id"], row["context"].rsplit("\n", 1)[-1]))
            if before is not None and before != pk:
                out[pk] = before
    return out


def single_hit(item: MemoryItem, score: float, rank: int, explain: bool,
               retriever: str) -> SearchHit:
    """A dense-only or BM25-only ("dense" or "bm25") hit; explained, with its one
    retriever's 1-based rank and score."""
    parts = None
    if explain and retriever == "dense":
        parts = ScoreParts(dense_rank=rank, dense_score=score)
    elif explain:
        parts = ScoreParts(bm25_rank=rank, bm25_score=score)
    return SearchHit(item, score, explain=parts)


def cut_ties(hits: list[SearchHit], top_k: int) -> list[SearchHit]:
    """Best top_k, equal scores ordered by id: Milvus returns tied rows in storage order, so
    without this two copies of a cube (an export and its import) could differ at a tie."""
    hits.sort(key=lambda h: (-h.score, h.item.id))
    return hits[:top_k]
