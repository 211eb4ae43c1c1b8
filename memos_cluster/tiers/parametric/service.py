"""ParametricService: what the gateway does for parametric memory, transport-independent.

Training reads the memories' current versions from plaintext (the source of truth) and hands them
to the trainer actor; adapters are listed, inspected and deleted in the store; deleting memories
marks the adapters trained on them stale (no longer served); Search hits are marked with the
current adapter version that holds them.

Who uses it: `actors.gateway.MemoryGateway`, over a `TrainerPort` that
`actors.handles.TrainerHandle` implements with Ray.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Callable, Optional, Protocol, Sequence

from memos_cluster.core import validation as v
from memos_cluster.core.config import MemosConfig, ParametricConfig
from memos_cluster.core.errors import NotFound
from memos_cluster.core.tier_types import AdapterRecord, BlockMemory, TrainingJob, block_memory
from memos_cluster.core.types import SearchHit, SearchQuery
from memos_cluster.tiers.parametric.distill import Lesson
from memos_cluster.tiers.parametric.store import AdapterStore
from memos_cluster.tiers.parametric.training import LoraSpec
from memos_cluster.tiers.plaintext.service import MemoryService


class TrainerPort(Protocol):
    async def start(self, cube_id: str, memories: Sequence[BlockMemory],
                    spec: LoraSpec) -> TrainingJob: ...
    async def start_questions(self, cube_id: str, lessons: Sequence[Lesson],
                              spec: LoraSpec) -> TrainingJob: ...
    async def job(self, job_id: str) -> TrainingJob: ...
    async def cancel(self, job_id: str) -> TrainingJob: ...


class AdapterIndex:
    """The current adapter of each cube, trusted for `ttl_s` seconds (Search marks hits with it
    and must not read the store on every call)."""

    def __init__(self, store: AdapterStore, ttl_s: float,
                 clock: Callable[[], float] = time.monotonic):
        self._store = store
        self._ttl_s = ttl_s
        self._clock = clock
        self._cached: dict[str, tuple[float, Optional[AdapterRecord]]] = {}

    async def current(self, cube_id: str) -> Optional[AdapterRecord]:
        seen = self._cached.get(cube_id)
        if seen is None or self._clock() - seen[0] > self._ttl_s:
            record = await asyncio.to_thread(self._store.current, cube_id)
            seen = self._cached[cube_id] = (self._clock(), record)
        return seen[1]

    def forget(self, cube_id: str) -> None:
        self._cached.pop(cube_id, None)


def lora_spec(config: ParametricConfig, rank: int = 0, steps: int = 0,
              learning_rate: float = 0.0) -> LoraSpec:
    """The configured LoRA settings, with any of these overridden (0: configured); a rank
    override scales alpha with it (alpha = 2 x rank)."""
    return LoraSpec(rank=rank or config.rank, alpha=2 * rank if rank else config.alpha,
                    target_modules=tuple(m.strip() for m in config.target_modules.split(",")
                                         if m.strip()),
                    steps=steps or config.steps,
                    learning_rate=learning_rate or config.learning_rate,
                    batch_size=config.batch_size).check()


class ParametricService:
    def __init__(self, config: MemosConfig, memory: MemoryService, store: AdapterStore,
                 trainer: TrainerPort):
        self._config = config.parametric
        self._limits = config.limits
        self._memory = memory
        self._store = store
        self._trainer = trainer
        self._top_k = config.activation.retrieval_top_k  # a question's memories, as Generate
        self.index = AdapterIndex(store, config.parametric.index_ttl_s)

    def spec(self, rank: int = 0, steps: int = 0, learning_rate: float = 0.0) -> LoraSpec:
        return lora_spec(self._config, rank, steps, learning_rate)

    async def train(self, cube_id: str, memory_ids: Sequence[str], spec: LoraSpec) -> TrainingJob:
        """Start a run on these memories' current versions; returns the queued job."""
        ids = v.check_ids(memory_ids, "memory_ids", replace(
            self._limits, max_ids_per_request=self._config.max_train_memories))
        found = await self._memory.get(cube_id, list(ids))
        if found.missing_ids:
            raise NotFound(f"memories {list(found.missing_ids)[:5]} are not in cube "
                           f"{cube_id!r}", "memory_ids")
        return await self._trainer.start(cube_id, [block_memory(m) for m in found.items], spec)

    async def train_questions(self, cube_id: str, questions: Sequence[str],
                              spec: LoraSpec) -> TrainingJob:
        """Start a question adapter's run (distill.py): each question with the memories a
        Generate retrieves for it now (current versions, `activation.retrieval_top_k`).
        Who calls it: TrainAdapter with questions, and the scheduler's consolidation."""
        await self._memory.get_cube(cube_id)  # NotFound for an unknown cube
        lessons = []
        for question in dict.fromkeys(questions):
            hits = await self._memory.search(SearchQuery((cube_id,), question, self._top_k))
            lessons.append(Lesson(question, tuple(block_memory(h.item) for h in hits)))
        return await self._trainer.start_questions(cube_id, lessons, spec)

    async def job(self, job_id: str) -> TrainingJob:
        return await self._trainer.job(job_id)

    async def cancel(self, job_id: str) -> TrainingJob:
        return await self._trainer.cancel(job_id)

    async def list(self, cube_id: str) -> list[AdapterRecord]:
        await self._memory.get_cube(cube_id)  # NotFound for an unknown cube
        return await asyncio.to_thread(self._store.versions, cube_id)

    async def versions(self, cube_id: str) -> list[AdapterRecord]:
        """The store's versions of a cube, without checking the cube (the scheduler's view)."""
        return await asyncio.to_thread(self._store.versions, cube_id)

    async def delete(self, cube_id: str, version: int) -> None:
        await asyncio.to_thread(self._store.delete, cube_id, version)
        self.index.forget(cube_id)

    async def current(self, cube_ids: Sequence[str]) -> list[AdapterRecord]:
        """The adapters Generate applies for these cubes, freshly read (not the TTL view)."""
        records = await asyncio.gather(*(asyncio.to_thread(self._store.current, c)
                                         for c in dict.fromkeys(cube_ids)))
        return [r for r in records if r is not None]

    async def mark_stale(self, cube_id: str, memory_ids: Sequence[str]) -> list[int]:
        """Who calls it: the gateway after DeleteMemories succeeded."""
        marked = await asyncio.to_thread(self._store.mark_stale, cube_id, list(memory_ids))
        self.index.forget(cube_id)
        return marked

    async def annotate(self, hits: list[SearchHit]) -> list[SearchHit]:
        """Mark each hit with the current adapter version trained on its exact version."""
        held: dict[str, tuple[int, set]] = {}
        for cube_id in {h.item.cube_id for h in hits}:
            record = await self.index.current(cube_id)
            if record is not None:
                held[cube_id] = (record.version, set(record.memories))
        out = []
        for hit in hits:
            version, memories = held.get(hit.item.cube_id, (0, set()))
            if (hit.item.id, hit.item.version) in memories:
                hit = replace(hit, adapter_version=version)
            out.append(hit)
        return out
