"""PlaintextShardActor: the single owner of one shard's Milvus storage.

A thin wrapper: it builds a `PlaintextTier`, opens it (which is also how it recovers after a
restart: all state is re-read from Milvus), and forwards calls. Ray restarts it on failure
(`max_restarts`), re-running `__init__`; calls in flight during a restart fail and the gateway
reports them as UNAVAILABLE.
"""
from __future__ import annotations

import logging
import threading
import time

import ray

from memos_cluster.config import MemosConfig
from memos_cluster.embedder import make_embedder
from memos_cluster.tiers.plaintext import PlaintextTier

from actors.handles import shard_actor_name


logger = logging.getLogger(__name__)

FLUSH_POLL_S = 0.5  # how often the flusher asks the tier whether a flush is due (seconds)


class PlaintextShardActor:
    def __init__(self, config: MemosConfig, shard_id: str):
        self._shard_id = shard_id
        embedder = make_embedder(config.embedder, str(config.model_cache_dir()))
        self._tier = PlaintextTier(config, shard_id, embedder)
        self._tier.open()
        self._embedder_warm = False
        # Flushes sealed segments in the background so writes never wait for it.
        self._flusher = threading.Thread(target=self._flush_loop, name="flusher", daemon=True)
        self._flusher.start()

    def _flush_loop(self) -> None:
        while True:
            time.sleep(FLUSH_POLL_S)
            try:
                self._tier.flush_if_due()
            except Exception:  # a failed flush costs search speed, not data: retry next round
                logger.exception("%s: background flush failed", self._shard_id)

    def ready(self) -> str:
        """Who calls it: the directory, after creating the actor; loads the embedding model so
        the first request does not pay for it."""
        if not self._embedder_warm:
            self._tier.warm_up()
            self._embedder_warm = True
        return self._shard_id

    # Forwarders. Spelled out (not generated) so Ray sees them as actor methods.
    def create_cube(self, spec):
        return self._tier.create_cube(spec)

    def delete_cube(self, cube_id):
        return self._tier.delete_cube(cube_id)

    def list_cubes(self):
        return self._tier.list_cubes()

    def get_cube(self, cube_id):
        return self._tier.get_cube(cube_id)

    def add(self, cube_id, items):
        return self._tier.add(cube_id, items)

    def search(self, query):
        return self._tier.search(query)

    def get(self, cube_id, ids):
        return self._tier.get(cube_id, ids)

    def update(self, update):
        return self._tier.update(update)

    def history(self, cube_id, memory_id):
        return self._tier.history(cube_id, memory_id)

    def delete(self, cube_id, ids):
        return self._tier.delete(cube_id, ids)

    def health(self):
        return self._tier.health()

    def near_duplicates(self, cube_id, memory_id, min_similarity):
        return self._tier.near_duplicates(cube_id, memory_id, min_similarity)

    def merge(self, cube_id, keep_id, duplicate_ids):
        return self._tier.merge(cube_id, keep_id, duplicate_ids)


def create_shard_actor(config: MemosConfig, shard_id: str):
    """Get or create the named, detached shard actor. Who calls it: the cube directory."""
    cluster = config.cluster
    return ray.remote(PlaintextShardActor).options(
        name=shard_actor_name(shard_id),
        namespace=config.ray.namespace,
        lifetime="detached",
        get_if_exists=True,
        max_restarts=cluster.shard_max_restarts,
        max_task_retries=0,  # a write is not retried blindly; the client decides
        max_concurrency=cluster.shard_max_concurrency,
        num_cpus=cluster.shard_num_cpus,
    ).remote(config, shard_id)
