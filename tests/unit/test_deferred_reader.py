"""reader.mode deferred: an add is acknowledged before the reader runs, its memories stored
pending; the shard reads them when writes pause, after a restart too, without overwriting an
update made meanwhile. The queue's policy alone (no Milvus), then the tier on real milvus-lite
with the real reader and embedder."""
import threading
import time
from contextlib import contextmanager

import pytest

from memos_cluster.core.config import MemosConfig, with_overrides
from memos_cluster.core.errors import NotFound
from memos_cluster.core.structure import PENDING_READER, EntityQuery
from memos_cluster.core.types import CubeSpec, MemoryUpdate, NewMemory, SearchQuery
from memos_cluster.embed import make_embedder
from memos_cluster.tiers.plaintext.deferred import DeferredReads
from memos_cluster.tiers.plaintext.tier import PlaintextTier

from clocks import StepClock
from test_structure_tier import MAY_8, TURNS


class Recorder:
    """A reread that records its batches; fails the first `failures` calls, and finds the
    cubes in `missing` deleted."""

    def __init__(self, failures=0, missing=()):
        self.batches, self.failures, self.missing = [], failures, set(missing)
        self.lock = threading.Lock()

    def __call__(self, cube_id, ids):
        with self.lock:
            if cube_id in self.missing:
                raise NotFound(f"cube {cube_id} is gone")
            if self.failures:
                self.failures -= 1
                raise RuntimeError("milvus hiccup")
            self.batches.append((cube_id, list(ids)))


@contextmanager
def running(reread, **knobs):
    """A started DeferredReads over `reread`, stopped on the way out."""
    queue = DeferredReads(reread, **knobs)
    queue.start("test")
    try:
        yield queue
    finally:
        queue.stop()


def test_the_worker_waits_for_writes_to_pause_then_reads_in_batches():
    reread = Recorder()
    with running(reread, idle_s=0.3, max_pending=100, batch_size=2) as queue:
        with queue.writing():
            queue.enqueue("a", ["1", "2", "3"])
            queue.enqueue("a", ["2"])  # a retried add: counted once
            queue.enqueue("b", ["x"])
            assert queue.num_pending == 4
            time.sleep(0.4)
            assert reread.batches == []  # an add is running
        time.sleep(0.1)
        assert reread.batches == []  # the writes have not paused long enough
        assert queue.wait_drained(10)
        assert reread.batches == [("a", ["1", "2"]), ("a", ["3"]), ("b", ["x"])]


def test_a_backlog_past_the_bound_is_read_without_waiting_for_a_pause():
    reread = Recorder()
    with running(reread, idle_s=3600, max_pending=2, batch_size=10) as queue:
        with queue.writing():
            queue.enqueue("a", ["1", "2", "3"])
        deadline = time.monotonic() + 10
        while not reread.batches and time.monotonic() < deadline:
            time.sleep(0.01)
        assert reread.batches == [("a", ["1", "2", "3"])]


def test_a_failed_batch_is_retried_and_a_deleted_cube_dropped(monkeypatch):
    monkeypatch.setattr("memos_cluster.tiers.plaintext.deferred.RETRY_AFTER_S", 0.05)
    reread = Recorder(failures=1, missing={"deleted"})
    with running(reread, idle_s=0, max_pending=100, batch_size=10) as queue:
        queue.enqueue("a", ["1"])
        assert queue.wait_drained(10)
        assert reread.batches == [("a", ["1"])] and queue.num_errors == 1
        queue.enqueue("deleted", ["1"])
        assert queue.wait_drained(10)
        assert reread.batches == [("a", ["1"])] and queue.num_errors == 1
        queue.drop_cube("a")
        assert queue.num_pending == 0


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    return make_embedder(MemosConfig().embedder, str(tmp_path_factory.mktemp("models")))


@pytest.fixture
def config(tmp_path):
    # The reader in-process: a worker process a tier would cost seconds a test
    # (tests/unit/test_reader_process.py covers it).
    return with_overrides(MemosConfig(), {"reader.own_process": False,
                                          "data_dir": str(tmp_path), "reader.mode": "deferred",
                                          "reader.defer_idle_ms": 50})


def open_tier(config, embedder, *, reading=True):
    tier = PlaintextTier(config, "shard-0", embedder, clock=StepClock())
    tier.open()
    if not reading:
        tier.deferred.stop()  # so the test sees the pending state
    return tier


def test_an_add_is_acknowledged_pending_and_read_when_writes_pause(config, embedder):
    tier = open_tier(config, embedder, reading=False)
    try:
        tier.create_cube(CubeSpec("talk"))
        assert tier.add("talk", TURNS).num_inserted == len(TURNS)
        [pending] = tier.get("talk", ["t1"]).items
        assert pending.structure.reader == PENDING_READER and not pending.structure.entities
        assert "4 memories waiting for the reader" in tier.health().detail
        tier.deferred.start("test")
        assert tier.deferred.wait_drained(60)
        [read] = tier.get("talk", ["t1"]).items
        assert read.version == 1 and read.structure.times[0].label() == "7 May 2023"
        names = {e.name for e in tier.list_entities(EntityQuery("talk")).entities}
        assert {"Caroline", "Melanie"} <= names
        # The BM25 text was rewritten too: the resolved date finds the memory.
        hits = tier.search(SearchQuery(("talk",), "7 May 2023", top_k=1))
        assert hits[0].item.id == "t1"
        # Read later, a contradicted fact is superseded all the same.
        tier.add("talk", [NewMemory("Jon: I live in Paris.", id="paris", event_time_ms=MAY_8),
                          NewMemory("Jon: I moved to Rome.", id="rome",
                                    event_time_ms=MAY_8 + 86_400_000)])
        assert tier.deferred.wait_drained(60)
        (paris,) = tier.get("talk", ["paris"], ("superseded",)).items
        assert paris.superseded_by == "rome"
    finally:
        tier.close()


def test_a_restart_reads_what_was_left_pending_and_an_update_is_kept(config, embedder):
    tier = open_tier(config, embedder, reading=False)
    tier.create_cube(CubeSpec("talk"))
    tier.add("talk", TURNS)
    # Updated before the reader got to it: the update reads inline, and stays as it is.
    tier.update(MemoryUpdate("talk", "t3", "Melanie: I quit pottery classes last week."))
    tier.close()
    tier = open_tier(config, embedder)
    try:
        assert tier.deferred.wait_drained(60)
        items = {m.id: m for m in tier.get("talk", ["t1", "t3", "t4"]).items}
        assert items["t1"].structure.times[0].label() == "7 May 2023"
        assert items["t3"].version == 2 and "quit" in items["t3"].text
        assert items["t3"].structure.times[0].span == "last week"
        assert all(m.structure.reader != PENDING_READER for m in items.values())
        assert "0 memories waiting" in tier.health().detail
    finally:
        tier.close()
