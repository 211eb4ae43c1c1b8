"""PlaintextShardActor: the single owner of one shard's Milvus storage.

A thin wrapper: it builds a `PlaintextTier`, opens it (which is also how it recovers after a
restart: all state is re-read from Milvus), puts it behind its ownership guard
(`GuardedShard`) and dispatches every call, from gateways and from the directory, to that by
name (`serve`). Ray restarts it on failure
(`max_restarts`), re-running `__init__`; calls in flight during a restart fail and the gateway
reports them as UNAVAILABLE.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Optional

import ray

from memos_cluster.core import logs
from memos_cluster.core.config import MemosConfig
from memos_cluster.core.errors import InternalError
from memos_cluster.core.logs import configure_json_logging
from memos_cluster.embed import make_embedder
from memos_cluster.placement.layout import LayoutStore
from memos_cluster.placement.ownership import SHARD_OPERATIONS, CubeGuard, GuardedShard
from memos_cluster.tiers.plaintext.tier import PlaintextTier

from actors import metrics
from actors.names import shard_actor_name
from memos_cluster.core.types import ShardHealth
from memos_cluster.tiers.plaintext.schema import StorageRefused


logger = logging.getLogger(__name__)

FLUSH_POLL_S = 0.5  # how often the flusher asks the tier whether a flush is due (seconds)
METRICS_INTERVAL_S = 15.0  # how often the items-per-cube gauges are refreshed (seconds)
LOGGED_WRITES = frozenset({"create_cube", "delete_cube", "add", "update", "delete", "merge"})
# What a shard whose storage was refused still does: the directory's layout bookkeeping.
GUARD_OPERATIONS = frozenset({"set_layout", "freeze_creates", "fence", "unfence"})


class PlaintextShardActor:
    def __init__(self, config: MemosConfig, shard_id: str):
        self._shard_id = shard_id
        configure_json_logging(f"shard:{shard_id}")
        embedder = make_embedder(config.embedder, str(config.model_cache_dir()))
        self._tier = PlaintextTier(config, shard_id, embedder)
        # Storage of another engine is refused for good (restarting would not change it): the
        # actor stays up and answers every storage call, and Health, with the reason.
        self._refused: Optional[StorageRefused] = None
        try:
            self._tier.open()
        except StorageRefused as exc:
            logger.error("%s: %s", shard_id, exc.message)
            self._refused = exc
        # The directory's last persisted layout, so a restarted shard refuses cubes it does not
        # own before the directory pushes anything (None on a brand-new cluster: the directory
        # pushes one before any gateway routes here).
        guard = CubeGuard(shard_id, LayoutStore(config.layout_path()).load())
        self._shard = GuardedShard(self._tier, guard, shared=config.storage.milvus_uri is not None)
        self._embedder_warm = False
        self._published: set[str] = set()  # cubes whose item gauge was last set non-zero
        # Flushes sealed segments in the background so writes never wait for it.
        self._flusher = threading.Thread(target=self._flush_loop, name="flusher", daemon=True)
        if self._refused is None:
            self._flusher.start()

    def _flush_loop(self) -> None:
        """Flushes when due; refreshes the item gauges every METRICS_INTERVAL_S."""
        measured = 0.0
        while True:
            time.sleep(FLUSH_POLL_S)
            try:
                self._tier.flush_if_due()
                if time.monotonic() - measured >= METRICS_INTERVAL_S:
                    self._publish_sizes()
                    measured = time.monotonic()
            except Exception:  # a failed flush costs search speed, not data: retry next round
                logger.exception("%s: background flush failed", self._shard_id)

    def _publish_sizes(self) -> None:
        """Items per cube held here; cubes gone since the last time (deleted, moved) go to 0."""
        sizes = self._shard.cube_sizes()
        for gone in self._published - sizes.keys():
            sizes[gone] = 0
        self._published = {c for c, n in sizes.items() if n}
        metrics.set_gauges("memos_cube_items", {(c, self._shard_id): n for c, n in sizes.items()},
                           ("cube", "shard"))
        metrics.set_gauge("memos_shard_items", sum(sizes.values()), shard=self._shard_id)

    def serve(self, method: str, request: str, *args):
        """A GuardedShard call from a gateway (`ShardHandle`) or the directory (`RayShards`),
        run under the caller's request id (`request`), which every log line of the call
        carries; writes are logged."""
        if method not in SHARD_OPERATIONS:
            raise InternalError(f"{method!r} is not a shard operation")
        if self._refused is not None:
            if method == "health":
                return ShardHealth(self._shard_id, is_ok=False, detail=self._refused.message)
            if method not in GUARD_OPERATIONS:
                raise self._refused
        token = logs.request_id.set(request)
        try:
            started = time.perf_counter()
            result = getattr(self._shard, method)(*args)
            if method in LOGGED_WRITES:
                logger.info("%s %s %s in %.1f ms", self._shard_id, method,
                            args[0] if args and isinstance(args[0], str) else "",
                            logs.elapsed_ms(started))
            return result
        finally:
            logs.request_id.reset(token)

    def ready(self) -> str:
        """Who calls it: the directory, after creating the actor; loads the embedding model so
        the first request does not pay for it."""
        if not self._embedder_warm and self._refused is None:
            self._tier.warm_up()
            self._embedder_warm = True
        return self._shard_id

    def stats(self):
        """(node id, current memories per cube held here). Who calls it: the directory, for
        `memos-cluster shards` and before a rebalance."""
        if self._refused is not None:
            raise self._refused
        return ray.get_runtime_context().get_node_id(), self._shard.cube_sizes()


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
        resources=dict(cluster.shard_resources),
        # SPREAD puts each new shard on the least-loaded feasible node; a restarted shard
        # (node lost) goes wherever its resources fit.
        scheduling_strategy="SPREAD" if cluster.placement == "spread" else "DEFAULT",
    ).remote(config, shard_id)
