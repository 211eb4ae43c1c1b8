"""Flushes never overlap other Milvus calls: the lock's semantics, and the race it closes
(milvus-lite answers a search racing a flush of its rows with nothing)."""
import threading
import time

import numpy as np

from memos_cluster.core.config import MemosConfig, with_overrides
from memos_cluster.core.types import CubeSpec, NewMemory, SearchMode, SearchQuery
from memos_cluster.embed import make_embedder
from memos_cluster.tiers.plaintext.lock import SharedExclusiveLock
from memos_cluster.tiers.plaintext.tier import PlaintextTier


def test_exclusive_waits_for_shared_and_goes_before_new_shared():
    lock, order = SharedExclusiveLock(), []
    held, release = threading.Event(), threading.Event()

    def reader(name, hold):
        with lock.shared():
            order.append(name)
            if hold:
                held.set()
                release.wait(5)

    def writer():
        with lock.exclusive():
            order.append("flush")

    first = threading.Thread(target=reader, args=("r1", True))
    first.start()
    held.wait(5)
    flush = threading.Thread(target=writer)
    flush.start()
    time.sleep(0.1)  # the flush is waiting now
    late = threading.Thread(target=reader, args=("r2", False))
    late.start()
    time.sleep(0.1)
    assert order == ["r1"]  # neither the flush nor the late reader got in
    release.set()
    for t in (first, flush, late):
        t.join(5)
    assert order == ["r1", "flush", "r2"]


def test_searches_racing_a_flush_see_every_row(tmp_path):
    # The reader in-process: a worker process a tier would cost seconds a test
    # (tests/unit/test_reader_process.py covers it).
    config = with_overrides(MemosConfig(), {"reader.own_process": False, "data_dir": str(tmp_path)})
    tier = PlaintextTier(config, "shard-0", make_embedder(config.embedder, str(tmp_path / "m")))
    tier.open()
    rng, short = np.random.default_rng(0), []
    try:
        for round_ in range(6):
            cube = f"c{round_}"
            tier.create_cube(CubeSpec(cube))
            tier.add(cube, [NewMemory(f"a painting class at the library, week {i}", id=f"s{i}")
                            for i in range(12)], rng.standard_normal((12, 384)).astype(np.float32))
            tier.store._flush.note_write(1, 0.0)  # due now
            flusher = threading.Thread(target=tier.flush_if_due)
            flusher.start()
            while flusher.is_alive():
                query = SearchQuery((cube,), "painting library", 10, SearchMode.BM25)
                if len(tier.search(query)) != 10:
                    short.append(round_)
            flusher.join()
    finally:
        tier.close()
    assert short == []
