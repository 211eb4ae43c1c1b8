"""Copying a whole cube between shards (a mixin of PlaintextTier): its cube row, current memories
with their stored vectors (nothing is re-embedded) and history, as plain rows.

Who calls it: the shard actors, for the cube directory when a rebalance moves a cube. The source
is fenced (no writes) while it is exported; `import_cube` first clears whatever an earlier,
interrupted copy left on the target, so a move can be retried from the start.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from memos_cluster.errors import AlreadyExists, FailedPrecondition, NotFound
from memos_cluster.filters import scope_expr
from memos_cluster.tiers import milvus_schema as ms

EXPORT_BATCH = 1000  # rows per Milvus query page


@dataclass(frozen=True)
class CubeExport:
    cube_id: str
    cube_row: dict[str, Any]
    memory_rows: list[dict[str, Any]]
    history_rows: list[dict[str, Any]]

    @property
    def num_rows(self) -> int:
        return 1 + len(self.memory_rows) + len(self.history_rows)


class TransferOps:
    """Needs the PlaintextTier attributes: client, _storage, _write_lock, _cube_ids, _wrote."""

    def _rows(self, collection: str, cube_id: str, fields: list[str]) -> list[dict[str, Any]]:
        iterator = self.client.query_iterator(collection, batch_size=EXPORT_BATCH,
                                              filter=scope_expr([cube_id]).render(),
                                              output_fields=fields)
        rows: list[dict[str, Any]] = []
        while batch := iterator.next():
            rows.extend(dict(r) for r in batch)
        iterator.close()
        return rows

    def export_cube(self, cube_id: str) -> CubeExport:
        self._require_cube(cube_id)
        cube_rows = self.client.get(self._storage.cube_collection, ids=[cube_id],
                                    output_fields=ms.CUBE_FIELDS)
        memories = self._rows(self._storage.collection, cube_id,
                              ms.MEMORY_FIELDS + ["index_text", "dense"])
        for row in memories:
            row["dense"] = [float(x) for x in row["dense"]]
        history = self._rows(self._storage.history_collection, cube_id, ms.MEMORY_FIELDS)
        return CubeExport(cube_id, dict(cube_rows[0]), memories, history)

    def import_cube(self, export: CubeExport, must_be_new: bool = False) -> int:
        """Store an exported cube here, replacing any partial copy (a move), or, with
        must_be_new, only if no such cube exists (a restore: ALREADY_EXISTS otherwise).
        Returns rows written."""
        placeholder = {"placeholder": ms.PLACEHOLDER_VECTOR}
        scope = scope_expr([export.cube_id]).render()
        with self._write_lock:
            if must_be_new and export.cube_id in self._cube_ids:
                raise AlreadyExists(f"cube {export.cube_id!r} already exists", "cube_id")
            self.client.delete(self._storage.collection, filter=scope)
            self.client.delete(self._storage.history_collection, filter=scope)
            for start in range(0, len(export.memory_rows), EXPORT_BATCH):
                self.client.insert(self._storage.collection,
                                   export.memory_rows[start:start + EXPORT_BATCH])
            history = [{**r, **placeholder} for r in export.history_rows]
            for start in range(0, len(history), EXPORT_BATCH):
                self.client.insert(self._storage.history_collection,
                                   history[start:start + EXPORT_BATCH])
            self.client.upsert(self._storage.cube_collection, [{**export.cube_row, **placeholder}])
            self._wrote(export.num_rows)
            self._cube_ids.add(export.cube_id)
        counts = self.row_counts(export.cube_id)
        expected = (len(export.memory_rows), len(export.history_rows))
        if counts != expected:
            raise FailedPrecondition(f"cube {export.cube_id!r} copied {counts} rows (memories, "
                                     f"history), expected {expected}")
        return export.num_rows

    def row_counts(self, cube_id: str) -> tuple[int, int]:
        """(current memories, history versions) stored for the cube."""
        return (self._count(self._storage.collection, [cube_id]),
                self._count(self._storage.history_collection, [cube_id]))

    def cube_ids(self) -> list[str]:
        """The cubes this tier knows, sorted."""
        return sorted(self._cube_ids)

    def cube_sizes(self, cube_ids: Sequence[str]) -> dict[str, int]:
        """Current memories of each cube (the `memos-cluster shards` view)."""
        return {c: self._count(self._storage.collection, [c]) for c in cube_ids}

    def adopt_cube(self, cube_id: str) -> None:
        """Start serving a cube another shard created in the same (shared) Milvus. Who calls it:
        the directory, moving a cube when every shard is a client of one Milvus server."""
        rows = self.client.get(self._storage.cube_collection, ids=[cube_id],
                               output_fields=["cube_id"])
        if not rows:
            raise NotFound(f"cube {cube_id!r} does not exist", "cube_id")
        with self._write_lock:
            self._cube_ids.add(cube_id)
