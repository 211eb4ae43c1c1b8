"""KVCacheActor: activation memory for the cubes the KV ring gives it.

A thin wrapper around `memos_cluster.activation` (model, KV store, engine). It asks Ray for a GPU
where the cluster has one and runs on the CPU otherwise. Its state is derived: on a restart it
reloads the model and starts with no caches (spill files of the previous life are removed, as
the ledger that named them is gone); the activation selection of each cube is re-sent by whoever
promotes memories (today the ActivateMemories RPC; the scheduler later).
"""
from __future__ import annotations

import logging
import shutil
import threading
from typing import Any, Iterator, Sequence

import ray

from memos_cluster.activation.blocks import Budgets
from memos_cluster.activation.engine import ActivationEngine, BlockMemory, BlockStats
from memos_cluster.activation.kvstore import KVStore
from memos_cluster.activation.model import load_causal_lm, resolve_model
from memos_cluster.config import MemosConfig
from memos_cluster.errors import InvalidArgument
from memos_cluster.parametric.store import AdapterRecord, AdapterStore, check_base

logger = logging.getLogger(__name__)


def kv_actor_name(actor_id: str) -> str:
    return f"memos-{actor_id}"


def kv_actor_ids(num_actors: int) -> list[str]:
    return [f"kv-{i}" for i in range(num_actors)]


class KVCacheActor:
    def __init__(self, config: MemosConfig, actor_id: str):
        import torch

        activation = config.activation
        self._device = "cuda" if torch.cuda.is_available() else "cpu"
        path, identity = resolve_model(activation.model, config.model_cache_dir())
        model, tokenizer = load_causal_lm(path, self._device)
        spill_dir = config.kv_spill_dir(actor_id)
        shutil.rmtree(spill_dir, ignore_errors=True)
        budgets = Budgets(activation.device_budget_bytes, activation.host_budget_bytes,
                          activation.disk_budget_bytes)
        self._store = KVStore(identity, self._device, budgets, spill_dir)
        max_tokens = min(activation.max_prompt_tokens, model.config.max_position_embeddings)
        self._engine = ActivationEngine(model, tokenizer, self._store, max_tokens)
        self._max_block = activation.max_block_memories
        self._selection: dict[str, list[str]] = {}  # cube -> memory ids, in activation order
        self._adapter_store = AdapterStore(config.adapter_store_uri())
        self._adapter_cache = config.adapter_cache_dir() / actor_id
        self._lock = threading.Lock()

    def ready(self) -> dict[str, Any]:
        return {"device": self._device, **self._store.identity.as_metadata()}

    def set_block(self, cube_id: str, memories: Sequence[BlockMemory]) -> BlockStats:
        """Make `memories` (current versions, in order) the cube's activation block and build
        its cache; a block that extends the cached one is prefilled only for the new memories.
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
                local = self._adapter_store.fetch(record, self._adapter_cache)
                self._engine.adapters.load(record.name, local)
        yield from self._engine.generate(request)

    def invalidate(self, cube_id: str, memory_ids: Sequence[str], deleted: bool) -> int:
        """After an update or delete in plaintext: drop caches holding the old versions; a
        deleted memory also leaves the cube's selection."""
        if deleted:
            with self._lock:
                gone = set(memory_ids)
                self._selection[cube_id] = [i for i in self._selection.get(cube_id, [])
                                            if i not in gone]
        return self._store.invalidate(cube_id, memory_ids)

    def stats(self) -> dict[str, Any]:
        return {"device": self._device, **self._store.stats()}


def create_kv_actor(config: MemosConfig, actor_id: str):
    """Get or create the named KV actor, on a GPU where the cluster has one."""
    has_gpu = ray.cluster_resources().get("GPU", 0) >= 1
    return ray.remote(KVCacheActor).options(
        name=kv_actor_name(actor_id),
        namespace=config.ray.namespace,
        lifetime="detached",
        get_if_exists=True,
        max_restarts=-1,
        max_task_retries=0,
        max_concurrency=config.activation.max_concurrency,
        num_cpus=0,
        # Half a GPU: the LoRA trainer takes the other half, so one GPU serves both.
        num_gpus=0.5 if has_gpu else 0,
    ).remote(config, actor_id)
