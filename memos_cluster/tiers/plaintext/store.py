"""The Milvus side of one plaintext shard: the client, the collection names, the shard's cube ids,
the write lock and the flush bookkeeping, with the few row-level operations every part of the
tier needs. `PlaintextTier` (tier.py) and its helpers for near-duplicates (duplicates.py) and
whole-cube copies (transfer.py) are each handed this one object; none reaches into another's
state.

Who builds it: `PlaintextTier`, one per shard; `open()` connects (and recovers: all state is
re-read from Milvus), so constructing one does no I/O.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from memos_cluster.core.config import StorageConfig
from memos_cluster.core.errors import NotFound, Unavailable
from memos_cluster.core.types import MemoryItem
from memos_cluster.tiers.plaintext import schema as ms
from memos_cluster.tiers.plaintext.filters import scope_expr
from memos_cluster.tiers.plaintext.flush import FlushPolicy
from memos_cluster.tiers.plaintext.lock import FlushSafeClient

Clock = Callable[[], float]  # seconds since the epoch
PAGE_ROWS = 1000  # rows per Milvus query page when a cube is read whole
CONNECT_WAIT_S = 30.0  # how long to retry opening an embedded data directory (seconds)
CONNECT_RETRY_S = 0.5


def open_client(uri: str, token: str = "", wait_s: float = CONNECT_WAIT_S) -> Any:
    """A MilvusClient, its connection retried for up to `wait_s` seconds. Embedded milvus-lite
    runs a server process per data directory: after a killed owner the old server may hold the
    directory for a moment ("Open local milvus failed"), and on a loaded machine a new server
    may not answer on its socket within pymilvus's 10 s ("Fail connecting to server"). Who
    calls it: `MilvusStore.open`, and tests that open an engine of their own."""
    from pymilvus import MilvusClient
    from pymilvus.exceptions import ConnectionConfigException, MilvusException

    deadline = time.monotonic() + wait_s
    while True:
        try:
            return MilvusClient(uri=uri, token=token)
        except (ConnectionConfigException, MilvusException) as exc:
            retryable = isinstance(exc, ConnectionConfigException) or \
                "Fail connecting" in str(exc.message)
            if not retryable or time.monotonic() > deadline:
                raise
            time.sleep(CONNECT_RETRY_S)


class MilvusStore:
    def __init__(self, storage: StorageConfig, shard_id: str, clock: Clock):
        self.names = storage  # collection names (collection, history_collection, cube_collection)
        self.engine = ms.engine_for(storage)  # the schema's choices for this engine
        self.shard_id = shard_id
        self.clock = clock
        self.cube_ids: set[str] = set()  # the cubes this store holds, loaded by open()
        # Serialises read-modify-write sequences (existence checks, versioning); embeddings are
        # computed before taking it.
        self.write_lock = threading.Lock()
        self._flush = FlushPolicy(storage.flush_max_pending_rows, storage.flush_idle_s)
        self._client: Any = None
        self.bm25_dates = True  # resolved dates indexed for BM25 (search.bm25_dates)
        self.dim = 0  # set by open()

    # ---- lifecycle -------------------------------------------------------------------------
    def open(self, uri: str, dim: int, stop_words: list[str]) -> None:
        """Connect, create missing collections, load them, read the cube ids. StorageRefused
        for a data directory of another engine (schema.check_lite_path)."""
        self.dim = dim  # the embedder's: every vector column of the shard
        if ms.is_embedded(self.names.milvus_uri):
            ms.check_lite_path(Path(uri))
        # Flushes (background) never overlap other calls: see lock.py.
        self._client = FlushSafeClient(self._connect(uri))
        self._while_starting(lambda: ms.create_collections(self._client, self.names,
                                                           self.engine, dim, stop_words))
        ms.check_fields(self._client, self.names)
        self._while_starting(lambda: ms.load_collections(self._client, self.names))
        self.cube_ids = set()
        iterator = self._client.query_iterator(self.names.cube_collection, batch_size=4096,
                                               filter='cube_id != ""', output_fields=["cube_id"])
        while batch := iterator.next():
            self.cube_ids.update(row["cube_id"] for row in batch)
        iterator.close()

    def _connect(self, uri: str) -> Any:
        from pymilvus.exceptions import ConnectionConfigException, MilvusException

        try:
            return open_client(uri, self.names.milvus_token,
                               CONNECT_WAIT_S if ms.is_embedded(self.names.milvus_uri) else 0)
        except (ConnectionConfigException, MilvusException) as exc:
            raise Unavailable(f"{self.shard_id}: cannot open {uri}: {exc}") from exc

    def _while_starting(self, step: Callable[[], None]) -> None:
        """Run `step`, retried while an embedded server that has just started is still
        initialising (milvus-lite 2.5 answers "Mmap manager has not been init" for a moment
        after its socket opens; seen on a loaded machine, where it killed a shard at start)."""
        from pymilvus.exceptions import MilvusException

        deadline = time.monotonic() + CONNECT_WAIT_S
        while True:
            try:
                return step()
            except MilvusException as exc:
                starting = "has not been init" in str(exc.message)
                if not starting or time.monotonic() > deadline:
                    raise
                time.sleep(CONNECT_RETRY_S)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def client(self) -> Any:
        if self._client is None:
            raise Unavailable(f"{self.shard_id} is not open")
        return self._client

    # ---- writes and flushes ----------------------------------------------------------------
    def wrote(self, num_rows: int) -> None:
        """Who calls it: every writer, under the write lock, after Milvus acknowledged."""
        self._flush.note_write(num_rows, self.clock())

    def flush_if_due(self) -> bool:
        """Seal recently written rows so they search fast (see flush.py)."""
        with self.write_lock:
            if not self._flush.is_due(self.clock()):
                return False
            pending = self._flush.pending_rows
        for name in (self.names.collection, self.names.history_collection,
                     self.names.cube_collection, self.names.entity_collection):
            self.client.flush(name)
        with self.write_lock:  # writers update the same counters under this lock
            self._flush.note_flushed(pending)
        return True

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # ---- rows --------------------------------------------------------------------------------
    def require_cube(self, cube_id: str) -> None:
        if cube_id not in self.cube_ids:
            raise NotFound(f"cube {cube_id!r} does not exist", "cube_id")

    def count(self, collection: str, cube_ids: Sequence[str]) -> int:
        rows = self.client.query(collection, filter=scope_expr(list(cube_ids)).render(),
                                 output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def current_rows(self, cube_id: str, ids: Sequence[str],
                     fields: Sequence[str] = tuple(ms.MEMORY_FIELDS)) -> dict[str, dict[str, Any]]:
        """The current rows of these memories, by memory id (missing ones left out), read by
        primary key: `fields` may name the vectors (ms.FULL_ROW, what an upsert needs), which
        milvus-lite 2.5 returns from unflushed rows only to reads by key."""
        if not ids:
            return {}
        rows = self.client.get(self.names.collection,
                               ids=[ms.memory_pk(cube_id, i) for i in ids],
                               output_fields=list(fields))
        return {row["memory_id"]: dict(row) for row in rows}

    def delete_memories(self, cube_id: str, ids: Sequence[str]) -> None:
        """Delete these memories and their history. The caller holds the write lock. Who calls
        it: DeleteMemories, and the scheduler's expiry with lifecycle.expire_action delete."""
        if not ids:
            return
        expr = scope_expr([cube_id])
        expr.add(f"memory_id in {expr.param(list(ids))}")
        self.client.delete(self.names.history_collection, filter=expr.render())
        self.client.delete(self.names.collection, ids=[ms.memory_pk(cube_id, i) for i in ids])
        self.wrote(len(ids))

    def memory_row(self, item: MemoryItem, vector: Any) -> dict[str, Any]:
        row = self.engine.item_to_row(item)
        row["pk"] = ms.memory_pk(item.cube_id, item.id)
        row["index_text"] = ms.index_text(item, self.bm25_dates)
        row["dense"] = [float(x) for x in vector]
        return row

    def archive(self, items: Sequence[MemoryItem]) -> None:
        """Versions into history (idempotent: keyed by cube, memory and version)."""
        rows: list[dict[str, Any]] = []
        for item in items:
            row = self.engine.item_to_row(item)
            row["pk"] = ms.history_pk(item.cube_id, item.id, item.version)
            row["placeholder"] = ms.PLACEHOLDER_VECTOR
            rows.append(row)
        self.client.upsert(self.names.history_collection, rows)

    def cube_rows(self, collection: str, cube_id: str,
                  fields: list[str]) -> list[dict[str, Any]]:
        """Every row of a cube in a collection, read page by page."""
        return self.scan_rows(collection, scope_expr([cube_id]).render(), fields)

    def scan_rows(self, collection: str, expr: str,
                  fields: list[str]) -> list[dict[str, Any]]:
        """Every row matching `expr` (a rendered filter), read page by page."""
        iterator = self.client.query_iterator(collection, batch_size=PAGE_ROWS, filter=expr,
                                              output_fields=fields)
        rows: list[dict[str, Any]] = []
        while batch := iterator.next():
            rows.extend(dict(r) for r in batch)
        iterator.close()
        return rows

    def search_params(self, field: str) -> dict[str, Any]:
        if field == "dense":
            return {"metric_type": "COSINE", "params": dict(self.engine.dense_search_params)}
        return {"metric_type": "BM25", "params": {}}
