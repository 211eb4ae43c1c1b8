"""The spaCy reader in a process of its own (`reader.own_process: true`, the default).

Why: spaCy's parser and NER hold the GIL for most of a read (and its Python 3.11 wheels, built
with Cython profiling, take and release it around every small helper call), so reading inside
the shard process stalls the shard's searches and its embedding, which would otherwise run on
the second core. In a child process the read runs beside them. The memories, their structures
and the reader's name cross the pipe as pickled dataclasses (a LoCoMo turn's structure is a few
hundred bytes).

One worker process, started with "spawn" (a fork of a process with threads, as a Ray actor is,
is unsafe) on the first read, which `PlaintextTier.warm_up` makes at shard start; it loads the
pipeline once (about 3 s). Reads from concurrent adds queue for it. If the process dies, the
read fails like any reader failure (structure.py stores the memories without structure and
counts it) and the next read starts a new process.

Who builds it: `make_reader` (reader/__init__.py).
"""
from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Optional, Sequence

from memos_cluster.core.structure import MemoryStructure
from memos_cluster.reader.base import ReaderInput
from memos_cluster.reader.spacy_reader import PIPELINE, SpacyReader

_worker_reader: Optional[SpacyReader] = None  # the reader inside the worker process
PARENT_CHECK_S = 1.0


def _start(max_chars: int) -> None:
    global _worker_reader
    _worker_reader = SpacyReader(max_chars=max_chars)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """A shard actor killed outright (SIGKILL, a node loss) cannot stop its worker, which
    would live on holding the pipeline (about 200 MB): the worker leaves once it is orphaned
    (re-parented: its parent id changes). Checked every PARENT_CHECK_S seconds."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(0)


def _read(inputs: list[ReaderInput]) -> tuple[str, list[MemoryStructure]]:
    structures = _worker_reader.read_many(inputs)
    return _worker_reader.name, structures


class ProcessReader:
    """A MemoryReader whose reads run in one child process; thread-safe."""

    def __init__(self, max_chars: int):
        self._max_chars = max_chars
        self._pool: Optional[ProcessPoolExecutor] = None
        self._lock = threading.Lock()
        self.name = f"spacy:{PIPELINE}"  # the loaded pipeline's name after the first read

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start, initargs=(self._max_chars,))
            return self._pool

    def read_many(self, inputs: Sequence[ReaderInput]) -> list[MemoryStructure]:
        if not inputs:
            return []
        pool = self._executor()
        try:
            self.name, structures = pool.submit(_read, list(inputs)).result()
        except BrokenProcessPool:
            with self._lock:  # the process died: the next read starts another
                if self._pool is pool:
                    self._pool = None
            raise
        return structures

    def close(self) -> None:
        """Stop the worker process. Who calls it: PlaintextTier.close."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
