"""The plaintext tier of one shard: memory items in Milvus, the source of truth.

Who uses it: `actors.shard.PlaintextShardActor` builds one per shard, calls `open()` once when
the actor starts (or restarts) and forwards every request. All state lives in Milvus; the only
in-memory state is a cache of this shard's cube ids, rebuilt from Milvus by `open()`.

A write returns only after Milvus acknowledged it (milvus-lite has written its WAL), so an
acknowledged write survives a crash of the actor.
"""
from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, Callable, Optional, Sequence

from memos_cluster.config import MemosConfig
from memos_cluster.embedder import Embedder, embed_inputs
from memos_cluster.errors import (
    AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, Unavailable)
from memos_cluster.filters import build_search_expr, scope_expr
from memos_cluster.fusion import minmax_fuse, rrf_fuse
from memos_cluster.stopwords import stop_words
from memos_cluster.tiers import milvus_schema as ms
from memos_cluster.tiers.duplicates import DuplicateOps
from memos_cluster.tiers.flush import FlushPolicy
from memos_cluster.tiers.milvus_lock import FlushSafeClient
from memos_cluster.tiers.transfer import TransferOps
from memos_cluster.types import (
    AddResult,
    CubeSpec,
    CubeStats,
    DeleteResult,
    GetResult,
    MemoryItem,
    MemoryUpdate,
    NewMemory,
    SearchHit,
    SearchMode,
    SearchQuery,
    ShardHealth,
)

Clock = Callable[[], float]  # seconds since the epoch
TIE_SLACK = 8  # extra rows fetched so a tie at the top_k cut is broken by id, not storage order
QUERY_EMBED_THREADS = 4  # concurrent query embeddings per shard (each runs on one core)


