"""The memory service: validation, routing of cubes to shards, fan-out and merging.

Transport-independent: the Serve gateway (gRPC) wraps one, and so can any other front. It talks to
shards through `ShardPort`, an async interface that `actors.handles.ShardHandle` implements over
Ray actor handles; `LocalShard` implements it in-process for tests and tools that run without Ray.
Who calls it: the gateway, once per request, after converting protobuf to these domain types.
"""
from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any, Awaitable, Callable, Mapping, Optional, Protocol, Sequence, Union

from memos_cluster.core import validation as v
from memos_cluster.core.config import MemosConfig
from memos_cluster.core.errors import InvalidArgument, MemosError
from memos_cluster.core.lifecycle import ACTIVE, Feedback, Supersession
from memos_cluster.core.structure import EntityDetail, EntityPage, EntityQuery, ReindexStep
from memos_cluster.core.types import (
    AddResult, CubeSpec, CubeStats, DeleteResult, FeedbackResult, GetResult, ListQuery,
    MemoryItem, MemoryPage, MemoryUpdate, NewMemory, SearchHit, SearchMode, SearchQuery,
    ShardHealth)
from memos_cluster.placement.layout import Layout
from memos_cluster.placement.ownership import CubeGuard, GuardedShard
from memos_cluster.placement.routing import Router
from memos_cluster.placement.shardmap import HashRing
from memos_cluster.tiers.plaintext.transfer import CubeExport


class ShardPort(Protocol):
    """One plaintext shard as the service sees it: its `GuardedShard` (placement/ownership.py),
    called by method name (`SHARD_OPERATIONS`), in this process (`LocalShard`) or in a shard
    actor (`actors.handles.ShardHandle`)."""

    async def call(self, method: str, *args: Any) -> Any: ...


