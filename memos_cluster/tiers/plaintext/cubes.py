"""One shard's cubes: their rows in the cube collection, and purging one whole.

Who uses it: `PlaintextTier` (tier.py), which forwards CreateCube, DeleteCube, ListCubes and
GetCube here; the cube ids themselves live in the store (`MilvusStore.cube_ids`).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Optional

from memos_cluster.core.errors import AlreadyExists, NotFound
from memos_cluster.core.types import CubeSpec, CubeStats
from memos_cluster.tiers.plaintext import schema as ms
from memos_cluster.tiers.plaintext.filters import scope_expr
from memos_cluster.tiers.plaintext.lifecycle import Lifecycle
from memos_cluster.tiers.plaintext.store import MilvusStore
from memos_cluster.tiers.plaintext.structure import StructureIndex


class Cubes:
    def __init__(self, store: MilvusStore, structure: StructureIndex, lifecycle: Lifecycle):
        self._store = store
        self._structure = structure
        self._lifecycle = lifecycle

    def create(self, spec: CubeSpec) -> CubeSpec:
        store = self._store
        with store.write_lock:
            if spec.cube_id in store.cube_ids:
                raise AlreadyExists(f"cube {spec.cube_id!r} already exists", "cube_id")
            created = replace(spec, created_at_ms=store.now_ms())
            store.client.insert(store.names.cube_collection, [ms.cube_to_row(created)])
            store.wrote(1)
            self._lifecycle.forget(spec.cube_id)
            store.cube_ids.add(spec.cube_id)
        return created

    def delete(self, cube_id: str, deferred: Optional[Any]) -> int:
        """Purge a cube: memories, then history, then the cube row (a crash midway leaves a
        cube that still exists, so a retried delete finishes the job). `deferred`: the
        tier's deferred reader, which forgets the cube's queue."""
        store = self._store
        with store.write_lock:
            store.require_cube(cube_id)
            num_memories = store.count(store.names.collection, [cube_id])
            scope = scope_expr([cube_id]).render()
            store.client.delete(store.names.collection, filter=scope)
            store.client.delete(store.names.history_collection, filter=scope)
            store.client.delete(store.names.cube_collection, ids=[cube_id])
            self._structure.delete_cube(cube_id)
            self._lifecycle.forget(cube_id)
            store.cube_ids.discard(cube_id)
            if deferred is not None:
                deferred.drop_cube(cube_id)
        return num_memories

    def list(self) -> list[CubeSpec]:
        store = self._store
        if not store.cube_ids:
            return []
        rows = store.client.get(store.names.cube_collection, ids=sorted(store.cube_ids),
                                output_fields=ms.CUBE_FIELDS)
        return sorted((ms.row_to_cube(r) for r in rows), key=lambda c: c.cube_id)

    def get(self, cube_id: str, shard_id: str) -> CubeStats:
        store = self._store
        store.require_cube(cube_id)
        rows = store.client.get(store.names.cube_collection, ids=[cube_id],
                                output_fields=ms.CUBE_FIELDS)
        if not rows:
            raise NotFound(f"cube {cube_id!r} does not exist", "cube_id")
        return CubeStats(
            cube=ms.row_to_cube(rows[0]),
            num_memories=store.count(store.names.collection, [cube_id]),
            num_history_versions=store.count(store.names.history_collection, [cube_id]),
            shard_id=shard_id)