class PlaintextTier(DuplicateOps, TransferOps):
    def __init__(self, config: MemosConfig, shard_id: str, embedder: Embedder,
                 clock: Clock = time.time):
        self._config = config
        self._storage = config.storage
        self._shard_id = shard_id
        self._embedder = embedder
        self._clock = clock
        self._client: Any = None
        self._cube_ids: set[str] = set()
        # Serialises read-modify-write sequences (existence checks, versioning); embeddings are
        # computed before taking it.
        self._write_lock = threading.Lock()
        self._flush = FlushPolicy(config.storage.flush_max_pending_rows,
                                  config.storage.flush_idle_s)
        self._query_pool: Optional[ThreadPoolExecutor] = None  # made by open(); see _hybrid

    # ---- lifecycle -------------------------------------------------------------------------
    def open(self) -> None:
        """Connect to Milvus, create missing collections, load the cube-id cache."""
        from pymilvus import MilvusClient

        uri = self._storage.milvus_uri
        if uri is None:
            directory = self._config.shard_data_dir(self._shard_id)
            directory.mkdir(parents=True, exist_ok=True)
            uri = str(directory / "milvus.db")
        # Flushes (background) never overlap searches: see milvus_lock.py.
        self._client = FlushSafeClient(MilvusClient(uri=uri, token=self._storage.milvus_token))
        ms.create_collections(self._client, self._storage, self._embedder.dim,
                              stop_words(self._storage.bm25_stop_words))
        ms.load_collections(self._client, self._storage)
        self._cube_ids = set()
        iterator = self._client.query_iterator(self._storage.cube_collection, batch_size=4096,
                                               filter='cube_id != ""', output_fields=["cube_id"])
        while batch := iterator.next():
            self._cube_ids.update(row["cube_id"] for row in batch)
        iterator.close()
        self._query_pool = ThreadPoolExecutor(max_workers=QUERY_EMBED_THREADS,
                                              thread_name_prefix=f"{self._shard_id}-embed")

    def warm_up(self) -> None:
        """Load the embedding model now rather than on the first request."""
        self._embedder.embed(["warm up"])

    def _wrote(self, num_rows: int) -> None:
        self._flush.note_write(num_rows, self._clock())

    def flush_if_due(self) -> bool:
        """Seal recently written rows so they search fast (see tiers/flush.py).
        Who calls it: the shard actor's background flusher, about every second."""
        with self._write_lock:
            if not self._flush.is_due(self._clock()):
                return False
            pending = self._flush.pending_rows
        for name in (self._storage.collection, self._storage.history_collection,
                     self._storage.cube_collection):
            self.client.flush(name)
        with self._write_lock:  # writers update the same counters under this lock
            self._flush.note_flushed(pending)
        return True

    def close(self) -> None:
        if self._query_pool is not None:
            self._query_pool.shutdown(wait=True)
            self._query_pool = None
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def client(self) -> Any:
        if self._client is None:
            raise Unavailable(f"{self._shard_id} is not open")
        return self._client

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _require_cube(self, cube_id: str) -> None:
        if cube_id not in self._cube_ids:
            raise NotFound(f"cube {cube_id!r} does not exist", "cube_id")

    # ---- cubes -----------------------------------------------------------------------------
    def create_cube(self, spec: CubeSpec) -> CubeSpec:
        with self._write_lock:
            if spec.cube_id in self._cube_ids:
                raise AlreadyExists(f"cube {spec.cube_id!r} already exists", "cube_id")
            created = replace(spec, created_at_ms=self._now_ms())
            self.client.insert(self._storage.cube_collection, [ms.cube_to_row(created)])
            self._wrote(1)
            self._cube_ids.add(spec.cube_id)
        return created

    def delete_cube(self, cube_id: str) -> int:
        """Purge a cube: memories, then history, then the cube row (a crash midway leaves a
        cube that still exists, so a retried delete finishes the job)."""
        with self._write_lock:
            self._require_cube(cube_id)
            num_memories = self._count(self._storage.collection, [cube_id])
            scope = scope_expr([cube_id]).render()
            self.client.delete(self._storage.collection, filter=scope)
            self.client.delete(self._storage.history_collection, filter=scope)
            self.client.delete(self._storage.cube_collection, ids=[cube_id])
            self._cube_ids.discard(cube_id)
        return num_memories

    def list_cubes(self) -> list[CubeSpec]:
        if not self._cube_ids:
            return []
        rows = self.client.get(self._storage.cube_collection, ids=sorted(self._cube_ids),
                               output_fields=ms.CUBE_FIELDS)
        return sorted((ms.row_to_cube(r) for r in rows), key=lambda c: c.cube_id)

    def get_cube(self, cube_id: str) -> CubeStats:
        self._require_cube(cube_id)
        rows = self.client.get(self._storage.cube_collection, ids=[cube_id],
                               output_fields=ms.CUBE_FIELDS)
        if not rows:
            raise NotFound(f"cube {cube_id!r} does not exist", "cube_id")
        return CubeStats(
            cube=ms.row_to_cube(rows[0]),
            num_memories=self._count(self._storage.collection, [cube_id]),
            num_history_versions=self._count(self._storage.history_collection, [cube_id]),
            shard_id=self._shard_id,
        )

    def _count(self, collection: str, cube_ids: Sequence[str]) -> int:
        rows = self.client.query(collection, filter=scope_expr(list(cube_ids)).render(),
                                 output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    # ---- memories --------------------------------------------------------------------------
    def _current_rows(self, cube_id: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        rows = self.client.get(self._storage.collection,
                               ids=[ms.memory_pk(cube_id, i) for i in ids],
                               output_fields=ms.MEMORY_FIELDS)
        return {row["memory_id"]: row for row in rows}

    def add(self, cube_id: str, items: Sequence[NewMemory],
            vectors: Optional[Any] = None) -> AddResult:
        """Insert a batch. Caller-supplied ids make it idempotent: an id already stored with the
        same content is left alone; with different content it is ALREADY_EXISTS (use update).
        `vectors`: the items' embeddings when the caller computed them (bulk ingest: the same
        model, `embed_inputs` of the items), one row per item."""
        self._require_cube(cube_id)
        ids = [item.id or uuid.uuid4().hex for item in items]
        if vectors is None:
            vectors = self._embedder.embed(embed_inputs(items, self._config.embedder.include_context))
        elif len(vectors) != len(items) or any(len(v) != self._embedder.dim for v in vectors):
            raise InvalidArgument(f"vectors must be {len(items)} rows of {self._embedder.dim}",
                                  "vectors")
        with self._write_lock:
            self._require_cube(cube_id)
            existing = self._current_rows(cube_id, [i.id for i in items if i.id])
            rows, num_unchanged = [], 0
            now_ms = self._now_ms()
            for memory_id, item, vector in zip(ids, items, vectors):
                if memory_id in existing:
                    if not _same_content(existing[memory_id], item):
                        raise AlreadyExists(
                            f"memory {memory_id!r} already exists with other content; "
                            "use UpdateMemory to change it", "memories.id")
                    num_unchanged += 1
                    continue
                stored = MemoryItem(
                    id=memory_id, cube_id=cube_id, text=item.text,
                    memory_type=item.memory_type, metadata=dict(item.metadata),
                    created_at_ms=now_ms, updated_at_ms=now_ms,
                    event_time_ms=item.event_time_ms, source=item.source, version=1,
                    context=item.context)
                rows.append(self._memory_row(stored, vector))
            if rows:
                self.client.insert(self._storage.collection, rows)
                self._wrote(len(rows))
        return AddResult(ids=tuple(ids), num_inserted=len(rows), num_unchanged=num_unchanged)


    def _memory_row(self, item: MemoryItem, vector: Any) -> dict[str, Any]:
        row = ms.item_to_row(item)
        row["pk"] = ms.memory_pk(item.cube_id, item.id)
        row["index_text"] = ms.index_text(item)
        row["dense"] = [float(x) for x in vector]
        return row

    def get(self, cube_id: str, ids: Sequence[str]) -> GetResult:
        self._require_cube(cube_id)
        found = self._current_rows(cube_id, ids)
        return GetResult(
            items=tuple(ms.row_to_item(found[i]) for i in ids if i in found),
            missing_ids=tuple(i for i in ids if i not in found),
        )

    def update(self, update: MemoryUpdate) -> MemoryItem:
        """Write a new version; the previous one goes to history first, so a crash between the
        two writes leaves the old version current and a duplicate in history, never a loss."""
        self._require_cube(update.cube_id)
        with self._write_lock:
            rows = self._current_rows(update.cube_id, [update.id])
            if update.id not in rows:
                raise NotFound(f"memory {update.id!r} does not exist in cube "
                               f"{update.cube_id!r}", "id")
            current = ms.row_to_item(rows[update.id])
            # Under the lock, so the context embedded is the one stored (updates are rare).
            vector = self._embedder.embed(embed_inputs(
                [NewMemory(update.text, context=current.context)],
                self._config.embedder.include_context))[0]
            if update.expected_version is not None and update.expected_version != current.version:
                raise FailedPrecondition(
                    f"memory {update.id!r} is at version {current.version}, "
                    f"not {update.expected_version}", "expected_version")
            self._archive([current])
            new = replace(
                current, text=update.text, version=current.version + 1,
                updated_at_ms=max(self._now_ms(), current.updated_at_ms),
                metadata=current.metadata if update.metadata is None else dict(update.metadata),
                memory_type=update.memory_type or current.memory_type,
                event_time_ms=(current.event_time_ms if update.event_time_ms is None
                               else update.event_time_ms))
            self.client.upsert(self._storage.collection, [self._memory_row(new, vector)])
            self._wrote(2)
        return new

    def history(self, cube_id: str, memory_id: str) -> list[MemoryItem]:
        """Every version of a memory, oldest first, the current one last. A memory merged into
        another is no longer current; its archived versions stay readable here."""
        self._require_cube(cube_id)
        current = self._current_rows(cube_id, [memory_id])
        expr = scope_expr([cube_id])
        expr.add(f"memory_id == {expr.param(memory_id)}")
        rows = self.client.query(self._storage.history_collection, filter=expr.render(),
                                 output_fields=ms.MEMORY_FIELDS, limit=16384)
        if memory_id not in current and not rows:
            raise NotFound(f"memory {memory_id!r} does not exist in cube {cube_id!r}", "id")
        latest = ms.row_to_item(current[memory_id]) if memory_id in current else None
        older = {r["version"]: ms.row_to_item(r) for r in rows
                 if latest is None or r["version"] < latest.version}
        return [older[v] for v in sorted(older)] + ([latest] if latest else [])

    def delete(self, cube_id: str, ids: Sequence[str]) -> DeleteResult:
        """Delete memories and their history (a user who deletes a memory wants it gone)."""
        self._require_cube(cube_id)
        with self._write_lock:
            found = self._current_rows(cube_id, ids)
            present = [i for i in ids if i in found]
            if present:
                expr = scope_expr([cube_id])
                expr.add(f"memory_id in {expr.param(present)}")
                self.client.delete(self._storage.history_collection, filter=expr.render())
                self.client.delete(self._storage.collection,
                                   ids=[ms.memory_pk(cube_id, i) for i in present])
                self._wrote(len(present))
        return DeleteResult(num_deleted=len(present),
                            missing_ids=tuple(i for i in ids if i not in found))

    # ---- search ----------------------------------------------------------------------------
    def search(self, request: SearchQuery) -> list[SearchHit]:
        """Top-k current memories of the request's cubes (all owned by this shard), best first."""
        for cube_id in request.cube_ids:
            self._require_cube(cube_id)
        expr = build_search_expr(list(request.cube_ids), request.filter).render()
        query, top_k = request.query, request.top_k
        if request.mode is SearchMode.BM25:
            results = self._search_one("sparse", query, top_k + TIE_SLACK, expr)
            # milvus-lite reports BM25 as a negated score; the order is already best first.
            return _cut([SearchHit(ms.row_to_item(h), abs(float(h["distance"])))
                         for h in results], top_k)
        if request.mode is SearchMode.DENSE:
            results = self._search_one("dense", self._embed_query(query), top_k + TIE_SLACK,
                                       expr)
            return _cut([SearchHit(ms.row_to_item(h), float(h["distance"])) for h in results],
                        top_k)
        return self._hybrid(query, top_k, expr)

    def _embed_query(self, query: str) -> list[float]:
        return [float(x) for x in self._embedder.embed([query])[0]]

    def _search_params(self, field: str) -> dict[str, Any]:
        if field == "dense":
            return {"metric_type": "COSINE", "params": {"ef": max(self._storage.hnsw_ef, 1)}}
        return {"metric_type": "BM25", "params": {}}

    def _search_one(self, field: str, data: Any, limit: int, expr: str,
                    output_fields: Sequence[str] = ms.MEMORY_FIELDS) -> list[dict]:
        results = self.client.search(
            self._storage.collection, data=[data], anns_field=field, limit=limit, filter=expr,
            search_params=self._search_params(field), output_fields=list(output_fields))
        return list(results[0]) if results else []

    def _hybrid(self, query: str, top_k: int, expr: str) -> list[SearchHit]:
        """Dense and BM25 candidates (keys and scores), fused (fusion.py); then the rows of the
        fused top_k only. The query is embedded on a worker thread while the BM25 search runs:
        onnxruntime releases the GIL, so the two overlap on a second core."""
        search = self._config.search
        candidates = max(top_k, search.num_candidates)
        if self._query_pool is None:
            raise Unavailable(f"{self._shard_id} is not open")
        vector = self._query_pool.submit(self._embed_query, query)
        # BM25 distances come back negated from milvus-lite (see search()); abs() restores them.
        sparse = [(h["pk"], abs(float(h["distance"])))
                  for h in self._search_one("sparse", query, candidates, expr, ["pk"])]
        dense = [(h["pk"], float(h["distance"]))
                 for h in self._search_one("dense", vector.result(), candidates, expr, ["pk"])]
        weights = [search.dense_weight, search.bm25_weight]
        if search.fusion == "rrf":
            fused = rrf_fuse([[pk for pk, _ in dense], [pk for pk, _ in sparse]],
                             k=search.rrf_k, weights=weights)
        else:
            fused = minmax_fuse([dense, sparse], weights=weights)
        fused = fused[:top_k]
        if not fused:
            return []
        rows = {r["pk"]: r for r in self.client.get(
            self._storage.collection, ids=[pk for pk, _ in fused],
            output_fields=ms.MEMORY_FIELDS)}
        # A row deleted between the searches and the get is skipped, not an error.
        return [SearchHit(ms.row_to_item(rows[pk]), score) for pk, score in fused if pk in rows]

    def health(self) -> ShardHealth:
        self.client.list_collections()
        return ShardHealth(shard_id=self._shard_id, is_ok=True,
                           detail=f"{len(self._cube_ids)} cubes")


def _cut(hits: list[SearchHit], top_k: int) -> list[SearchHit]:
    """Best top_k, equal scores ordered by id: Milvus returns tied rows in storage order, so
    without this two copies of a cube (an export and its import) could differ at a tie."""
    hits.sort(key=lambda h: (-h.score, h.item.id))
    return hits[:top_k]


def _same_content(row: dict[str, Any], item: NewMemory) -> bool:
    return (row["text"] == item.text and (row.get("context") or "") == item.context
            and row["memory_type"] == item.memory_type
            and (row.get("metadata") or {}) == item.metadata
            and row.get("event_time_ms") == item.event_time_ms
            and row["source"] == item.source)
