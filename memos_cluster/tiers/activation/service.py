"""ActivationService: what the gateway does for activation memory, transport-independent.

Plaintext stays the source of truth: a block is always composed from the memories' *current*
versions read from plaintext, so a cache holding an old version can never be used for it (its
segment keys differ); updates and deletes also invalidate such caches eagerly.

Who uses it: `actors.gateway.MemoryGateway` (ActivateMemories, Generate, and after UpdateMemory /
DeleteMemories), over `KVPort`s that `actors.handles.KVHandle` implements with Ray.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping, Optional, Protocol, Sequence

from memos_cluster.core import validation as v
from memos_cluster.core.chat_checks import chat_with_defaults, check_chat
from memos_cluster.core.config import MemosConfig
from memos_cluster.core.errors import NotFound
from memos_cluster.core.tier_types import (
    BlockMemory, BlockStats, ChatCall, ChatRequest, ChatStats, GenerateCall, GenerateStats,
    TokenEvent, block_memory)
from memos_cluster.core.types import SearchFilter, SearchQuery
from memos_cluster.placement.shardmap import HashRing
from memos_cluster.tiers.activation.conversation import (
    PlacementBook, place, remember, turn_memories)
from memos_cluster.tiers.activation.engine import GenerateRequest
from memos_cluster.tiers.parametric.gate import nearest_question, stack
from memos_cluster.tiers.plaintext.service import MemoryService

QUESTION_VECTORS_KEPT = 64  # question adapters whose embedded questions the gateway keeps


class KVPort(Protocol):
    async def set_block(self, cube_id: str, memories: Sequence[BlockMemory]) -> BlockStats: ...
    async def selection(self, cube_ids: Sequence[str]) -> dict[str, list[str]]: ...
    def chat(self, request: ChatRequest) -> AsyncIterator[TokenEvent | GenerateStats]: ...
    def generate(self, request: GenerateRequest,
                 adapters: Sequence[Any]) -> AsyncIterator[TokenEvent | GenerateStats]: ...
    async def invalidate(self, cube_id: str, memory_ids: Sequence[str], deleted: bool) -> int: ...


class ActivationService:
    def __init__(self, config: MemosConfig, memory: MemoryService, ring: HashRing,
                 ports: Mapping[str, KVPort],
                 adapters_for: Optional[Callable[[Sequence[str]], Awaitable[list]]] = None,
                 clock: Callable[[], float] = time.time):
        """`adapters_for(cube_ids)`: the cubes' current adapter records (parametric memory),
        for requests with use_parametric_memory; `clock`: seconds since the epoch (the time
        remembered chat turns happened)."""
        self._clock = clock
        self._placements = PlacementBook()  # chat: memories placed per conversation prefix
        self._adapters_for = adapters_for
        # Told (cube, memory id, version) of every memory a Generate used: the gateway turns
        # them into access events for the scheduler.
        self.on_access: Optional[Callable[[list[tuple[str, str, int]], str, str], None]] = None
        # Told (cube, memory ids) of an adapter's memories found no longer active at Generate:
        # the gateway marks the adapters trained on them stale.
        self.on_stale: Optional[Callable[[str, list[str]], None]] = None
        self._config = config.activation
        self._limits = config.limits
        self._gate_similarity = config.parametric.gate_similarity
        # Question adapters' questions embedded, by adapter name (oldest first out).
        self._question_vectors: dict[str, Any] = {}
        self._memory = memory
        self._ring = ring
        self._ports = dict(ports)

    async def live_adapters(self, records: Sequence[Any]) -> list:
        """Those of these adapter records whose every memory is still active. One trained on
        a memory since superseded, archived, expired or deleted is not applied, even before
        the write's invalidation marked it stale (it may be in flight, or an expiry is not
        swept yet): it is reported to `on_stale`, which marks it."""
        live = []
        for record in records:
            ids = sorted({memory_id for memory_id, _ in record.memories})
            found = await self._memory.active_ids(record.cube_id, ids)
            if len(found) == len(ids):
                live.append(record)
            elif self.on_stale is not None:
                self.on_stale(record.cube_id, sorted(set(ids) - found))
        return live

    def port_of(self, cube_id: str) -> KVPort:
        return self._ports[self._ring.shard_for(cube_id)]

    async def _current_block(self, cube_id: str, ids: Sequence[str]) -> list[BlockMemory]:
        """The memories' current versions, in `ids` order; deleted ones are skipped."""
        if not ids:
            return []
        found = {m.id: m for m in (await self._memory.get(cube_id, list(ids))).items}
        return [block_memory(found[i]) for i in ids if i in found]

    async def activate(self, cube_id: str, memory_ids: Sequence[str],
                       replace: bool) -> BlockStats:
        """Promote memories into the cube's activation block (appended in the given order, or
        replacing the block; replacing with no ids empties it) and build its KV cache."""
        port = self.port_of(cube_id)
        if replace and not memory_ids:
            await self._memory.get_cube(cube_id)  # NotFound for an unknown cube
            return await port.set_block(cube_id, [])
        ids = v.check_ids(memory_ids, "memory_ids", self._limits)
        current = [] if replace else (await port.selection([cube_id]))[cube_id]
        wanted = current + [i for i in ids if i not in current]
        block = await self._current_block(cube_id, wanted)
        missing = sorted(set(ids) - {m.memory_id for m in block})
        if missing:
            raise NotFound(f"memories {missing[:5]} are not in cube {cube_id!r}", "memory_ids")
        return await port.set_block(cube_id, block)

    async def generate(self, call: GenerateCall) -> AsyncIterator[TokenEvent | GenerateStats]:
        """Compose the prompt and stream from the first cube's KV actor. Prefix composition:
        the activation blocks of the cubes in order, then the retrieved memories not in them,
        then the query. Segments composition: the retrieved memories when retrieval is asked
        for (those in a block first, served from their caches), else the blocks."""
        call = v.generate_with_defaults(call, self._config)
        v.check_generate(call, self._limits, self._config)
        if call.as_of_ms is not None:  # the past is in plaintext only (docs/lifecycle.md)
            call = replace(call, memory_mode="explicit", use_activation_memory=False,
                           use_parametric_memory=False, use_retrieved_memories=True)
        generate = self._generate_auto if call.memory_mode == "auto" else self._generate_explicit
        async for event in generate(call):
            yield event

    async def _retrieve(self, call: GenerateCall) -> list[BlockMemory]:
        """The query's retrieved memories, rank order; told to `on_access` as used (whichever
        tier serves them)."""
        hits = [block_memory(h.item) for h in await self._memory.search(SearchQuery(
            call.cube_ids, call.query, call.retrieval_top_k or self._config.retrieval_top_k,
            filter=SearchFilter(as_of_ms=call.as_of_ms)))]
        if self.on_access is not None:
            self.on_access([(m.cube_id, m.memory_id, m.version) for m in hits], "generate",
                           call.query)
        return hits

    async def _generate_auto(self, call: GenerateCall) -> AsyncIterator[TokenEvent | GenerateStats]:
        """memory_mode auto. A query close to a question the cube's question adapter learnt
        (tiers/parametric/gate.py) is answered by the adapter alone, with no memories in the
        prompt. Any other: the retrieved memories, in rank order, as the prompt's exact cached
        prefix: the KV actor reuses the longest cached prefix of that list (a promoted
        memory's own cache when it ranks first; a whole earlier prompt's when the same
        memories come back, as they do for a cube's frequent questions) and prefills the rest,
        so the answer is a full prefill's of the plaintext prompt; each prompt's list is kept
        for the next (least recently used first out, within the budgets)."""
        record = await self._gated_adapter(call)
        if record is not None:  # no memory used: no access event (the shipper drops empty ones)
            request = GenerateRequest((), call.query, (), call.sampling, use_cache=True,
                                      adapters=(record.name,), compose="prefix")
            records = [record]
        else:
            hits = await self._retrieve(call)
            request = GenerateRequest(tuple(hits), call.query, (), call.sampling,
                                      use_cache=True, compose="prefix")
            records = []
        async for event in self.port_of(call.cube_ids[0]).generate(request, records):
            yield event

    async def _gated_adapter(self, call: GenerateCall) -> Optional[Any]:
        """The cube's question adapter when the query is one it learnt (one cube only: an
        adapter answers for its own cube); else None."""
        if len(call.cube_ids) != 1 or self._adapters_for is None:
            return None
        records = [r for r in await self._adapters_for(call.cube_ids) if r.questions]
        if not records:
            return None
        record = records[0]
        if record.name not in self._question_vectors:
            if len(self._question_vectors) >= QUESTION_VECTORS_KEPT:
                self._question_vectors.pop(next(iter(self._question_vectors)))
            self._question_vectors[record.name] = stack(
                await self._memory.embed(record.cube_id, record.questions))
        query = stack(await self._memory.embed(record.cube_id, [call.query]))[0]
        decision = nearest_question(query, self._question_vectors[record.name],
                                    self._gate_similarity)
        # Checked only once admitted: most queries are not one an adapter learnt.
        return record if decision.admitted and await self.live_adapters([record]) else None

    async def _generate_explicit(
            self, call: GenerateCall) -> AsyncIterator[TokenEvent | GenerateStats]:
        selections = await self.selections(call.cube_ids) if call.use_activation_memory else {}
        in_block = {(c, i) for c, ids in selections.items() for i in ids}
        block: list[BlockMemory] = []
        # With segments and retrieval, the prompt holds only retrieved memories (read with
        # their current versions by the search): the block's texts are not needed.
        if not (call.use_retrieved_memories and self._config.compose == "segments"):
            for cube_id, ids in selections.items():
                block += await self._current_block(cube_id, ids)
        retrieved: list[BlockMemory] = []
        from_activation = 0
        # Access events are the memories the request retrieved, wherever they are served from.
        # The block's other memories ride along in every prompt; counting them would keep
        # whatever is promoted hot forever, so a cache's use is not a demand signal.
        if call.use_retrieved_memories:
            hits = await self._retrieve(call)
            retrieved = [m for m in hits if (m.cube_id, m.memory_id) not in in_block]
            from_activation = len(hits) - len(retrieved)
            if self._config.compose == "segments":
                block = [m for m in hits if (m.cube_id, m.memory_id) in in_block]
        else:  # the cubes must exist even when only the activation block is used
            for cube_id in call.cube_ids:
                await self._memory.get_cube(cube_id)
            if self.on_access is not None:
                self.on_access([], "generate", call.query)
        records = []
        if call.use_parametric_memory and self._adapters_for is not None:
            records = await self.live_adapters(await self._adapters_for(call.cube_ids))
        request = GenerateRequest(tuple(block), call.query, tuple(retrieved), call.sampling,
                                  use_cache=call.use_activation_memory,
                                  adapters=tuple(r.name for r in records))
        async for event in self.port_of(call.cube_ids[0]).generate(request, records):
            if isinstance(event, GenerateStats):
                event = self._count_from_activation(event, call, from_activation)
            yield event

    def _count_from_activation(self, stats: GenerateStats, call: GenerateCall,
                               in_block: int) -> GenerateStats:
        """Retrieval hits served from activation memory: in prefix composition those in the
        block; in segments composition the engine's count of memories whose caches it used."""
        if not call.use_retrieved_memories:
            return replace(stats, retrieved_from_activation=0)
        if self._config.compose == "prefix":
            return replace(stats, retrieved_from_activation=in_block)
        return stats

    async def chat(self, call: ChatCall) -> AsyncIterator[TokenEvent | ChatStats]:
        """A chat turn (conversation.py): the memories placed before each user message, the
        first cube's KV actor's answer streamed, then the turn remembered and the stats.
        Who calls it: the gateway's Chat operation."""
        call = chat_with_defaults(call, self._config)
        check_chat(call, self._limits, self._config)
        top_k = call.retrieval_top_k or self._config.retrieval_top_k

        async def retrieve(text: str) -> list[BlockMemory]:
            hits = await self._memory.search(SearchQuery(call.cube_ids, text, top_k))
            return [block_memory(h.item) for h in hits]

        context, placed = await place(call, self._placements, retrieve, self._current)
        if self.on_access is not None:
            self.on_access([(m.cube_id, m.memory_id, m.version) for m in placed], "chat",
                           call.messages[-1].content)
        parts, stats = [], None
        request = ChatRequest(call.messages, tuple(context), call.sampling)
        async for event in self.port_of(call.cube_ids[0]).chat(request):
            if isinstance(event, GenerateStats):
                stats = event
            else:
                parts.append(event.text)
                yield event
        answer = "".join(parts)
        remembered: tuple[str, ...] = ()
        if call.remember:
            remembered = await remember(self._memory.add, call.cube_ids[0], turn_memories(
                call, answer, int(self._clock() * 1000)))
        yield ChatStats(stats, answer, remembered)

    async def _current(self, refs: Sequence[tuple[str, str]]
                       ) -> dict[tuple[str, str], BlockMemory]:
        """The current versions of memories by (cube, id), one read a cube; deleted ones are
        absent."""
        by_cube: dict[str, list[str]] = {}
        for cube_id, memory_id in refs:
            by_cube.setdefault(cube_id, []).append(memory_id)
        return {(m.cube_id, m.memory_id): m for cube_id, ids in by_cube.items()
                for m in await self._current_block(cube_id, ids)}

    async def selections(self, cube_ids: Sequence[str]) -> dict[str, list[str]]:
        """Each cube's activation block (memory ids, in order), one call per KV actor, in the
        order of cube_ids. Who calls it: Generate, and the scheduler every cycle."""
        found: dict[str, list[str]] = {}
        for port_id, cubes in self._ring.group_by_shard(list(cube_ids)).items():
            found.update(await self._ports[port_id].selection(cubes))
        return {cube_id: found[cube_id] for cube_id in cube_ids}

    async def invalidate(self, cube_id: str, memory_ids: Sequence[str], deleted: bool) -> int:
        """Who calls it: the gateway after UpdateMemory / DeleteMemories succeeded."""
        return await self.port_of(cube_id).invalidate(cube_id, memory_ids, deleted)
