"""CubeDirectoryActor: the named actor that owns the shard layout (memos_cluster/layout.py).

It loads the persisted layout (or builds the first one from configuration), makes sure every
shard actor exists and holds the layout, hands it to gateways (which cache it, route without a
hop through here, and ask again when a shard refuses a cube), and runs rebalances:

1. freeze cube creation on every shard, list what each holds, pin every cube whose ring owner
   changes where it is, persist and push the new layout, unfreeze;
2. move each pinned cube: mark it moving (persisted and pushed: its shard refuses writes), wait
   for writes in flight, export it, import it on the target (which checks row counts), unpin it
   (persisted and pushed), then drop the source's copy.

A directory restarted mid-rebalance resumes from the persisted layout; a copy is redone from the
start. Reads go on throughout; writes to a cube wait (gateways retry) only while it is copied.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Optional

import ray

from memos_cluster.config import MemosConfig
from memos_cluster.errors import FailedPrecondition, InvalidArgument, MemosError
from memos_cluster.layout import Layout, LayoutStore, Move, placement_of
from memos_cluster.shardmap import shard_names
from memos_cluster.types import Rebalance, ShardInfo, ShardsStatus
from memos_cluster.validation import check_id

from actors.handles import DIRECTORY_NAME, ray_errors
from actors.shard import create_shard_actor

logger = logging.getLogger(__name__)


class CubeDirectoryActor:
    def __init__(self, config: MemosConfig):
        self._config = config
        self._store = LayoutStore(config.layout_path())
        self._layout: Optional[Layout] = None  # loaded on first use
        self._lock = threading.RLock()  # one layout change at a time
        self._progress = Rebalance()
        self._worker: Optional[threading.Thread] = None

    # ---- layout ----------------------------------------------------------------------------
    def _current(self) -> Layout:
        with self._lock:
            if self._layout is None:
                self._layout = self._store.load()
                if self._layout is None:
                    cluster = self._config.cluster
                    self._layout = Layout(shard_names(cluster.num_shards), cluster.virtual_nodes)
                    self._store.save(self._layout)
            return self._layout

    def layout(self) -> Layout:
        """Who calls it: gateways, at start and when a shard refuses a cube (WrongShard)."""
        return self._current()

    def _shard(self, shard_id: str):
        return create_shard_actor(self._config, shard_id)  # get_if_exists

    def _commit(self, layout: Layout) -> None:
        """Persist, then push to every shard that may be asked about anything (a shard that
        just left the layout too: it must stop serving what it handed over)."""
        with self._lock:
            before = self._current()
            self._store.save(layout)
            self._layout = layout
        names = dict.fromkeys(before.live_shards() + layout.live_shards())
        shards = [self._shard(s) for s in names]
        with ray_errors("a shard", "set_layout"):
            ray.get([s.set_layout.remote(layout) for s in shards])

    def ensure_shards(self) -> tuple[str, ...]:
        """Create missing shard actors, wait until each has opened its storage, give each the
        layout, and resume an interrupted rebalance. Who calls it: every gateway replica at
        start-up; idempotent."""
        layout = self._current()
        shards = [self._shard(s) for s in layout.live_shards()]
        with ray_errors("a shard", "ready"):
            ray.get([s.ready.remote() for s in shards])
            ray.get([s.set_layout.remote(layout) for s in shards])
        if layout.pins:
            self._start_worker()
        return layout.live_shards()

    # ---- rebalancing -----------------------------------------------------------------------
    def reshard(self, shard_ids: tuple[str, ...]) -> ShardsStatus:
        """Make `shard_ids` the ring's shards and start moving the cubes whose owner changes
        (in the background; `status()` shows progress). Who calls it: the gateway's Reshard."""
        shard_ids = tuple(shard_ids)
        if not shard_ids or len(set(shard_ids)) != len(shard_ids):
            raise InvalidArgument("name one or more distinct shard ids", "shard_ids")
        for i, shard_id in enumerate(shard_ids):
            check_id(shard_id, f"shard_ids[{i}]", self._config.limits)
        with self._lock:
            if self._worker is not None and self._worker.is_alive():
                raise FailedPrecondition("a rebalance is running; wait for it to finish")
            old = self._current()
            if old.pins:
                raise FailedPrecondition(f"{len(old.pins)} cubes still wait to move")
            everyone = tuple(dict.fromkeys(old.live_shards() + shard_ids))
            actors = {s: self._shard(s) for s in everyone}
            with ray_errors("a shard", "ready"):
                ray.get([a.ready.remote() for a in actors.values()])
                ray.get([a.set_layout.remote(old) for a in actors.values()])
                ray.get([a.freeze_creates.remote(True) for a in actors.values()])
            try:
                holdings = self._holdings(everyone)
                placement, _ = placement_of(old, holdings)
                self._commit(old.resharded(shard_ids, placement))
            finally:
                ray.get([a.freeze_creates.remote(False) for a in actors.values()])
            self._progress = Rebalance("running", len(self._layout.pins), 0,
                                       started_s=time.time())
            self._start_worker()
        return self.status()

    def _holdings(self, shard_ids) -> dict[str, list[str]]:
        with ray_errors("a shard", "stats"):
            stats = ray.get([self._shard(s).stats.remote() for s in shard_ids])
        return {s: list(cubes) for s, (_, cubes) in zip(shard_ids, stats)}

    def _start_worker(self) -> None:
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                if self._progress.state != "running":
                    self._progress = Rebalance("running", len(self._current().pins),
                                               started_s=time.time())
                self._worker = threading.Thread(target=self._run_moves, name="rebalance",
                                                daemon=True)
                self._worker.start()

    def _run_moves(self) -> None:
        try:
            for move in self._current().moves():
                self._progress = replace(self._progress, current=move.cube_id)
                self._move(move)
                self._progress = replace(self._progress, moves_done=self._progress.moves_done + 1)
            self._retire_empty_shards()
            self._progress = replace(self._progress, state="done", current="",
                                     finished_s=time.time())
        except (MemosError, ray.exceptions.RayError) as exc:
            logger.exception("rebalance stopped")
            self._progress = replace(self._progress, state="failed", error=str(exc),
                                     finished_s=time.time())

    def _move(self, move: Move) -> None:
        source, target = self._shard(move.source), self._shard(move.target)
        self._commit(self._current().begin_move(move.cube_id))
        try:
            with ray_errors(move.source, "export_cube"):
                ray.get(source.fence.remote(move.cube_id, self._config.cluster.move_wait_s))
                export = ray.get(source.export_cube.remote(move.cube_id))
            with ray_errors(move.target, "import_cube"):
                ray.get(target.import_cube.remote(export))
        except BaseException:
            self._commit(self._current().abort_move(move.cube_id))
            ray.get(source.unfence.remote(move.cube_id))
            raise
        self._commit(self._current().moved(move.cube_id))
        with ray_errors(move.source, "drop_moved_cube"):
            ray.get(source.drop_moved_cube.remote(move.cube_id))
        logger.info("moved cube %s: %s -> %s (%d rows)", move.cube_id, move.source,
                    move.target, export.num_rows)

    def _retire_empty_shards(self) -> None:
        """Shards that left the ring and hold nothing any more: their actors stop (their data
        directories stay, empty, for an operator to remove)."""
        layout = self._current()
        for shard_id, cubes in self._holdings(layout.live_shards()).items():
            if shard_id in layout.shard_ids:
                continue
            if cubes:
                raise FailedPrecondition(f"{shard_id} left the ring but holds {cubes[:5]}")
            ray.kill(self._shard(shard_id), no_restart=True)

    # ---- the shards view -------------------------------------------------------------------
    def status(self) -> ShardsStatus:
        """Who calls it: the gateway's ListShards (`memos-cluster shards`)."""
        layout = self._current()
        infos = []
        for shard_id in layout.live_shards():
            try:
                with ray_errors(shard_id, "stats"):
                    node_id, sizes = ray.get(self._shard(shard_id).stats.remote(),
                                             timeout=self._config.cluster.call_timeout_s)
                infos.append(ShardInfo(shard_id, node_id, shard_id in layout.shard_ids, sizes))
            except (MemosError, ray.exceptions.GetTimeoutError) as exc:
                infos.append(ShardInfo(shard_id, "", shard_id in layout.shard_ids,
                                       is_ok=False, detail=str(exc)))
        return ShardsStatus(layout.epoch, tuple(infos), len(layout.pins), self._progress)


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
