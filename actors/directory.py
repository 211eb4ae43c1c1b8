"""CubeDirectoryActor: the named actor that owns the shard layout (memos_cluster/layout.py).

It loads the persisted layout (or builds the first one from configuration), makes sure every
shard actor exists and holds the layout, hands it to gateways (which cache it, route without a
hop through here, and ask again when a shard refuses a cube), and runs rebalances
(memos_cluster/rebalance.py) on a background thread, over `RayShards`. A directory restarted
mid-rebalance resumes it from the persisted layout when a gateway next calls `ensure_shards`.
"""
from __future__ import annotations

import threading
from typing import Optional, Sequence

import ray

from memos_cluster.core.config import MemosConfig
from memos_cluster.core.errors import FailedPrecondition, MemosError
from memos_cluster.core.types import ShardInfo, ShardsStatus
from memos_cluster.core.validation import check_id
from memos_cluster.placement.layout import Layout, LayoutStore
from memos_cluster.placement.rebalance import Rebalancer
from memos_cluster.placement.shardmap import shard_names

from actors.handles import NamedActor, ray_errors
from actors.names import DIRECTORY_NAME, shard_actor_name
from actors.shard import create_shard_actor


class RayShards:
    """memos_cluster.placement.rebalance.ShardOps over the shard actors (created on demand;
    each handle looked up once and kept until the actor is found dead). Shard-side steps go
    through each actor's `serve`, as gateway calls do."""

    def __init__(self, config: MemosConfig):
        self._config = config
        self._handles: dict[str, NamedActor] = {}

    def _named(self, shard_id: str) -> NamedActor:
        if shard_id not in self._handles:
            self._handles[shard_id] = NamedActor(
                shard_actor_name(shard_id), self._config.ray.namespace,
                create=lambda: create_shard_actor(self._config, shard_id))
        return self._handles[shard_id]

    def actor(self, shard_id: str):
        return self._named(shard_id).get()

    def _all(self, shard_ids: Sequence[str], method: str, *args) -> list:
        """A GuardedShard method (through each actor's `serve`) on several shards at once."""
        with ray_errors("a shard", method):
            return ray.get([self.actor(s).serve.remote(method, "", *args) for s in shard_ids])

    def _one(self, shard_id: str, method: str, *args):
        with ray_errors(shard_id, method, self._named(shard_id).forget):
            return ray.get(self.actor(shard_id).serve.remote(method, "", *args))

    def prepare(self, shard_ids):
        """Wait until every shard has opened its storage and loaded its embedder."""
        with ray_errors("a shard", "ready"):
            ray.get([self.actor(s).ready.remote() for s in shard_ids])

    def push(self, shard_ids, layout):
        self._all(shard_ids, "set_layout", layout)

    def freeze_creates(self, shard_ids, frozen):
        self._all(shard_ids, "freeze_creates", frozen)

    def holdings(self, shard_ids):
        return dict(zip(shard_ids, self._all(shard_ids, "held_cubes")))

    def fence(self, shard_id, cube_id, timeout_s):
        self._one(shard_id, "fence", cube_id, timeout_s)

    def unfence(self, shard_id, cube_id):
        self._one(shard_id, "unfence", cube_id)

    def copy(self, source, target, cube_id):
        # The export passes through this actor's object store; fine for cubes of up to a few
        # hundred thousand memories (about 2 KB each with its vector).
        export = self._one(source, "export_cube", cube_id)
        return self._one(target, "import_cube", export)

    def adopt(self, shard_id, cube_id):
        self._one(shard_id, "adopt_cube", cube_id)

    def drop(self, shard_id, cube_id):
        self._one(shard_id, "drop_moved_cube", cube_id)

    def retire(self, shard_id):
        ray.kill(self.actor(shard_id), no_restart=True)
        self._named(shard_id).forget()


class CubeDirectoryActor:
    def __init__(self, config: MemosConfig):
        self._config = config
        self._shards = RayShards(config)
        cluster = config.cluster
        self._rebalancer = Rebalancer(
            LayoutStore(config.layout_path()), self._shards,
            initial=lambda: Layout(shard_names(cluster.num_shards), cluster.virtual_nodes),
            shared_storage=config.storage.milvus_uri is not None,
            move_wait_s=cluster.move_wait_s)
        self._worker: Optional[threading.Thread] = None
        self._worker_lock = threading.Lock()

    def layout(self) -> Layout:
        """Who calls it: gateways, at start and when a shard refuses a cube (WrongShard)."""
        return self._rebalancer.current()

    def ensure_shards(self) -> Layout:
        """Create missing shard actors, wait until each has opened its storage, give each the
        layout, and resume an interrupted rebalance; the layout. Who calls it: every gateway
        replica (and bulk-ingest driver) at start-up; idempotent."""
        layout = self._rebalancer.current()
        self._shards.prepare(layout.live_shards())
        self._shards.push(layout.live_shards(), layout)
        if layout.pins:
            self._run_in_background()
        return layout

    def reshard(self, shard_ids: tuple[str, ...]) -> ShardsStatus:
        """Make `shard_ids` the ring's shards and start moving the cubes whose owner changes
        (in the background; `status()` shows progress). Who calls it: the gateway's Reshard."""
        for i, shard_id in enumerate(shard_ids):
            check_id(shard_id, f"shard_ids[{i}]", self._config.limits)
        with self._worker_lock:
            if self._worker is not None and self._worker.is_alive():
                raise FailedPrecondition("a rebalance is running; wait for it to finish")
            self._rebalancer.start(shard_ids)
        self._run_in_background()
        return self.status()

    def _run_in_background(self) -> None:
        with self._worker_lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._rebalancer.run_moves,
                                                name="rebalance", daemon=True)
                self._worker.start()

    def status(self) -> ShardsStatus:
        """Who calls it: the gateway's ListShards (`memos-cluster shards`)."""
        layout = self._rebalancer.current()
        # Asked all at once, so shards that are down cost one timeout, not one each.
        asked = {}
        for shard_id in layout.live_shards():
            try:
                asked[shard_id] = self._shards.actor(shard_id).stats.remote()
            except MemosError as exc:
                asked[shard_id] = exc
        infos = []
        for shard_id, ref in asked.items():
            in_ring = shard_id in layout.shard_ids
            try:
                if isinstance(ref, MemosError):
                    raise ref
                with ray_errors(shard_id, "stats"):
                    node_id, sizes = ray.get(ref, timeout=self._config.cluster.call_timeout_s)
                infos.append(ShardInfo(shard_id, node_id, in_ring, sizes))
            except (MemosError, ray.exceptions.GetTimeoutError) as exc:
                infos.append(ShardInfo(shard_id, "", in_ring, is_ok=False, detail=str(exc)))
        return ShardsStatus(layout.epoch, tuple(infos), len(layout.pins),
                            self._rebalancer.progress)


def get_or_create_directory(config: MemosConfig):
    return ray.remote(CubeDirectoryActor).options(
        name=DIRECTORY_NAME,
        namespace=config.ray.namespace,
        lifetime="detached",
        get_if_exists=True,
        max_restarts=-1,
        max_concurrency=8,  # layout() and status() are served while a rebalance runs
        num_cpus=0,
    ).remote(config)
