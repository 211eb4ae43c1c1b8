"""What a shard may serve: ownership under the layout, and fences for cubes being moved.
Pure bookkeeping with one lock; the shard actor calls it around every request.

- A request for a cube the shard does not own under its layout raises `WrongShard`.
- While the directory moves a cube off this shard, writes to it raise `CubeMoving` (reads go on);
  `fence` waits for writes already running, so the copy that follows sees all of them.
- While the directory takes stock of every shard's cubes before a rebalance, new cubes are
  refused (`CubeMoving`) so none appears behind its back.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Iterator, Optional, Sequence

from memos_cluster.errors import CubeMoving, Unavailable, WrongShard
from memos_cluster.layout import Layout

RETRY_HINT = "retry in about a second"


class CubeGuard:
    def __init__(self, shard_id: str, layout: Optional[Layout] = None):
        self.shard_id = shard_id
        self._layout = layout  # None: not told yet; serves everything (a single-shard tool)
        self._fenced: set[str] = set()
        self._creates_frozen = False
        self._writing: dict[str, int] = {}  # cube -> writes in flight
        self._changed = threading.Condition()

    @property
    def layout(self) -> Optional[Layout]:
        return self._layout

    def set_layout(self, layout: Layout) -> None:
        """Who calls it: the shard actor, when the directory pushes a layout and at start.
        An older epoch than the one held is ignored (pushes may arrive out of order)."""
        with self._changed:
            if self._layout is None or layout.epoch >= self._layout.epoch:
                self._layout = layout

    def check(self, cube_ids: Sequence[str]) -> None:
        """Raise WrongShard unless this shard owns every cube (reads and writes)."""
        layout = self._layout
        if layout is None:
            return
        for cube_id in cube_ids:
            owner = layout.owner(cube_id)
            if owner != self.shard_id:
                raise WrongShard(f"cube {cube_id!r} is served by {owner}, not {self.shard_id} "
                                 f"(layout epoch {layout.epoch})", "cube_id")

    @contextmanager
    def writing(self, cube_id: str, creates: bool = False) -> Iterator[None]:
        """Around a write: owner check, fence check, and the in-flight count `fence` waits on."""
        with self._changed:
            self.check([cube_id])
            moving = self._layout is not None and cube_id in self._layout.moving
            if moving or cube_id in self._fenced or (creates and self._creates_frozen):
                raise CubeMoving(f"cube {cube_id!r} is moving between shards; {RETRY_HINT}",
                                 "cube_id")
            self._writing[cube_id] = self._writing.get(cube_id, 0) + 1
        try:
            yield
        finally:
            with self._changed:
                self._writing[cube_id] -= 1
                if not self._writing[cube_id]:
                    del self._writing[cube_id]
                self._changed.notify_all()

    def fence(self, cube_id: str, timeout_s: float) -> None:
        """Refuse new writes to cube_id and wait (up to timeout_s) for running ones to finish.
        Who calls it: the shard actor, for the directory, before it copies the cube away."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            self._fenced.add(cube_id)
            while self._writing.get(cube_id):
                left = deadline - time.monotonic()
                if left <= 0:
                    self._fenced.discard(cube_id)
                    raise Unavailable(f"writes to {cube_id!r} did not finish in {timeout_s} s")
                self._changed.wait(left)

    def unfence(self, cube_id: str) -> None:
        with self._changed:
            self._fenced.discard(cube_id)

    def freeze_creates(self, frozen: bool) -> None:
        with self._changed:
            self._creates_frozen = frozen

    def fenced(self) -> tuple[str, ...]:
        with self._changed:
            return tuple(sorted(self._fenced))
