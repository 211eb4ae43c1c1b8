"""KVCacheActor: activation memory for the cubes the KV ring gives it.

A thin wrapper around `memos_cluster.activation` (model, KV store, engine). It asks Ray for a GPU
where the cluster has one and runs on the CPU otherwise. Its state is derived: on a restart it
reloads the model and starts with no caches (spill files of the previous life are removed, as
the ledger that named them is gone); the activation selection of each cube is re-sent by whoever
promotes memories (the ActivateMemories RPC and the scheduler).
"""
from __future__ import annotations

import time
from typing import Any, Iterator

import ray

from memos_cluster.core.config import MemosConfig
from memos_cluster.core.logs import configure_json_logging
from memos_cluster.tiers.activation.host import KVHost
from memos_cluster.tiers.parametric.store import AdapterStore

from actors import metrics
from actors.names import kv_actor_name

KV_BYTES_INTERVAL_S = 5.0  # the bytes-per-tier gauges are refreshed at most this often (s)



class KVCacheActor:
    """Forwards to a KVHost; the streaming method is a generator (num_returns="streaming")."""

    def __init__(self, config: MemosConfig, actor_id: str):
        configure_json_logging(f"kv:{actor_id}")
        self._host = KVHost(config, actor_id, AdapterStore(config.adapter_store_uri()))
        self._counted = {"lookups": 0, "hits": 0}
        self._bytes_at = float("-inf")  # when the bytes gauges were last set (monotonic s)

    def set_block(self, cube_id, memories):
        try:
            return self._host.set_block(cube_id, memories)
        finally:
            self._publish()

    def selection(self, cube_ids):
        return self._host.selection(cube_ids)

    def generate(self, request, adapters=()) -> Iterator[Any]:
        try:
            yield from self._host.generate(request, adapters)
        finally:
            self._publish()

    def chat(self, request) -> Iterator[Any]:
        try:
            yield from self._host.chat(request)
        finally:
            self._publish()

    def _publish(self) -> None:
        """Lookups since the last call, as metrics, after every request; bytes per tier at most
        every KV_BYTES_INTERVAL_S (summing them walks every cache under the store's lock)."""
        lookups, hits = self._host.lookups()
        metrics.inc("memos_kv_lookups_total", hits - self._counted["hits"], result="hit")
        metrics.inc("memos_kv_lookups_total", (lookups - hits)
                    - (self._counted["lookups"] - self._counted["hits"]), result="miss")
        self._counted = {"lookups": lookups, "hits": hits}
        if time.monotonic() - self._bytes_at >= KV_BYTES_INTERVAL_S:
            self._bytes_at = time.monotonic()
            stats = self._host.stats()
            for tier in ("device", "host", "disk"):
                metrics.set_gauge("memos_kv_bytes", stats[f"{tier}_bytes"], tier=tier)

    def invalidate(self, cube_id, memory_ids, deleted):
        return self._host.invalidate(cube_id, memory_ids, deleted)


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
