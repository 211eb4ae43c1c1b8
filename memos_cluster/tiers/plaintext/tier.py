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
from contextlib import nullcontext
from dataclasses import replace
from typing import Any, Optional, Sequence

from memos_cluster.core.config import MemosConfig
from memos_cluster.core.errors import (
    AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, Unavailable)
from memos_cluster.core.lifecycle import (
    ACTIVE, Feedback, Supersession, effective_state, require_active)
from memos_cluster.core.types import (
    AddResult, CubeSpec, CubeStats, DeleteResult, FeedbackResult, GetResult, ListQuery,
    MemoryItem, MemoryPage, MemoryUpdate, NewMemory, SearchHit, SearchQuery, ShardHealth)
from memos_cluster.core.structure import (
    PENDING_READER, PENDING_STRUCTURE, EntityDetail, EntityPage, EntityQuery, MemoryStructure,
    ReindexStep)
from memos_cluster.embed.base import Embedder, embed_inputs
from memos_cluster.reader import MemoryReader, ReaderInput, make_reader
from memos_cluster.tiers.plaintext import schema as ms
from memos_cluster.tiers.plaintext.duplicates import Duplicates
from memos_cluster.tiers.plaintext.filters import Expr, scope_expr
from memos_cluster.tiers.plaintext.deferred import DeferredReads
from memos_cluster.tiers.plaintext.cubes import Cubes
from memos_cluster.tiers.plaintext.feedback import give_feedback
from memos_cluster.tiers.plaintext.lifecycle import Lifecycle
from memos_cluster.tiers.plaintext.listing import Listing
from memos_cluster.tiers.plaintext.search import Searcher
from memos_cluster.tiers.plaintext.stopwords import stop_words
from memos_cluster.tiers.plaintext.store import Clock, MilvusStore
from memos_cluster.tiers.plaintext.structure import StructureIndex, reader_input
from memos_cluster.tiers.plaintext.supersede import valid_from_of
from memos_cluster.tiers.plaintext.transfer import Transfer

QUERY_EMBED_THREADS = 4  # concurrent query embeddings per shard (each runs on one core)
DEFERRED_BATCH = 64  # memories the deferred reader reads and rewrites at a time


