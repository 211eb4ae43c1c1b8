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
from typing import Any, Iterator, Optional, Sequence

from memos_cluster.core.errors import CubeMoving, FailedPrecondition, Unavailable, WrongShard
from memos_cluster.placement.layout import Layout

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


class GuardedShard:
    """A plaintext tier behind its ownership guard: everything a shard actor serves, for
    gateways and for the directory. The actor dispatches calls to it by name
    (`SHARD_OPERATIONS`), so this is the one place a shard operation is spelled out.
    `shared`: the tier's Milvus is shared with the other shards, so it sees cubes it does not
    own and never copies or drops data when cubes move."""

    def __init__(self, tier: Any, guard: CubeGuard, shared: bool = False):
        self.tier, self.guard, self.shared = tier, guard, shared

    # ---- requests --------------------------------------------------------------------------
    def create_cube(self, spec):
        with self.guard.writing(spec.cube_id, creates=True):
            return self.tier.create_cube(spec)

    def delete_cube(self, cube_id):
        with self.guard.writing(cube_id):
            return self.tier.delete_cube(cube_id)

    def list_cubes(self):
        return self.tier.list_cubes()

    def health(self):
        return self.tier.health()

    def get_cube(self, cube_id):
        self.guard.check([cube_id])
        return self.tier.get_cube(cube_id)

    def add(self, cube_id, items, vectors=None):
        with self.guard.writing(cube_id):
            return self.tier.add(cube_id, items, vectors)

    def search(self, query, vector=None):
        self.guard.check(query.cube_ids)
        return self.tier.search(query, vector)

    def embed_query(self, query: str):
        return self.tier.embed_query(query)

    def embed_texts(self, texts: list[str]):
        return self.tier.embed_texts(texts)

    def get(self, cube_id, ids, states=("active",)):
        self.guard.check([cube_id])
        return self.tier.get(cube_id, ids, states)

    def list_memories(self, query):
        self.guard.check([query.cube_id])
        return self.tier.list_memories(query)

    def update(self, update):
        with self.guard.writing(update.cube_id):
            return self.tier.update_settled(update)

    def feedback(self, feedback):
        with self.guard.writing(feedback.cube_id):
            return self.tier.feedback(feedback)

    def expire_due(self):
        """Expire what is due in the cubes this shard serves now, each inside its write guard;
        a cube another shard serves or being moved is left to its owner's next cycle."""
        expired = {}
        for cube_id in self.tier.lifecycle.due_cubes():
            try:
                with self.guard.writing(cube_id):
                    expired[cube_id] = self.tier.expire(cube_id)
            except (WrongShard, CubeMoving):
                continue
        return expired

    def history(self, cube_id, memory_id):
        self.guard.check([cube_id])
        return self.tier.history(cube_id, memory_id)

    def delete(self, cube_id, ids):
        with self.guard.writing(cube_id):
            return self.tier.delete(cube_id, ids)

    def near_duplicates(self, cube_id, memory_id, min_similarity):
        self.guard.check([cube_id])
        return self.tier.duplicates.near_duplicates(cube_id, memory_id, min_similarity)

    def merge(self, cube_id, keep_id, duplicate_ids):
        with self.guard.writing(cube_id):
            merged = self.tier.duplicates.merge(cube_id, keep_id, duplicate_ids)
        self.tier.structure.forget(cube_id)  # the graph reloads without the duplicates
        return merged

    def list_entities(self, query):
        self.guard.check([query.cube_id])
        return self.tier.list_entities(query)

    def get_entity(self, cube_id, entity_ref):
        self.guard.check([cube_id])
        return self.tier.get_entity(cube_id, entity_ref)

    def reindex(self, cube_id, after_id, batch_size):
        with self.guard.writing(cube_id):
            return self.tier.reindex(cube_id, after_id, batch_size)

    def export_cube(self, cube_id):
        self.guard.check([cube_id])
        return self.tier.transfer.export_cube(cube_id)

    def restore_cube(self, export):
        """A cube from an export (memos-cluster import); refused if it exists."""
        with self.guard.writing(export.cube_id, creates=True):
            num_rows = self.tier.transfer.import_cube(export, must_be_new=True)
        self.tier.imported(export.cube_id)
        return num_rows

    # ---- the directory's side: layout, moves, the shards view -------------------------------
    def set_layout(self, layout: Layout) -> None:
        self.guard.set_layout(layout)

    def freeze_creates(self, frozen: bool) -> None:
        self.guard.freeze_creates(frozen)

    def fence(self, cube_id: str, timeout_s: float) -> None:
        self.guard.fence(cube_id, timeout_s)

    def unfence(self, cube_id: str) -> None:
        self.guard.unfence(cube_id)

    def import_cube(self, export) -> int:
        """A moved cube's copy arriving here (a partial earlier copy is replaced)."""
        num_rows = self.tier.transfer.import_cube(export)
        self.tier.imported(export.cube_id)
        return num_rows

    def adopt_cube(self, cube_id: str) -> None:
        self.tier.transfer.adopt_cube(cube_id)

    def drop_moved_cube(self, cube_id: str) -> int:
        """Delete a cube's rows after its move; refused while this shard still serves it."""
        layout = self.guard.layout
        if self.shared or layout is None or layout.owner(cube_id) == self.guard.shard_id:
            raise FailedPrecondition(f"{self.guard.shard_id} still serves {cube_id!r} (or "
                                     "shares its storage); not dropped")
        self.guard.unfence(cube_id)
        return self.tier.delete_cube(cube_id)

    def held_cubes(self) -> list[str]:
        """The cubes held here (with shared storage, where every shard sees every cube: those
        owned here)."""
        cubes = self.tier.cube_ids()
        if self.shared and self.guard.layout is not None:
            cubes = [c for c in cubes if self.guard.layout.owner(c) == self.guard.shard_id]
        return cubes

    def cube_sizes(self) -> dict[str, int]:
        """Current memories per cube held here (with shared storage: per cube owned here)."""
        return self.tier.cube_sizes(self.held_cubes())


# What a shard actor serves, by name: every public method of GuardedShard.
SHARD_OPERATIONS = frozenset(n for n in vars(GuardedShard) if not n.startswith("_"))
