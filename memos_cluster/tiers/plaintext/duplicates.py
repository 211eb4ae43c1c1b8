"""Near-duplicate detection and merging in the plaintext tier (a part of each PlaintextTier).

A merge keeps lineage: each duplicate's current version is archived in history (with
`merged_into` in its metadata) before it leaves the current memories, and the kept memory gets a
new version whose metadata lists `merged_from` (id@version). History of a merged memory stays
readable. A crash between the writes leaves a duplicate current and archived, never a loss.

Who calls it: the scheduler, through MemoryService.near_duplicates / merge.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from memos_cluster.core.errors import InvalidArgument, NotFound
from memos_cluster.core.types import MemoryItem
from memos_cluster.tiers.plaintext import schema as ms
from memos_cluster.core.lifecycle import ACTIVE
from memos_cluster.tiers.plaintext.filters import scope_expr, state_clause
from memos_cluster.tiers.plaintext.store import MilvusStore


class Duplicates:
    """Over one shard's MilvusStore; `PlaintextTier.duplicates`."""

    def __init__(self, store: MilvusStore):
        self._store = store

    def near_duplicates(self, cube_id: str, memory_id: str, min_similarity: float,
                        limit: int = 8) -> list[tuple[str, float]]:
        """Current memories of the cube whose dense vector has cosine >= min_similarity with
        this memory's, most similar first (the memory itself excluded)."""
        self._store.require_cube(cube_id)
        store = self._store
        rows = store.client.get(store.names.collection, ids=[ms.memory_pk(cube_id, memory_id)],
                                      output_fields=["dense"])
        if not rows:
            raise NotFound(f"memory {memory_id!r} does not exist in cube {cube_id!r}", "id")
        expr = scope_expr([cube_id])
        expr.add(f"memory_id != {expr.param(memory_id)}")
        # Only active memories merge: a superseded one is kept as history, never folded.
        expr.add(state_clause(expr, (ACTIVE,), store.now_ms()))
        hits = self._store.client.search(
            self._store.names.collection, data=[list(rows[0]["dense"])], anns_field="dense",
            limit=limit, filter=expr.render(), search_params=self._store.search_params("dense"),
            output_fields=["memory_id"])
        return [(h["memory_id"], float(h["distance"])) for h in (hits[0] if hits else [])
                if float(h["distance"]) >= min_similarity]

    def merge(self, cube_id: str, keep_id: str, duplicate_ids: Sequence[str]) -> MemoryItem:
        """Fold `duplicate_ids` into `keep_id` (see module doc). Idempotent: duplicates that are
        no longer current (merged already) are skipped."""
        if keep_id in duplicate_ids or not duplicate_ids:
            raise InvalidArgument("merge needs duplicates other than the kept memory",
                                  "duplicate_ids")
        self._store.require_cube(cube_id)
        with self._store.write_lock:
            rows = self._store.current_rows(cube_id, [keep_id, *duplicate_ids])
            if keep_id not in rows:
                raise NotFound(f"memory {keep_id!r} does not exist in cube {cube_id!r}", "id")
            keep = self._store.engine.row_to_item(rows[keep_id])
            dups = [self._store.engine.row_to_item(rows[i]) for i in duplicate_ids if i in rows]
            if not dups:
                return keep
            self._store.archive([replace(d, metadata={**d.metadata, "merged_into": keep_id})
                                 for d in dups] + [keep])
            self._store.client.delete(self._store.names.collection,
                                      ids=[ms.memory_pk(cube_id, d.id) for d in dups])
            merged_from = list(keep.metadata.get("merged_from", [])) + [
                f"{d.id}@{d.version}" for d in dups]
            new = replace(keep, version=keep.version + 1,
                          updated_at_ms=max(self._store.now_ms(), keep.updated_at_ms),
                          metadata={**keep.metadata, "merged_from": merged_from})
            # Text and context are unchanged: the stored vector still fits (no re-embedding
            # while holding the write lock).
            vector = self._store.client.get(self._store.names.collection,
                                            ids=[ms.memory_pk(cube_id, keep_id)],
                                            output_fields=["dense"])[0]["dense"]
            store = self._store
            store.client.upsert(store.names.collection, [store.memory_row(new, vector)])
            self._store.wrote(len(dups) + 2)
        return new
