"""Resharding: the layout changes and the cubes whose owner changes move, online.

1. `start(shard_ids)`: freeze cube creation on every shard, list what each holds, pin every cube
   whose ring owner changes where it is, persist and push the new layout, unfreeze. Nothing is
   routed anywhere new yet.
2. `run_moves()`: for each pinned cube, mark it moving (persisted and pushed: its shard refuses
   writes), wait for writes in flight, copy it (embedded storage: export, import with a row-count
   check; a shared Milvus server: the target just adopts it, no data moves), unpin it (persisted
   and pushed), then drop the source's copy (embedded storage only).

Every step is idempotent from persisted state: a directory restarted mid-way calls `run_moves()`
again and a copy is redone from the start (the import first clears a partial one). A failed copy
lifts the write stop and leaves the cube pinned where it is, still served.

Who calls it: the cube directory actor (actors/directory.py), which implements `ShardOps` over
the shard actors and runs `run_moves` on a thread; the tests, over in-process shards.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Callable, Optional, Protocol, Sequence

from memos_cluster.core.errors import FailedPrecondition, InvalidArgument
from memos_cluster.core.types import Rebalance
from memos_cluster.placement.layout import Layout, LayoutStore, Move, placement_of

logger = logging.getLogger(__name__)


class ShardOps(Protocol):
    """The shard-side steps, addressed by shard id."""

    def prepare(self, shard_ids: Sequence[str]) -> None: ...  # exist, storage open
    def push(self, shard_ids: Sequence[str], layout: Layout) -> None: ...
    def freeze_creates(self, shard_ids: Sequence[str], frozen: bool) -> None: ...
    def holdings(self, shard_ids: Sequence[str]) -> dict[str, list[str]]: ...  # cubes held
    def fence(self, shard_id: str, cube_id: str, timeout_s: float) -> None: ...
    def unfence(self, shard_id: str, cube_id: str) -> None: ...
    def copy(self, source: str, target: str, cube_id: str) -> int: ...  # rows copied
    def adopt(self, shard_id: str, cube_id: str) -> None: ...  # shared storage: take it over
    def drop(self, shard_id: str, cube_id: str) -> None: ...  # after the move
    def retire(self, shard_id: str) -> None: ...  # left the ring, holds nothing


class Rebalancer:
    def __init__(self, store: LayoutStore, shards: ShardOps, initial: Callable[[], Layout],
                 shared_storage: bool, move_wait_s: float,
                 clock: Callable[[], float] = time.time):
        self._store = store
        self._shards = shards
        self._initial = initial  # the first layout, from configuration
        self._shared = shared_storage
        self._move_wait_s = move_wait_s
        self._clock = clock
        self._layout: Optional[Layout] = None  # loaded on first use
        self._lock = threading.RLock()  # one layout change at a time
        self.progress = Rebalance()
        self._leaving: set[str] = set()  # shards leaving the ring in this rebalance

    def current(self) -> Layout:
        with self._lock:
            if self._layout is None:
                self._layout = self._store.load()
                if self._layout is None:
                    self._layout = self._initial()
                    self._store.save(self._layout)
            return self._layout

    def commit(self, layout: Layout) -> None:
        """Persist, then push to every shard that may be asked about anything (a shard that
        just left the layout too: it must stop serving what it handed over)."""
        with self._lock:
            before = self.current()
            self._store.save(layout)
            self._layout = layout
        self._shards.push(tuple(dict.fromkeys(before.live_shards() + layout.live_shards())),
                          layout)

    def start(self, shard_ids: Sequence[str]) -> Layout:
        """Phase 1 (see module doc): the new layout, pinned; then call `run_moves`."""
        shard_ids = tuple(shard_ids)
        if not shard_ids or len(set(shard_ids)) != len(shard_ids):
            raise InvalidArgument("name one or more distinct shard ids", "shard_ids")
        with self._lock:
            old = self.current()
            if old.pins:
                raise FailedPrecondition(f"{len(old.pins)} cubes still wait to move; "
                                         "let that rebalance finish first")
            everyone = tuple(dict.fromkeys(old.live_shards() + shard_ids))
            self._shards.prepare(everyone)
            self._shards.push(everyone, old)
            self._shards.freeze_creates(everyone, True)
            try:
                placement, _ = placement_of(old, self._shards.holdings(everyone))
                new = old.resharded(shard_ids, placement)
                self.commit(new)
            finally:
                self._shards.freeze_creates(everyone, False)
            self.progress = Rebalance("running", len(new.pins), started_s=self._clock())
            self._leaving = set(old.live_shards()) - set(shard_ids)
            return new

    def run_moves(self) -> Rebalance:
        """Phase 2 (see module doc), until no cube is pinned; also resumes after a restart."""
        if self.progress.state != "running":
            self.progress = Rebalance("running", len(self.current().pins),
                                      started_s=self._clock())
        moves = self.current().moves()
        self._leaving |= {m.source for m in moves if m.source not in self.current().shard_ids}
        try:
            for move in moves:
                self.progress = replace(self.progress, current=move.cube_id)
                self._move(move)
                self.progress = replace(self.progress, moves_done=self.progress.moves_done + 1)
            self._retire_empty_shards()
        except Exception as exc:  # reported through progress (the caller's thread ends here)
            logger.exception("rebalance stopped")
            self.progress = replace(self.progress, state="failed", current="",
                                    error=f"{type(exc).__name__}: {exc}",
                                    finished_s=self._clock())
            return self.progress
        self.progress = replace(self.progress, state="done", current="", finished_s=self._clock())
        return self.progress

    def _move(self, move: Move) -> None:
        self.commit(self.current().begin_move(move.cube_id))
        try:
            self._shards.fence(move.source, move.cube_id, self._move_wait_s)
            if self._shared:
                self._shards.adopt(move.target, move.cube_id)
                rows = 0
            else:
                rows = self._shards.copy(move.source, move.target, move.cube_id)
        except BaseException:
            self.commit(self.current().abort_move(move.cube_id))
            self._shards.unfence(move.source, move.cube_id)
            raise
        self.commit(self.current().moved(move.cube_id))
        if self._shared:
            self._shards.unfence(move.source, move.cube_id)
        else:
            self._shards.drop(move.source, move.cube_id)
        logger.info("moved cube %s: %s -> %s (%d rows)", move.cube_id, move.source,
                    move.target, rows)

    def _retire_empty_shards(self) -> None:
        leaving = sorted(s for s in self._leaving if s not in self.current().live_shards())
        for shard_id, cubes in self._shards.holdings(leaving).items():
            if cubes:
                raise FailedPrecondition(f"{shard_id} left the ring but holds {cubes[:5]}")
            self._shards.retire(shard_id)
        self._leaving.clear()