class MemoryService:
    def __init__(self, config: MemosConfig, layout: Union[Layout, HashRing],
                 shards: Union[Mapping[str, ShardPort], Callable[[str], ShardPort]],
                 refresh: Optional[Callable[[], Awaitable[Layout]]] = None):
        """`shards`: a port per shard id, or a factory of them (new shards appear when the
        layout changes); `refresh` fetches the directory's layout (see routing.py)."""
        self._config = config
        self._limits = config.limits
        self.router = Router(layout, shards, refresh, config.cluster.move_wait_s)

    async def _on(self, cube_id: str, method: str, *args):
        """Call `method` on the shard serving cube_id."""
        return await self.router.call(cube_id, lambda port: port.call(method, *args))

    # ---- cubes -----------------------------------------------------------------------------
    async def create_cube(self, spec: CubeSpec) -> CubeSpec:
        v.check_cube_spec(spec, self._limits)
        return await self._on(spec.cube_id, "create_cube", spec)

    async def delete_cube(self, cube_id: str) -> int:
        v.check_id(cube_id, "cube_id", self._limits)
        return await self._on(cube_id, "delete_cube", cube_id)

    async def list_cubes(self) -> list[CubeSpec]:
        """Every cube once: a cube pinned to a shard it is leaving is listed where the layout
        routes it."""
        layout = await self.router.refresh()
        ports = self.router.live_ports()
        per_shard = await asyncio.gather(*(p.call("list_cubes") for p in ports.values()))
        cubes = [c for shard_id, listed in zip(ports, per_shard) for c in listed
                 if layout.owner(c.cube_id) == shard_id]
        return sorted(cubes, key=lambda c: c.cube_id)

    async def get_cube(self, cube_id: str) -> CubeStats:
        v.check_id(cube_id, "cube_id", self._limits)
        return await self._on(cube_id, "get_cube", cube_id)

    # ---- memories --------------------------------------------------------------------------
    async def add(self, cube_id: str, items: Sequence[NewMemory]) -> AddResult:
        return await self.add_embedded(cube_id, items, None)

    async def add_embedded(self, cube_id: str, items: Sequence[NewMemory],
                           vectors: Optional[Sequence[Sequence[float]]]) -> AddResult:
        """Add with embeddings computed by the caller (the same model: `embed_inputs`), or
        None to have the shard embed. Who calls it: add, and bulk ingest, which embeds on a
        pool of actors instead of in the shards."""
        v.check_id(cube_id, "cube_id", self._limits)
        v.check_new_memories(list(items), self._limits)
        return await self._on(cube_id, "add", cube_id, list(items), vectors)

    async def export_cube(self, cube_id: str) -> CubeExport:
        """Every row of a cube (memories with vectors, history, the cube). Who calls it:
        `memos-cluster export`."""
        v.check_id(cube_id, "cube_id", self._limits)
        return await self._on(cube_id, "export_cube", cube_id)

    async def restore_cube(self, export: CubeExport) -> int:
        """Create a cube from an export; ALREADY_EXISTS if it exists. Who calls it:
        `memos-cluster import`."""
        v.check_id(export.cube_id, "cube_id", self._limits)
        return await self._on(export.cube_id, "restore_cube", export)

    async def get(self, cube_id: str, ids: Sequence[str],
                  states: Sequence[str] = ()) -> GetResult:
        """The memories in any of `states` (core/lifecycle.READ_STATES; (): active ones).
        Every tier composes from this, so nothing inactive reaches a prompt."""
        v.check_id(cube_id, "cube_id", self._limits)
        ids = v.check_ids(ids, "ids", self._limits)
        states = v.check_states(states) or (ACTIVE,)
        return await self._on(cube_id, "get", cube_id, ids, states)

    async def active_ids(self, cube_id: str, ids: Sequence[str]) -> set[str]:
        """Which of these memories are active, any number of them (read in GetMemories-sized
        pieces). Who calls it: Generate, before applying an adapter (its memories), and the
        scheduler, to stop tracking memories no longer active."""
        step = self._limits.max_ids_per_request
        found: set[str] = set()
        for start in range(0, len(ids), step):
            found.update(m.id for m in (await self.get(cube_id, ids[start:start + step])).items)
        return found

    async def feedback(self, feedback: Feedback) -> FeedbackResult:
        v.check_feedback(feedback, self._limits)
        return await self._on(feedback.cube_id, "feedback", feedback)

    async def expire_due(self) -> dict[str, list[str]]:
        """Every shard archives (or deletes) its memories past their expiry; their ids by
        cube. Who calls it: the scheduler's cycle. A shard that fails is skipped this cycle."""
        out: dict[str, list[str]] = {}
        for expired in await self._on_every_shard("expire_due", lambda shard_id, error: {}):
            out.update(expired)
        return out

    async def list_memories(self, query: ListQuery) -> MemoryPage:
        v.check_list_query(query, self._limits)
        return await self._on(query.cube_id, "list_memories", query)

    async def list_entities(self, query: EntityQuery) -> EntityPage:
        v.check_entity_query(query, self._limits)
        return await self._on(query.cube_id, "list_entities", query)

    async def get_entity(self, cube_id: str, entity_id: str) -> EntityDetail:
        v.check_entity_ref(cube_id, entity_id, self._limits)
        return await self._on(cube_id, "get_entity", cube_id, entity_id)

    async def reindex(self, cube_id: str, after_id: str, batch_size: int) -> ReindexStep:
        """One batch of the reader run again over a cube's memories (ids after `after_id`).
        Who calls it: `memos-cluster reindex`, batch after batch."""
        v.check_id(cube_id, "cube_id", self._limits)
        if not 1 <= batch_size <= self._limits.max_batch_items:
            raise InvalidArgument(f"batch_size must be 1..{self._limits.max_batch_items}",
                                  "batch_size")
        return await self._on(cube_id, "reindex", cube_id, after_id, batch_size)

    async def update(self, update: MemoryUpdate
                     ) -> tuple[MemoryItem, tuple[Supersession, ...]]:
        """The new version, and the older memories its content superseded."""
        v.check_update(update, self._limits)
        return await self._on(update.cube_id, "update", update)

    async def history(self, cube_id: str, memory_id: str) -> list[MemoryItem]:
        v.check_id(cube_id, "cube_id", self._limits)
        v.check_id(memory_id, "id", self._limits)
        return await self._on(cube_id, "history", cube_id, memory_id)

    async def delete(self, cube_id: str, ids: Sequence[str]) -> DeleteResult:
        v.check_id(cube_id, "cube_id", self._limits)
        ids = v.check_ids(ids, "ids", self._limits)
        return await self._on(cube_id, "delete", cube_id, ids)

    async def search(self, query: SearchQuery) -> list[SearchHit]:
        """Fan out one sub-query per owning shard, then merge by score, best first."""
        query = v.search_with_defaults(query, self._config.search)
        v.check_search(query, self._limits)
        vector = None
        shards = self.router.layout.group_by_shard(query.cube_ids)
        if len(shards) > 1 and query.mode is not SearchMode.BM25:
            # Embedded once, by one of the shards (each would otherwise embed it again).
            vector = await self.router.port(next(iter(shards))).call("embed_query", query.query)
        hits = await self.router.call_many(query.cube_ids, lambda port, cubes: port.call(
            "search", replace(query, cube_ids=tuple(cubes)), vector))
        # Ties broken by id, so equal scores come back in one order wherever they came from.
        hits.sort(key=lambda h: (-h.score, h.item.cube_id, h.item.id))
        return hits[: query.top_k]

    async def embed(self, cube_id: str, texts: Sequence[str]) -> list[list[float]]:
        """Texts embedded (L2-normalised) by the model of the shard serving cube_id, the one
        its searches use. Who calls it: ActivationService, for memory_mode auto's gate."""
        return await self._on(cube_id, "embed_texts", list(texts))

    async def near_duplicates(self, cube_id: str, memory_id: str,
                              min_similarity: float) -> list[tuple[str, float]]:
        """Who calls it: the scheduler, looking for memories to merge."""
        return await self._on(cube_id, "near_duplicates", cube_id, memory_id, min_similarity)

    async def merge(self, cube_id: str, keep_id: str,
                    duplicate_ids: Sequence[str]) -> MemoryItem:
        """Fold near-duplicates into one memory, keeping lineage (tiers/duplicates.py)."""
        return await self._on(cube_id, "merge", cube_id, keep_id, list(duplicate_ids))

    async def health(self) -> list[ShardHealth]:
        """Every shard's health; a shard that fails to answer is reported, not raised."""
        return await self._on_every_shard("health", lambda shard_id, error: ShardHealth(
            shard_id=shard_id, is_ok=False, detail=error.message))

    async def _on_every_shard(self, method: str,
                              failed: Callable[[str, MemosError], Any]) -> list[Any]:
        """`method` on every live shard at once; a shard that fails gives `failed(its id,
        the error)` instead."""
        async def one(shard_id: str, shard: ShardPort) -> Any:
            try:
                return await shard.call(method)
            except MemosError as exc:
                return failed(shard_id, exc)

        ports = self.router.live_ports()
        return list(await asyncio.gather(*(one(i, s) for i, s in ports.items())))


class LocalShard:
    """A ShardPort in this process (no Ray), for tools and tests: over a GuardedShard, or over a
    bare PlaintextTier, which it puts behind a guard that has no layout (it serves every cube).
    Blocking calls run in a thread."""

    def __init__(self, shard: Any):
        if not isinstance(shard, GuardedShard):
            shard = GuardedShard(shard, CubeGuard(getattr(shard, "shard_id", "local")))
        self._shard = shard

    async def call(self, method: str, *args: Any) -> Any:
        return await asyncio.to_thread(getattr(self._shard, method), *args)
