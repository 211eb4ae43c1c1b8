"""KVHost: one model's activation memory for the cubes routed to it — the model, its KV store,
the engine, and each cube's activation block (soft state: rebuilt by whoever promotes memories).

Who uses it: the KV-cache actor (`actors/kv_cache.py`) is a thin wrapper around one; tests and
single-process tools use one directly.
"""
from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any, Iterator, Protocol, Sequence

from memos_cluster.core.config import MemosConfig
from memos_cluster.core.errors import InvalidArgument
from memos_cluster.core.tier_types import (
    AdapterRecord, BlockMemory, BlockStats, ChatRequest, check_base)
from memos_cluster.tiers.activation.blocks import Budgets
from memos_cluster.tiers.activation.engine import ActivationEngine, segment_options
from memos_cluster.tiers.activation.kvstore import KVStore
from memos_cluster.tiers.llm.model import default_device, load_causal_lm, resolve_model


class AdapterFiles(Protocol):
    """Where a KV host gets an adapter's files to load (the parametric tier's store)."""

    def fetch(self, record: AdapterRecord, cache_dir: Path) -> Path: ...


class KVHost:
    def __init__(self, config: MemosConfig, actor_id: str, adapters: AdapterFiles,
                 device: str = ""):
        """Loads the model (seconds): construct it where it will serve. `adapters`: the
        adapter store (`tiers/parametric/store.py`), read when a request names adapters."""
        activation = config.activation
        device = default_device(device or None)
        path, identity = resolve_model(activation.model, config.model_cache_dir())
        model, tokenizer = load_causal_lm(path, device)
        spill_dir = config.kv_spill_dir(actor_id)
        shutil.rmtree(spill_dir, ignore_errors=True)
        budgets = Budgets(activation.device_budget_bytes, activation.host_budget_bytes,
                          activation.disk_budget_bytes)
        self._store = KVStore(identity, device, budgets, spill_dir)
        max_tokens = min(activation.max_prompt_tokens, model.config.max_position_embeddings)
        self._engine = ActivationEngine(model, tokenizer, self._store, max_tokens,
                                        **segment_options(activation))
        self._max_block = activation.max_block_memories
        self._selection: dict[str, list[str]] = {}  # cube -> memory ids, in activation order
        self._adapters = adapters
        self._adapter_cache = config.adapter_cache_dir() / actor_id
        self._lock = threading.Lock()

    def set_block(self, cube_id: str, memories: Sequence[BlockMemory]) -> BlockStats:
        """Make `memories` (current versions, in order) the cube's activation block and build
        its caches: in prefix composition a block that extends the cached one is prefilled only
        for the new memories; in segments composition only memories with no cache are.
        Who calls it: the gateway's ActivationService, for ActivateMemories."""
        if len(memories) > self._max_block:
            raise InvalidArgument(f"a cube's activation block holds at most {self._max_block} "
                                  "memories", "memory_ids")
        with self._lock:
            self._selection[cube_id] = [m.memory_id for m in memories]
        return self._engine.build(memories)

    def selection(self, cube_ids: Sequence[str]) -> dict[str, list[str]]:
        with self._lock:
            return {c: list(self._selection.get(c, [])) for c in cube_ids}

    def generate(self, request, adapters: Sequence[AdapterRecord] = ()) -> Iterator[Any]:
        """Streams TokenEvents, then GenerateStats (called with num_returns="streaming"), after
        loading the request's adapters (refused unless trained on this actor's base model)."""
        for record in adapters:
            check_base(record, self._store.identity.as_metadata())
            if record.name not in self._engine.adapters.loaded:
                local = self._adapters.fetch(record, self._adapter_cache)
                self._engine.adapters.load(record.name, local)
        yield from self._engine.generate(request)

    def chat(self, request: ChatRequest) -> Iterator[Any]:
        """Streams a chat turn's TokenEvents, then GenerateStats (tiers/activation/chat.py)."""
        yield from self._engine.chat(request)

    def stats(self) -> dict[str, Any]:
        """The KV store's counters (lookups, hit rate, bytes per tier); the actor's metrics."""
        return self._store.stats()

    def lookups(self) -> tuple[int, int]:
        """(lookups, hits) so far; cheap enough for every request."""
        return self._store.lookups()

    def invalidate(self, cube_id: str, memory_ids: Sequence[str], deleted: bool) -> int:
        """After an update or delete in plaintext: drop caches holding the old versions; a
        deleted memory also leaves the cube's selection."""
        if deleted:
            with self._lock:
                gone = set(memory_ids)
                self._selection[cube_id] = [i for i in self._selection.get(cube_id, [])
                                            if i not in gone]
        return self._store.invalidate(cube_id, memory_ids)
