"""Reading after the acknowledgement (`reader.mode: deferred`).

An add in deferred mode stores its memories with a pending structure (PENDING_STRUCTURE: no
dates, entities or relations yet) and returns as soon as Milvus acknowledged them; this worker
runs the memory reader over them afterwards, when the shard's writes pause, and rewrites each
one with its structure (same version, same vector: StructureIndex.reread). So a burst of
writes is acknowledged at the reader-off rate and its structure follows a moment later, as
Graphiti's and mem0's asynchronous modes do. Nothing is lost on a crash: a pending memory is
marked so in Milvus, and the tier's open() enqueues every marked one again.

Until its structure arrives a memory is searchable by its words and meaning, without the date
and entity boosts, and shows no dates or entities.

Who uses it: PlaintextTier (each add runs inside `writing()` and enqueues; open starts the worker, close
stops it; health reports the backlog). Bookkeeping only: the reading and writing is the
`reread` callable's.
"""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Optional, Sequence

from memos_cluster.core.errors import NotFound

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5.0  # a failed batch waits this long before it is tried again


class DeferredReads:
    """The memories waiting for the reader, per cube in arrival order, and the worker thread.

    The worker reads a batch once no write arrived for `idle_s` seconds, or at once while more
    than `max_pending` memories wait, so the backlog of a sustained ingest stays bounded (the
    writes then share the CPU with the reader, as in inline mode)."""

    def __init__(self, reread: Callable[[str, list[str]], object], *, idle_s: float,
                 max_pending: int, batch_size: int,
                 clock: Callable[[], float] = time.monotonic):
        self._reread = reread
        self._idle_s, self._max_pending, self._batch_size = idle_s, max_pending, batch_size
        self._clock = clock
        self._pending: dict[str, dict[str, None]] = {}  # cube -> ids, oldest first
        self._num_pending = 0
        self._in_flight = 0  # memories the worker has taken and not yet written
        self._last_write = float("-inf")
        self._num_writing = 0  # adds running now
        self._retry_at = float("-inf")
        self._cond = threading.Condition()
        self._thread: Optional[threading.Thread] = None
        self._stopping = False
        self.num_errors = 0  # batches that failed (retried after RETRY_AFTER_S)

    # ---- the tier's side -----------------------------------------------------------------
    @contextmanager
    def writing(self) -> Iterator[None]:
        """Around each add (the worker waits until none runs and none ended for idle_s: an
        add's embedding would otherwise share its cores with the reader)."""
        with self._cond:
            self._num_writing += 1
        try:
            yield
        finally:
            with self._cond:
                self._num_writing -= 1
                self._last_write = self._clock()
                self._cond.notify_all()

    def enqueue(self, cube_id: str, memory_ids: Sequence[str]) -> None:
        """Memories stored with a pending structure. Who calls it: the tier's add, after Milvus
        acknowledged them, and open(), for the ones a previous run left pending."""
        with self._cond:
            ids = self._pending.setdefault(cube_id, {})
            before = len(ids)
            ids.update(dict.fromkeys(memory_ids))
            self._num_pending += len(ids) - before
            self._cond.notify_all()

    def drop_cube(self, cube_id: str) -> None:
        """Who calls it: the tier, when a cube is deleted or moved away."""
        with self._cond:
            self._num_pending -= len(self._pending.pop(cube_id, {}))

    @property
    def num_pending(self) -> int:
        """Memories waiting for the reader, including the batch being read."""
        with self._cond:
            return self._num_pending + self._in_flight

    def wait_drained(self, timeout_s: float) -> bool:
        """Block until nothing waits (True) or `timeout_s` passed (False). Who calls it: tests
        and the gateway bench, to time how long structure takes to follow a burst."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._num_pending + self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
            return True

    def start(self, name: str) -> None:
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name=name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop after the batch in hand; what still waits stays marked in Milvus."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()

    # ---- the worker ----------------------------------------------------------------------
    def _take(self) -> Optional[tuple[str, list[str]]]:
        """The next batch (one cube's oldest ids), once the writes paused; None: stopping."""
        with self._cond:
            while not self._stopping:
                now = self._clock()
                if self._num_pending:
                    ready = max(self._last_write + self._idle_s, self._retry_at)
                    paused = now >= ready and not self._num_writing
                    if paused or (self._num_pending > self._max_pending
                                  and now >= self._retry_at):
                        cube_id = next(iter(self._pending))
                        ids = list(self._pending[cube_id])[: self._batch_size]
                        for memory_id in ids:
                            del self._pending[cube_id][memory_id]
                        if not self._pending[cube_id]:
                            del self._pending[cube_id]
                        self._num_pending -= len(ids)
                        self._in_flight = len(ids)
                        return cube_id, ids
                    self._cond.wait(max(ready - now, 0.01))
                else:
                    self._cond.wait()
            return None

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            cube_id, ids = batch
            try:
                self._reread(cube_id, ids)
            except NotFound:
                pass  # the cube was deleted meanwhile: its memories went with it
            except Exception:  # noqa: BLE001 -- the worker must outlive a failed batch
                # The memories stay marked pending in Milvus and go back in the queue: a
                # Milvus hiccup delays their structure, never loses it (health shows errors).
                self.num_errors += 1
                log.exception("deferred read of %d memories of %s failed; retrying in %.0f s",
                              len(ids), cube_id, RETRY_AFTER_S)
                with self._cond:
                    self._retry_at = self._clock() + RETRY_AFTER_S
                self.enqueue(cube_id, ids)
            finally:
                with self._cond:
                    self._in_flight = 0
                    self._cond.notify_all()
