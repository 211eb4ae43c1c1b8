"""Structure on the plaintext tier's write path (a part of each PlaintextTier): the memory reader
run over new texts, entity resolution against the cube's graph, the entity rows in Milvus, and
the per-cube graphs (graph.py) that ListEntities, GetEntity and the search read.

A reader failure never fails a write: `read` returns empty structures for the batch, counts the
failure (`num_reader_errors`, in the shard's health detail) and logs it, and the memories are
stored as given (a reindex reads them again). This is the one place the tier tolerates an error
from a component, because the issue of record (dates and entities) says a text the reader cannot
parse is stored with no structure.

Who calls it: PlaintextTier (add, update, delete, reindex, search, the entity operations).
Graph access is serialised by one lock; Milvus writes happen under the store's write lock,
which the callers hold.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import replace
from typing import Any, Callable, Optional, Sequence

import numpy as np

from memos_cluster.core.errors import NotFound
from memos_cluster.core.structure import (
    EMPTY_STRUCTURE, EntityDetail, EntityPage, EntityQuery, MemoryStructure, ReindexStep)
from memos_cluster.core.types import MemoryItem
from memos_cluster.reader.base import MemoryReader, ReaderInput
from memos_cluster.tiers.plaintext import schema as ms
from memos_cluster.tiers.plaintext.filters import scope_expr
from memos_cluster.tiers.plaintext.entity_rank import entity_shares, query_entities
from memos_cluster.tiers.plaintext.lifecycle import Lifecycle
from memos_cluster.tiers.plaintext.graph import (
    EMBED_COSINE, CubeGraph, EntityRecord, resolve_mentions)
from memos_cluster.tiers.plaintext.store import MilvusStore

log = logging.getLogger(__name__)
Embed = Callable[[list[str]], Any]  # texts -> (n, dim) L2-normalised vectors
ENTITY_PAGE_DEFAULT = 50
UNEMBEDDED = ("CONCEPT", "CANDIDATE")  # labels matched by name only (no name embedding)
MAX_DETAIL_MEMORIES = 50


class StructureIndex:
    def __init__(self, store: MilvusStore, reader: MemoryReader, embed: Embed,
                 lifecycle: Lifecycle):
        """`lifecycle`: what `reread` writes through (the facts of a rewritten structure are
        settled as an add's)."""
        self._store = store
        self._lifecycle = lifecycle
        self._reader = reader
        self._embed = embed
        self._graphs: dict[str, CubeGraph] = {}
        self._vectors: dict[str, dict[str, np.ndarray]] = {}  # cube -> entity id -> name vector
        # Name vectors the embedding step computed for names it did not match, kept for the
        # entity rows written right after (under the same lock).
        self._pending_vectors: dict[str, np.ndarray] = {}
        self._lock = threading.RLock()
        self.num_reader_errors = 0

    # ---- reading -------------------------------------------------------------------------
    def read(self, inputs: Sequence[ReaderInput]) -> list[MemoryStructure]:
        """The reader's structures for a batch (empty ones if it failed). Who calls it: the
        tier, before its write lock, like the embedding."""
        if not inputs:
            return []
        try:
            return self._reader.read_many(inputs)
        except Exception:  # noqa: BLE001 -- a reader bug must not lose the write (see above)
            self.num_reader_errors += 1
            log.exception("%s: memory reader failed on a batch of %d; stored without structure",
                          self._store.shard_id, len(inputs))
            return [EMPTY_STRUCTURE for _ in inputs]

    def close(self) -> None:
        """Stop the reader's worker, where it has one. Who calls it: PlaintextTier.close."""
        close = getattr(self._reader, "close", None)
        if close is not None:
            close()

    # ---- the graph -----------------------------------------------------------------------
    def graph(self, cube_id: str) -> CubeGraph:
        """The cube's graph, loaded from Milvus on first use after a start."""
        with self._lock:
            if cube_id not in self._graphs:
                self._graphs[cube_id] = self._load(cube_id)
            return self._graphs[cube_id]

    def _load(self, cube_id: str) -> CubeGraph:
        graph, vectors = CubeGraph(cube_id), {}
        for row in self._store.cube_rows(self._store.names.entity_collection, cube_id,
                                         ms.ENTITY_FIELDS + ["dense"]):
            graph.add_entity(EntityRecord(row["entity_id"], row["name"], row["label"],
                                          list(row.get("aliases") or [])))
            if row["label"] not in UNEMBEDDED:
                vectors[row["entity_id"]] = np.asarray(row["dense"], dtype=np.float32)
        for row in self._store.cube_rows(self._store.names.collection, cube_id,
                                         ["pk", "memory_id", "structure", "event_time_ms"]):
            graph.put_memory(row["memory_id"], MemoryStructure.from_json(row["structure"]),
                             self._store.engine.decode_event_time(row.get("event_time_ms")))
        self._vectors[cube_id] = vectors
        return graph

    def resolve(self, cube_id: str, structures: Sequence[MemoryStructure]
                ) -> list[MemoryStructure]:
        """Entity ids for every mention; new entities and aliases written to Milvus. Who calls
        it: the tier's writers, under the store's write lock, before the memory rows."""
        if not any(s.entities for s in structures):
            return list(structures)
        with self._lock:
            graph = self.graph(cube_id)
            resolved, changed = resolve_mentions(
                graph, structures, lambda pending: self._embed_match(cube_id, pending))
            if changed:
                self._write_entities(cube_id, graph, sorted(changed))
        return resolved

    def _embed_match(self, cube_id: str, pending: list[tuple[str, str]]) -> list[Optional[str]]:
        """Each unmatched named (name, label): the closest entity of the same label by name
        embedding, if at least EMBED_COSINE; their vectors are kept for the entity rows.
        Concepts ("pottery classes") are matched by name only and get no name embedding:
        they are most new names, and embedding them cost more of an ingest than the reader
        (419 turns: 2.5 s of 11.5)."""
        named = [(name, label) for name, label in pending if label not in UNEMBEDDED]
        vectors = np.asarray(self._embed([name for name, _ in named]), dtype=np.float32) \
            if named else []
        by_name = dict(zip(named, vectors))
        known = self._vectors.setdefault(cube_id, {})
        graph = self._graphs[cube_id]
        out: list[Optional[str]] = []
        for name, label in pending:
            vector = by_name.get((name, label))
            if vector is None:
                out.append(None)
                continue
            same = [e for e in known if graph.entities[e].label == label]
            best = None
            if same:
                scores = np.stack([known[e] for e in same]) @ vector
                index = int(np.argmax(scores))
                best = same[index] if scores[index] >= EMBED_COSINE else None
            out.append(best)
            self._pending_vectors[name] = vector
        return out

    def _write_entities(self, cube_id: str, graph: CubeGraph, entity_ids: list[str]) -> None:
        known = self._vectors.setdefault(cube_id, {})
        rows = []
        for entity_id in entity_ids:
            record = graph.entities[entity_id]
            vector = known.get(entity_id)
            if vector is None:
                vector = self._pending_vectors.pop(record.name, None)
                if vector is None and record.label not in UNEMBEDDED:
                    vector = np.asarray(self._embed([record.name])[0], dtype=np.float32)
                if vector is not None:
                    known[entity_id] = vector
            if vector is None:
                vector = self._no_vector()
            rows.append({"pk": ms.memory_pk(cube_id, entity_id), "cube_id": cube_id,
                         "entity_id": entity_id, "name": record.name[:ms.MAX_NAME_BYTES // 4],
                         "label": record.label, "aliases": list(record.aliases)[:64],
                         "dense": [float(x) for x in vector]})
        self._pending_vectors.clear()
        self._store.client.upsert(self._store.names.entity_collection, rows)
        self._store.wrote(len(rows))

    def _no_vector(self) -> np.ndarray:
        """The stored vector of an entity without a name embedding (a concept): a fixed unit
        vector, which `_load` leaves out of the comparisons."""
        vector = np.zeros(self._store.dim, dtype=np.float32)
        vector[0] = 1.0
        return vector

    def put(self, cube_id: str, items: Sequence[Any]) -> None:
        """Record stored memories (MemoryItems) in the loaded graph. Who calls it: writers,
        after Milvus acknowledged the rows."""
        with self._lock:
            graph = self._graphs.get(cube_id)
            if graph is not None:
                for item in items:
                    graph.put_memory(item.id, item.structure, item.event_time_ms)

    def remove(self, cube_id: str, memory_ids: Sequence[str]) -> None:
        with self._lock:
            graph = self._graphs.get(cube_id)
            for memory_id in memory_ids if graph is not None else ():
                graph.remove_memory(memory_id)

    def forget(self, cube_id: str) -> None:
        """Drop a cube's loaded graph (reloaded on next use): after merges, imports, moves."""
        with self._lock:
            self._graphs.pop(cube_id, None)
            self._vectors.pop(cube_id, None)

    def delete_cube(self, cube_id: str) -> None:
        """Who calls it: PlaintextTier.delete_cube, under the write lock."""
        self._store.client.delete(self._store.names.entity_collection,
                                  filter=scope_expr([cube_id]).render())
        self.forget(cube_id)

    def entity_shares(self, query: str, rows: dict[str, dict]) -> dict[str, float]:
        """Each candidate row's share of the entities the query names in its own cube (each
        cube's graph alone). Who calls it: Searcher._hybrid, for the entity boost."""
        shares: dict[str, float] = {}
        for cube_id in {row["cube_id"] for row in rows.values()}:
            with self._lock:
                graph = self.graph(cube_id)
                wanted = query_entities(graph, query)
                if wanted:  # most queries name none: no candidate's mentions are read
                    # The graph's own record of each memory's entities, not the row's
                    # structure JSON: decoding 120 mention lists cost 0.6 ms a search.
                    shares.update(entity_shares(wanted, {
                        pk: graph.entities_of(row["memory_id"]) for pk, row in rows.items()
                        if row["cube_id"] == cube_id}))
        return shares

    # ---- views ---------------------------------------------------------------------------
    def list_entities(self, query: EntityQuery) -> EntityPage:
        with self._lock:
            return self.graph(query.cube_id).page(query, query.page_size or ENTITY_PAGE_DEFAULT)

    def detail(self, cube_id: str, ref: str, fetch: Callable[[list[str]], list]
               ) -> EntityDetail:
        """GetEntity. `fetch(ids)`: the memories by id, in order (the tier's get)."""
        with self._lock:
            graph = self.graph(cube_id)
            entity_id = graph.find(ref)
            if entity_id is None or graph.num_mentions(entity_id) == 0:
                raise NotFound(f"no entity {ref!r} in cube {cube_id!r}", "entity_id")
            memory_ids, relations, neighbours = graph.detail_parts(entity_id,
                                                                   MAX_DETAIL_MEMORIES)
            entity = graph.view(entity_id)
        return EntityDetail(entity, tuple(fetch(memory_ids)), tuple(relations),
                            tuple(neighbours))

    # ---- reindex ---------------------------------------------------------------------------
    def reindex(self, cube_id: str, after_id: str, batch_size: int) -> ReindexStep:
        """Read up to `batch_size` current memories with ids after `after_id` (id order) again
        and rewrite those whose structure changed: same version, same vector, new structure
        and BM25 text. Idempotent, so a reindex resumes from any cursor. Who calls it:
        PlaintextTier.reindex, for `memos-cluster reindex`."""
        store = self._store
        expr = scope_expr([cube_id])
        expr.add(f"memory_id > {expr.param(after_id)}")
        # Milvus has no ORDER BY: the ids after the cursor (small rows), sorted, then the batch.
        ids = sorted(r["memory_id"] for r in store.scan_rows(
            store.names.collection, expr.render(), ["pk", "memory_id"]))[:batch_size]
        num_read, changed = self.reread(cube_id, ids)
        num_changed = len(changed)
        total = store.count(store.names.collection, [cube_id])
        done = len(ids) < batch_size
        return ReindexStep(num_read, num_changed, None if done or not ids else ids[-1], total,
                           tuple(i.id for i in changed))

    def reread(self, cube_id: str, ids: Sequence[str]) -> tuple[int, list[MemoryItem]]:
        """Read these current memories again (the reader outside the write lock) and rewrite
        those whose structure changed: same version, same vector, new structure and BM25 text;
        a memory updated or deleted meanwhile is left alone. Returns how many were read and
        the rewritten ones. Who calls it: reindex, and the deferred reader (deferred.py)."""
        store = self._store
        found = store.current_rows(cube_id, ids)
        items = [store.engine.row_to_item(found[i]) for i in ids if i in found]
        structures = self.read([reader_input(i) for i in items])
        changed: list[MemoryItem] = []
        with store.write_lock:
            store.require_cube(cube_id)
            # The vectors too: the rows are rewritten with them.
            current = store.current_rows(cube_id, [i.id for i in items],
                                         ["pk", "memory_id", "version", "dense"])
            fresh = [i for i in items if i.id in current
                     and int(current[i.id]["version"]) == i.version]
            by_id = dict(zip([i.id for i in items], structures))
            resolved = self.resolve(cube_id, [by_id[i.id] for i in fresh])
            changed = [replace(i, structure=s) for i, s in zip(fresh, resolved)
                       if s.to_json() != i.structure.to_json()]
            if changed:
                # Through the lifecycle: the new structure's facts (a memory stored pending had
                # none) may supersede others.
                self._lifecycle.write(cube_id, changed, [
                    store.memory_row(i, current[i.id]["dense"]) for i in changed], insert=False)
                self.put(cube_id, changed)
        return len(items), changed


def reader_input(item: Any) -> ReaderInput:
    """What the reader is given for a memory (a NewMemory or MemoryItem): its text, event
    time and, when its metadata names one, its speaker (else the reader takes a "Name:"
    prefix of the text)."""
    speaker = item.metadata.get("speaker") if isinstance(item.metadata, dict) else None
    return ReaderInput(item.text, item.event_time_ms, speaker if isinstance(speaker, str) else "")