class PlaintextTier:
    """One shard's memories. Its parts share one `MilvusStore` (store.py): this class (cubes,
    memories, search), `duplicates` (near-duplicates and merges) and `transfer` (whole-cube
    copies for moves, exports and imports)."""

    def __init__(self, config: MemosConfig, shard_id: str, embedder: Embedder,
                 clock: Clock = time.time, reader: Optional[MemoryReader] = None):
        self._config = config
        self.shard_id = shard_id
        self._embedder = embedder
        self.store = MilvusStore(config.storage, shard_id, clock)
        self.store.bm25_dates = config.search.bm25_dates
        self.lifecycle = Lifecycle(self.store, config.lifecycle)  # states, supersession, expiry
        # Dates, entities and relations of every memory written, and the cubes' entity graphs
        # (a deferred read or a reindex writes through the lifecycle, as an add does).
        self.structure = StructureIndex(self.store, reader or make_reader(config.reader),
                                        embedder.embed, self.lifecycle)
        self.duplicates = Duplicates(self.store)
        self.transfer = Transfer(self.store)
        self.listing = Listing(self.store)
        self.cubes = Cubes(self.store, self.structure, self.lifecycle)
        self._feedback_lock = threading.Lock()
        self.searcher = Searcher(self.store, self.structure, embedder, config.search)
        reader_config = config.reader
        self.deferred: Optional[DeferredReads] = None  # reader.mode deferred: deferred.py
        if reader_config.mode == "deferred" and reader_config.backend != "none":
            self.deferred = DeferredReads(
                self.structure.reread, idle_s=reader_config.defer_idle_ms / 1000,
                max_pending=reader_config.defer_max_pending, batch_size=DEFERRED_BATCH)
        self._query_pool: Optional[ThreadPoolExecutor] = None  # made by open(); see _hybrid

    # ---- lifecycle -------------------------------------------------------------------------
    def open(self) -> None:
        """Connect to Milvus, create missing collections, load the cube-id cache."""
        uri = self._config.storage.milvus_uri
        if uri is None:
            directory = self._config.shard_data_dir(self.shard_id)
            directory.mkdir(parents=True, exist_ok=True)
            uri = str(directory / "milvus.db")
        self.store.open(uri, self._embedder.dim,
                        stop_words(self._config.storage.bm25_stop_words))
        self._query_pool = ThreadPoolExecutor(max_workers=QUERY_EMBED_THREADS,
                                              thread_name_prefix=f"{self.shard_id}-embed")
        if self.deferred is not None:
            self._resume_deferred()
            self.deferred.start(f"{self.shard_id}-reader")

    def imported(self, cube_id: str) -> None:
        """A cube's rows were written by an import or a move: its graph reloads, and its
        memories stored pending elsewhere are read here. Who calls it: placement/ownership."""
        self.structure.forget(cube_id)
        self.lifecycle.forget(cube_id)
        if self.deferred is not None:
            self._resume_deferred(cube_id)

    def _resume_deferred(self, cube_id: Optional[str] = None) -> None:
        """Enqueue the memories a previous run (or, given `cube_id`, the cube an import wrote)
        stored and did not read: a crash or a stop before the reader got to them."""
        expr = scope_expr([cube_id]) if cube_id is not None else Expr()
        expr.add(f'structure["r"] == {expr.param(PENDING_READER)}')
        rows = self.store.scan_rows(self.store.names.collection, expr.render(),
                                    ["pk", "cube_id", "memory_id"])
        by_cube: dict[str, list[str]] = {}
        for row in rows:
            by_cube.setdefault(row["cube_id"], []).append(row["memory_id"])
        for cube_id, ids in sorted(by_cube.items()):
            self.deferred.enqueue(cube_id, sorted(ids))

    def warm_up(self) -> None:
        """Load the embedding model and the reader now rather than on the first request."""
        self._embedder.embed(["warm up"])
        self.structure.read([ReaderInput("Sam: I went there yesterday.", 0)])

    def flush_if_due(self) -> bool:
        """Who calls it: the shard actor's background flusher, about every second."""
        return self.store.flush_if_due()

    def close(self) -> None:
        if self.deferred is not None:
            self.deferred.stop()
        if self._query_pool is not None:
            self._query_pool.shutdown(wait=True)
            self._query_pool = None
        self.structure.close()
        self.store.close()

    def cube_ids(self) -> list[str]:
        """The cubes this shard holds, sorted."""
        return sorted(self.store.cube_ids)

    def cube_sizes(self, cube_ids: Sequence[str]) -> dict[str, int]:
        """Current memories of each cube (the `memos-cluster shards` view)."""
        return {c: self.store.count(self.store.names.collection, [c]) for c in cube_ids}

    # ---- cubes (cubes.py) -------------------------------------------------------------------
    def create_cube(self, spec: CubeSpec) -> CubeSpec:
        return self.cubes.create(spec)

    def delete_cube(self, cube_id: str) -> int:
        """Purge a cube: memories, then history, then the cube row (cubes.py)."""
        return self.cubes.delete(cube_id, self.deferred)

    def list_cubes(self) -> list[CubeSpec]:
        return self.cubes.list()

    def get_cube(self, cube_id: str) -> CubeStats:
        return self.cubes.get(cube_id, self.shard_id)

    # ---- memories --------------------------------------------------------------------------
    def add(self, cube_id: str, items: Sequence[NewMemory],
            vectors: Optional[Any] = None) -> AddResult:
        """Insert a batch. Caller-supplied ids make it idempotent: an id already stored with the
        same content is left alone; with different content it is ALREADY_EXISTS (use update).
        `vectors`: the items' embeddings when the caller computed them (bulk ingest: the same
        model, `embed_inputs` of the items), one row per item."""
        with self.deferred.writing() if self.deferred is not None else nullcontext():
            return self._add(cube_id, items, vectors)

    def _add(self, cube_id: str, items: Sequence[NewMemory],
             vectors: Optional[Any]) -> AddResult:
        self.store.require_cube(cube_id)
        ids = [item.id or uuid.uuid4().hex for item in items]
        embedding = None
        if vectors is None:
            if self._query_pool is None:
                raise Unavailable(f"{self.shard_id} is not open")
            # Embedded on a pool thread while the reader runs here: onnxruntime releases the
            # GIL, so spaCy's single-threaded work overlaps the embedding instead of following it.
            embedding = self._query_pool.submit(self._embedder.embed, embed_inputs(
                items, self._config.embedder.include_context))
        elif len(vectors) != len(items) or any(len(v) != self._embedder.dim for v in vectors):
            raise InvalidArgument(f"vectors must be {len(items)} rows of {self._embedder.dim}",
                                  "vectors")
        structures = self._read_new(cube_id, ids, items)
        if embedding is not None:
            vectors = embedding.result()
        with self.store.write_lock:
            self.store.require_cube(cube_id)
            existing = self.store.current_rows(cube_id, [i.id for i in items if i.id])
            rows, stored, num_unchanged = [], [], 0
            now_ms = self.store.now_ms()
            new = [i for i, memory_id in enumerate(ids) if memory_id not in existing]
            late = [i for i in new if i not in structures and self.deferred is None]
            structures.update(zip(late, self.structure.read([reader_input(items[i])
                                                             for i in late])))
            resolved = dict(zip(new, self.structure.resolve(
                cube_id, [structures.get(i, PENDING_STRUCTURE) for i in new])))
            for index, (memory_id, item, vector) in enumerate(zip(ids, items, vectors)):
                if memory_id in existing:
                    if not _same_content(self.store.engine.row_to_item(existing[memory_id]),
                                         item):
                        raise AlreadyExists(
                            f"memory {memory_id!r} already exists with other content; "
                            "use UpdateMemory to change it", "memories.id")
                    num_unchanged += 1
                    continue
                stored_item = self.lifecycle.stamp(MemoryItem(
                    id=memory_id, cube_id=cube_id, text=item.text,
                    memory_type=item.memory_type, metadata=dict(item.metadata),
                    created_at_ms=now_ms, updated_at_ms=now_ms,
                    event_time_ms=item.event_time_ms, source=item.source, version=1,
                    context=item.context, structure=resolved[index]),
                    item.valid_from_ms, item.expires_at_ms)
                rows.append(self.store.memory_row(stored_item, vector))
                stored.append(stored_item)
            superseded: tuple[Supersession, ...] = ()
            if rows:
                superseded = self.lifecycle.write(cube_id, stored, rows, insert=True)
                self.structure.put(cube_id, stored)
        if self.deferred is not None and stored:
            self.deferred.enqueue(cube_id, [item.id for item in stored])
        return AddResult(ids=tuple(ids), num_inserted=len(rows), num_unchanged=num_unchanged,
                         superseded=superseded)

    def get(self, cube_id: str, ids: Sequence[str],
            states: Sequence[str] = (ACTIVE,)) -> GetResult:
        """The memories in any of `states` (core/lifecycle.READ_STATES); others are missing."""
        self.store.require_cube(cube_id)
        now_ms = self.store.now_ms()
        found = {i: item for i, row in self.store.current_rows(cube_id, ids).items()
                 if effective_state((item := self.store.engine.row_to_item(row)).state,
                                    item.expires_at_ms, now_ms) in states}
        return GetResult(items=tuple(found[i] for i in ids if i in found),
                         missing_ids=tuple(i for i in ids if i not in found))

    def list_memories(self, query: ListQuery) -> MemoryPage:
        """A page of the cube's current memories, newest update first (listing.py)."""
        return self.listing.page(query, self._config.limits)

    def _read_new(self, cube_id: str, ids: list[str],
                  items: Sequence[NewMemory]) -> dict[int, MemoryStructure]:
        """The structures of the batch's memories not stored yet, by index: read now (spaCy,
        ~6 ms a memory), or, deferred, none (they are stored pending and read later). A
        retried or resumed batch is mostly ids already acknowledged, which the write leaves
        alone, so those are not read."""
        if self.deferred is not None:
            return {}
        stored_before = self.store.current_rows(cube_id, [i.id for i in items if i.id])
        read = [i for i, memory_id in enumerate(ids) if memory_id not in stored_before]
        return dict(zip(read, self.structure.read([reader_input(items[i]) for i in read])))

    def update(self, update: MemoryUpdate) -> MemoryItem:
        return self.update_settled(update)[0]

    def update_settled(self, update: MemoryUpdate) -> tuple[MemoryItem, tuple[Supersession, ...]]:
        """Write a new version, and the supersessions its new content decided (lifecycle.py).
        The previous version goes to history first, so a crash between the two writes leaves
        the old version current and a duplicate in history, never a loss. Only an active
        memory is updated: a superseded or archived one is history."""
        self.store.require_cube(update.cube_id)
        with self.store.write_lock:
            rows = self.store.current_rows(update.cube_id, [update.id])
            if update.id not in rows:
                raise NotFound(f"memory {update.id!r} does not exist in cube "
                               f"{update.cube_id!r}", "id")
            current = self.store.engine.row_to_item(rows[update.id])
            require_active(update.id, current.state, current.superseded_by, "be updated", "id")
            # Under the lock, so the context embedded is the one stored (updates are rare).
            vector = self._embedder.embed(embed_inputs(
                [NewMemory(update.text, context=current.context)],
                self._config.embedder.include_context))[0]
            if update.expected_version is not None and update.expected_version != current.version:
                raise FailedPrecondition(
                    f"memory {update.id!r} is at version {current.version}, "
                    f"not {update.expected_version}", "expected_version")
            self.store.archive([current])
            new = replace(
                current, text=update.text, version=current.version + 1,
                updated_at_ms=max(self.store.now_ms(), current.updated_at_ms),
                metadata=current.metadata if update.metadata is None else dict(update.metadata),
                memory_type=update.memory_type or current.memory_type,
                event_time_ms=(current.event_time_ms if update.event_time_ms is None
                               else update.event_time_ms),
                expires_at_ms=(current.expires_at_ms if update.expires_at_ms is None
                               else update.expires_at_ms))
            # Read under the lock: the event time the dates resolve against is the stored one.
            structure = self.structure.resolve(update.cube_id,
                                               self.structure.read([reader_input(new)]))[0]
            new = replace(new, structure=structure, valid_from_ms=valid_from_of(
                structure, None, new.event_time_ms, new.updated_at_ms))
            row = self.store.memory_row(new, vector)
            superseded = self.lifecycle.write(update.cube_id, [new], [row], insert=False)
            self.store.wrote(1)  # the history row
            self.structure.put(update.cube_id, [new])
        return self.store.engine.row_to_item(row), superseded

    def history(self, cube_id: str, memory_id: str) -> list[MemoryItem]:
        """Every version of a memory, oldest first, the current one last. A memory merged into
        another is no longer current; its archived versions stay readable here."""
        self.store.require_cube(cube_id)
        current = self.store.current_rows(cube_id, [memory_id])
        expr = scope_expr([cube_id])
        expr.add(f"memory_id == {expr.param(memory_id)}")
        rows = self.store.client.query(self.store.names.history_collection, filter=expr.render(),
                                       output_fields=ms.MEMORY_FIELDS, limit=16384)
        if memory_id not in current and not rows:
            raise NotFound(f"memory {memory_id!r} does not exist in cube {cube_id!r}", "id")
        latest = self.store.engine.row_to_item(current[memory_id]) if memory_id in current else None
        older = {r["version"]: self.store.engine.row_to_item(r) for r in rows
                 if latest is None or r["version"] < latest.version}
        return [older[v] for v in sorted(older)] + ([latest] if latest else [])

    def delete(self, cube_id: str, ids: Sequence[str]) -> DeleteResult:
        """Delete memories and their history (a user who deletes a memory wants it gone)."""
        self.store.require_cube(cube_id)
        with self.store.write_lock:
            found = self.store.current_rows(cube_id, ids)
            present = [i for i in ids if i in found]
            self.store.delete_memories(cube_id, present)
            self.structure.remove(cube_id, present)
        return DeleteResult(num_deleted=len(present),
                            missing_ids=tuple(i for i in ids if i not in found))

    # ---- lifecycle (lifecycle.py) ----------------------------------------------------------
    def feedback(self, feedback: Feedback) -> FeedbackResult:
        """Who calls it: the gateway's Feedback operation (feedback.py). One at a time per
        shard: two judging the same memory see each other's result (one wins, one is told
        the memory is no longer active, before anything of its own is stored)."""
        with self._feedback_lock:
            return give_feedback(self, feedback)

    def expire(self, cube_id: str) -> list[str]:
        """Archive or delete (lifecycle.expire_action) the cube's memories whose expiry has
        passed; their ids. Who calls it: the scheduler's cycle, through GuardedShard."""
        config = self._config.lifecycle
        expired = self.lifecycle.expire(cube_id, config.expire_action,
                                        config.max_expired_per_cycle)
        if config.expire_action == "delete":
            self.structure.remove(cube_id, expired)
        return expired

    # ---- structure -------------------------------------------------------------------------
    def reindex(self, cube_id: str, after_id: str, batch_size: int) -> ReindexStep:
        """One batch of a reindex (structure.py). Who calls it: `memos-cluster reindex`."""
        self.store.require_cube(cube_id)
        return self.structure.reindex(cube_id, after_id, batch_size)

    def list_entities(self, query: EntityQuery) -> EntityPage:
        self.store.require_cube(query.cube_id)
        return self.structure.list_entities(query)

    def get_entity(self, cube_id: str, entity_ref: str) -> EntityDetail:
        self.store.require_cube(cube_id)
        return self.structure.detail(cube_id, entity_ref,
                                     lambda ids: list(self.get(cube_id, ids).items))

    # ---- search (search.py) -------------------------------------------------------------
    def search(self, request: SearchQuery,
               vector: Optional[Sequence[float]] = None) -> list[SearchHit]:
        """Top-k current memories of the request's cubes (all owned by this shard), best first.
        `vector`: the query's embedding when the caller has it (a search over several shards
        embeds its query once, `embed_query`), else embedded here."""
        if self._query_pool is None:
            raise Unavailable(f"{self.shard_id} is not open")
        return self.searcher.search(request, self._query_pool, vector)

    def embed_query(self, query: str) -> list[float]:
        """The query's embedding. Who calls it: searches, and MemoryService for a search over
        several shards (so the query is embedded once, on one of them)."""
        return self.searcher.embed_texts([query])[0]

    def embed_texts(self, texts: list[str]) -> list[list[float]]:
        """L2-normalised embeddings of texts by the tier's model. Who calls it: MemoryService
        (memory_mode auto compares a query with a question adapter's questions)."""
        return self.searcher.embed_texts(texts)

    def health(self) -> ShardHealth:
        self.store.client.list_collections()
        errors = self.structure.num_reader_errors
        detail = f"{len(self.store.cube_ids)} cubes" + \
            (f", {errors} reader failures" if errors else "")
        if self.deferred is not None:
            # The bench and operators read the backlog here ("N memories waiting for the reader").
            detail += f", {self.deferred.num_pending} memories waiting for the reader"
            if self.deferred.num_errors:
                detail += f" ({self.deferred.num_errors} deferred reads retried)"
        return ShardHealth(shard_id=self.shard_id, is_ok=True, detail=detail)


def _same_content(stored: MemoryItem, item: NewMemory) -> bool:
    return (stored.text == item.text and stored.context == item.context
            and stored.memory_type == item.memory_type and stored.metadata == item.metadata
            and stored.event_time_ms == item.event_time_ms and stored.source == item.source)
