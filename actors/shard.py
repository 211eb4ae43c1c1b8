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

from memos_cluster import logs
from memos_cluster.config import MemosConfig
from memos_cluster.embedder import make_embedder
from memos_cluster.errors import InternalError
from memos_cluster.layout import LayoutStore
from memos_cluster.logs import configure_json_logging
from memos_cluster.ownership import CubeGuard, GuardedShard
from memos_cluster.service import DispatchingShard
from memos_cluster.tiers.plaintext import PlaintextTier

from actors import metrics
from actors.handles import shard_actor_name


logger = logging.getLogger(__name__)

FLUSH_POLL_S = 0.5  # how often the flusher asks the tier whether a flush is due (seconds)
METRICS_INTERVAL_S = 15.0  # how often the items-per-cube gauges are refreshed (seconds)
# What a gateway may call through `serve`: the ShardPort, as DispatchingShard forwards it.
SHARD_PORT_METHODS = frozenset(n for n in vars(DispatchingShard) if not n.startswith("_"))
LOGGED_WRITES = frozenset({"create_cube", "delete_cube", "add", "update", "delete", "merge"})


class PlaintextShardActor:
    def __init__(self, config: MemosConfig, shard_id: str):
        self._shard_id = shard_id
        configure_json_logging(f"shard:{shard_id}")
        embedder = make_embedder(config.embedder, str(config.model_cache_dir()))
        self._tier = PlaintextTier(config, shard_id, embedder)
        self._tier.open()
        # The directory's last persisted layout, so a restarted shard refuses cubes it does not
        # own before the directory pushes anything (None on a brand-new cluster: the directory
        # pushes one before any gateway routes here).
        guard = CubeGuard(shard_id, LayoutStore(config.layout_path()).load())
        self._shard = GuardedShard(self._tier, guard, shared=config.storage.milvus_uri is not None)
        self._embedder_warm = False
        self._published: set[str] = set()  # cubes whose item gauge was last set non-zero
        # Flushes sealed segments in the background so writes never wait for it.
        self._flusher = threading.Thread(target=self._flush_loop, name="flusher", daemon=True)
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
        """A ShardPort call from a gateway (`ShardHandle`), run under the gateway's request id
        (`request`), which every log line of the call carries; writes are logged."""
        if method not in SHARD_PORT_METHODS:
            raise InternalError(f"{method!r} is not a shard operation")
        token = logs.request_id.set(request)
        try:
            started = time.perf_counter()
            result = getattr(self, method)(*args)
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
        if not self._embedder_warm:
            self._tier.warm_up()
            self._embedder_warm = True
        return self._shard_id

    # ---- requests: forwarders to the guarded tier (spelled out so Ray sees actor methods) ----
    def create_cube(self, spec):
        return self._shard.create_cube(spec)

    def delete_cube(self, cube_id):
        return self._shard.delete_cube(cube_id)

    def list_cubes(self):
        return self._shard.list_cubes()

    def get_cube(self, cube_id):
        return self._shard.get_cube(cube_id)

    def add(self, cube_id, items, vectors=None):
        return self._shard.add(cube_id, items, vectors)

    def search(self, query):
        return self._shard.search(query)

    def get(self, cube_id, ids):
        return self._shard.get(cube_id, ids)

    def update(self, update):
        return self._shard.update(update)

    def history(self, cube_id, memory_id):
        return self._shard.history(cube_id, memory_id)

    def delete(self, cube_id, ids):
        return self._shard.delete(cube_id, ids)

    def health(self):
        return self._tier.health()

    def near_duplicates(self, cube_id, memory_id, min_similarity):
        return self._shard.near_duplicates(cube_id, memory_id, min_similarity)

    def merge(self, cube_id, keep_id, duplicate_ids):
        return self._shard.merge(cube_id, keep_id, duplicate_ids)

    # ---- the directory's side: layout, moves, the shards view ------------------------------
    def set_layout(self, layout):
        self._shard.guard.set_layout(layout)

    def freeze_creates(self, frozen):
        self._shard.guard.freeze_creates(frozen)

    def fence(self, cube_id, timeout_s):
        self._shard.guard.fence(cube_id, timeout_s)

    def unfence(self, cube_id):
        self._shard.guard.unfence(cube_id)

    def export_cube(self, cube_id):
        return self._shard.export_cube(cube_id)

    def restore_cube(self, export):
        return self._shard.restore_cube(export)

    def import_cube(self, export):
        return self._tier.import_cube(export)

    def adopt_cube(self, cube_id):
        return self._tier.adopt_cube(cube_id)

    def drop_moved_cube(self, cube_id):
        return self._shard.drop_moved_cube(cube_id)

    def held_cubes(self):
        """The cubes held here (with shared storage: owned here). Who calls it: the directory,
        before a rebalance."""
        return self._shard.held_cubes()

    def stats(self):
        """(node id, current memories per cube held here). Who calls it: the directory, for
        `memos-cluster shards` and before a rebalance."""
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
