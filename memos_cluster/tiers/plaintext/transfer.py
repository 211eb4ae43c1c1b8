"""Copying a whole cube between shards (a part of each PlaintextTier): its cube row, current
memories with their stored vectors (nothing is re-embedded) and history, as plain rows.

Who calls it: the shard actors, for the cube directory when a rebalance moves a cube. The source
is fenced (no writes) while it is exported; `import_cube` first clears whatever an earlier,
interrupted copy left on the target, so a move can be retried from the start.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from memos_cluster.core.errors import AlreadyExists, FailedPrecondition, NotFound
from memos_cluster.tiers.plaintext import schema as ms
from memos_cluster.tiers.plaintext.filters import scope_expr
from memos_cluster.tiers.plaintext.store import MilvusStore

EXPORT_BATCH = 1000  # rows per Milvus query page


@dataclass(frozen=True)
class CubeExport:
    """A whole cube as plain rows, in the engine-independent form (an absent event time is
    None), so a copy moves between engines and into archives unchanged."""

    cube_id: str
    cube_row: dict[str, Any]
    memory_rows: list[dict[str, Any]]
    history_rows: list[dict[str, Any]]
    # The cube's entities (name, label, aliases, name vector); mentions travel in the
    # memories' `structure`. Empty in archives written before the entity graph.
    entity_rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def num_rows(self) -> int:
        return 1 + len(self.memory_rows) + len(self.history_rows) + len(self.entity_rows)


class Transfer:
    """Over one shard's MilvusStore; `PlaintextTier.transfer`."""

    def __init__(self, store: MilvusStore):
        self._store = store

    def export_cube(self, cube_id: str) -> CubeExport:
        """Every row of the cube, checked against count(*): a page iterator that skipped or
        repeated rows (milvus-lite issue #366 reports one on 3.x) fails the export instead of
        making a copy with a hole in it."""
        store = self._store
        store.require_cube(cube_id)
        cube_rows = store.client.get(store.names.cube_collection, ids=[cube_id],
                                     output_fields=ms.CUBE_FIELDS)
        memories = self._all_rows(store.names.collection, cube_id,
                                  ms.MEMORY_FIELDS + ["index_text", "dense"])
        for row in memories:
            row["dense"] = [float(x) for x in row["dense"]]
        history = self._all_rows(store.names.history_collection, cube_id, ms.MEMORY_FIELDS)
        entities = self._all_rows(store.names.entity_collection, cube_id,
                                  ms.ENTITY_FIELDS + ["dense"])
        for row in entities:
            row["dense"] = [float(x) for x in row["dense"]]
        return CubeExport(cube_id, dict(cube_rows[0]), store.engine.decode_rows(memories),
                          store.engine.decode_rows(history), entities)

    def _all_rows(self, collection: str, cube_id: str, fields: list[str]) -> list[dict]:
        rows = self._store.cube_rows(collection, cube_id, fields)
        counted = self._store.count(collection, [cube_id])
        unique = len({r["pk"] for r in rows})
        if unique != len(rows) or len(rows) != counted:
            raise FailedPrecondition(
                f"reading cube {cube_id!r} from {collection} gave {len(rows)} rows "
                f"({unique} distinct) but it holds {counted}: the cube changed while it was "
                "read, or the storage engine's iterator skipped or repeated rows; nothing was "
                "copied, retry")
        return rows

    def import_cube(self, export: CubeExport, must_be_new: bool = False) -> int:
        """Store an exported cube here, replacing any partial copy (a move), or, with
        must_be_new, only if no such cube exists (a restore: ALREADY_EXISTS otherwise).
        Returns rows written."""
        placeholder = {"placeholder": ms.PLACEHOLDER_VECTOR}
        scope = scope_expr([export.cube_id]).render()
        with self._store.write_lock:
            if must_be_new and export.cube_id in self._store.cube_ids:
                raise AlreadyExists(f"cube {export.cube_id!r} already exists", "cube_id")
            self._store.client.delete(self._store.names.collection, filter=scope)
            self._store.client.delete(self._store.names.history_collection, filter=scope)
            self._store.client.delete(self._store.names.entity_collection, filter=scope)
            for start in range(0, len(export.entity_rows), EXPORT_BATCH):
                self._store.client.insert(self._store.names.entity_collection,
                                          export.entity_rows[start:start + EXPORT_BATCH])
            memories = self._store.engine.encode_rows(export.memory_rows)
            for start in range(0, len(memories), EXPORT_BATCH):
                self._store.client.insert(self._store.names.collection,
                                          memories[start:start + EXPORT_BATCH])
            history = [{**r, **placeholder}
                       for r in self._store.engine.encode_rows(export.history_rows)]
            for start in range(0, len(history), EXPORT_BATCH):
                self._store.client.insert(self._store.names.history_collection,
                                          history[start:start + EXPORT_BATCH])
            self._store.client.upsert(self._store.names.cube_collection,
                                      [{"default_ttl_ms": 0, **export.cube_row,
                                        **placeholder}])
            self._store.wrote(export.num_rows)
            self._store.cube_ids.add(export.cube_id)
        counts = self.row_counts(export.cube_id)
        expected = (len(export.memory_rows), len(export.history_rows))
        if counts != expected:
            raise FailedPrecondition(f"cube {export.cube_id!r} copied {counts} rows (memories, "
                                     f"history), expected {expected}")
        return export.num_rows

    def row_counts(self, cube_id: str) -> tuple[int, int]:
        """(current memories, history versions) stored for the cube."""
        return (self._store.count(self._store.names.collection, [cube_id]),
                self._store.count(self._store.names.history_collection, [cube_id]))

    def adopt_cube(self, cube_id: str) -> None:
        """Start serving a cube another shard created in the same (shared) Milvus. Who calls it:
        the directory, moving a cube when every shard is a client of one Milvus server."""
        rows = self._store.client.get(self._store.names.cube_collection, ids=[cube_id],
                                      output_fields=["cube_id"])
        if not rows:
            raise NotFound(f"cube {cube_id!r} does not exist", "cube_id")
        with self._store.write_lock:
            self._store.cube_ids.add(cube_id)
