"""States, validity and expiry of one shard's memories, in Milvus (docs/lifecycle.md).

Who uses it: `PlaintextTier` (tier.py), one per shard, and its StructureIndex (a deferred read
or a reindex rewrites memories). Every method that writes runs under the store's write lock,
which its caller holds (`write`) or it takes (`set_state`, `expire`), so two writers
superseding the same memory are serialised: the second sees the first's result.

A state change rewrites the memory's current row with the same version, text and vectors (it
is not a new version of the content); what changed and why is in the row's `lifecycle` column
and, through the gateway, in the audit log.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Optional, Sequence

from memos_cluster.core.config import LifecycleConfig
from memos_cluster.core.errors import NotFound
from memos_cluster.core.lifecycle import (
    ACTIVE, ARCHIVED, SUPERSEDED, Fact, Supersession, require_active)
from memos_cluster.core.types import MemoryItem
from memos_cluster.tiers.plaintext import schema as ms
from memos_cluster.tiers.plaintext.filters import Expr, scope_expr
from memos_cluster.tiers.plaintext.store import MilvusStore
from memos_cluster.tiers.plaintext.supersede import (
    Candidate, FactReader, SupersedePolicy, make_policy, valid_from_of)

class Lifecycle:
    def __init__(self, store: MilvusStore, config: LifecycleConfig,
                 policy: Optional[SupersedePolicy] = None):
        self._store = store
        self._facts = FactReader.from_config(config)
        self.policy = policy or make_policy(config)
        self._ttl_ms: dict[str, int] = {}  # cube -> default_ttl_ms, read on first write
        self._keys: dict[str, dict[str, set[str]]] = {}  # cube -> fact key -> memory ids

    # ---- writes ------------------------------------------------------------------------------
    def stamp(self, item: MemoryItem, valid_from_ms: Optional[int],
              expires_at_ms: Optional[int]) -> MemoryItem:
        """A memory about to be stored, with its validity and expiry: the caller's, else from
        its dates (supersede.valid_from_of) and its cube's default_ttl. Who calls it: the
        tier's add, under the write lock, for each new memory."""
        ttl_ms = self.cube_ttl_ms(item.cube_id)
        if expires_at_ms is None and ttl_ms:
            expires_at_ms = item.created_at_ms + ttl_ms
        return replace(item, valid_from_ms=valid_from_of(
            item.structure, valid_from_ms, item.event_time_ms, item.created_at_ms),
            expires_at_ms=expires_at_ms)

    def cube_ttl_ms(self, cube_id: str) -> int:
        if cube_id not in self._ttl_ms:
            rows = self._store.client.get(self._store.names.cube_collection, ids=[cube_id],
                                          output_fields=["default_ttl_ms"])
            self._ttl_ms[cube_id] = int(rows[0].get("default_ttl_ms") or 0) if rows else 0
        return self._ttl_ms[cube_id]

    def forget(self, cube_id: str) -> None:
        """A cube was created, deleted or imported: its TTL and key index are read again."""
        self._ttl_ms.pop(cube_id, None)
        self._keys.pop(cube_id, None)

    def write(self, cube_id: str, items: Sequence[MemoryItem], rows: list[dict[str, Any]],
              insert: bool) -> tuple[Supersession, ...]:
        """Write `rows` (the rows of `items`, in order; inserted, or upserted over the stored
        ones) once the active ones are settled, then the stored memories they superseded: a
        crash between leaves both active, nothing lost. Returns the decisions. Who calls it:
        the tier's add and update, and StructureIndex.reread, under the write lock."""
        live = [(i, r) for i, r in zip(items, rows) if i.state == ACTIVE]
        decisions, stored = self._settle(cube_id, [i for i, _ in live], [r for _, r in live])
        store = self._store
        (store.client.insert if insert else store.client.upsert)(store.names.collection, rows)
        if stored:
            store.client.upsert(store.names.collection, stored)
        store.wrote(len(rows) + len(stored))
        return decisions

    def _settle(self, cube_id: str, items: Sequence[MemoryItem], rows: list[dict[str, Any]]
                ) -> tuple[tuple[Supersession, ...], list[dict[str, Any]]]:
        """Record each memory's facts in its row (and the slots' words in its BM25 text),
        decide supersessions against the cube's active memories and among the batch, and mark
        the rows. Returns the decisions and the stored rows to rewrite."""
        facts = [self._facts.facts(item.structure) for item in items]
        for row, found in zip(rows, facts):
            if found:
                row["lifecycle"] = {**row["lifecycle"], "k": [f.key for f in found],
                                    "f": [[f.subject, f.slot, f.value] for f in found]}
                words = self._facts.words(found)
                row["index_text"] += f"\n{words}" if words else ""
        keys = sorted({f.key for found in facts for f in found})
        if not keys:
            return (), []
        stored = self._contenders(cube_id, keys, [item.id for item in items])
        index = self._index(cube_id)
        for item, found in zip(items, facts):
            for fact in found:
                index.setdefault(fact.key, set()).add(item.id)
        candidates = [Candidate(r["memory_id"], _stored_facts(r), ms.decode_time(
            r["valid_from_ms"]), int(r["updated_at_ms"])) for r in stored.values()]
        candidates += [Candidate(item.id, found, item.valid_from_ms, item.updated_at_ms, True)
                       for item, found in zip(items, facts) if found]
        decisions = self.policy.decide(cube_id, candidates)
        batch = {item.id: row for item, row in zip(items, rows)}
        changed: dict[str, dict[str, Any]] = {}
        for decision in decisions:
            old = batch.get(decision.old_id) or changed.setdefault(
                decision.old_id, stored[decision.old_id])
            _mark_superseded(old, decision)
            new = batch.get(decision.new_id) or changed.setdefault(
                decision.new_id, stored[decision.new_id])
            life = new["lifecycle"]
            life["of"] = sorted({*life.get("of", ()), decision.old_id})
        return tuple(decisions), list(changed.values())

    def _contenders(self, cube_id: str, keys: list[str],
                    writing: list[str]) -> dict[str, dict[str, Any]]:
        """The cube's active memories stating any of these facts' keys, whole rows by id (a
        superseded one is rewritten). Found through the cube's key index, then read by primary
        key: a JSON filter (json_contains_any) over rows not yet flushed crashed milvus-lite
        2.5's server."""
        index = self._index(cube_id)
        ids = sorted({i for k in keys for i in index.get(k, ())} - set(writing))
        rows = self._store.current_rows(cube_id, ids, ms.FULL_ROW)
        return {i: r for i, r in rows.items() if r["state"] == ACTIVE}

    def _index(self, cube_id: str) -> dict[str, set[str]]:
        """Fact key -> ids of the cube's memories that stated it (a superset of the active
        holders: `_contenders` checks each one's state). Loaded on first use from the cube's
        active rows, kept in step by `settle`; under the write lock, like every caller."""
        if cube_id not in self._keys:
            store = self._store
            expr = scope_expr([cube_id])
            expr.add(f"state == {expr.param(ACTIVE)}")
            index: dict[str, set[str]] = {}
            for row in store.scan_rows(store.names.collection, expr.render(),
                                       ["pk", "memory_id", "lifecycle"]):
                for key in (row.get("lifecycle") or {}).get("k", ()):
                    index.setdefault(key, set()).add(row["memory_id"])
            self._keys[cube_id] = index
        return self._keys[cube_id]

    def set_state(self, cube_id: str, memory_id: str, state: str, reason: str,
                  successor_id: str = "", valid_to_ms: Optional[int] = None) -> MemoryItem:
        """Move an active memory to `state` (superseded or archived), under the write lock.
        FailedPrecondition if it is no longer active (one winner of two concurrent changes),
        NotFound if it does not exist. Who calls it: the tier's feedback."""
        store = self._store
        with store.write_lock:
            row = self._row(cube_id, memory_id)
            require_active(memory_id, row["state"], (row.get("lifecycle") or {}).get("by", ""),
                           "change state", "id")
            row["state"], life = state, dict(row.get("lifecycle") or {})
            life["why"] = reason
            if successor_id:
                life["by"] = successor_id
            row["lifecycle"] = life
            if valid_to_ms is not None:
                row["valid_to_ms"] = max(valid_to_ms, int(row["valid_from_ms"]) + 1)
            rows = [row]
            if successor_id:  # the successor names what it superseded
                successor = self._row(cube_id, successor_id)
                life = dict(successor.get("lifecycle") or {})
                life["of"] = sorted({*life.get("of", ()), memory_id})
                successor["lifecycle"] = life
                rows.append(successor)
            store.client.upsert(store.names.collection, rows)
            store.wrote(len(rows))
            return store.engine.row_to_item(row)

    def _row(self, cube_id: str, memory_id: str) -> dict[str, Any]:
        rows = self._store.current_rows(cube_id, [memory_id], ms.FULL_ROW)
        if memory_id not in rows:
            raise NotFound(f"memory {memory_id!r} does not exist in cube {cube_id!r}", "id")
        return rows[memory_id]

    def due_cubes(self) -> list[str]:
        """The cubes holding active memories whose expiry has passed."""
        store = self._store
        rows = store.scan_rows(store.names.collection, self._due().render(), ["pk", "cube_id"])
        return sorted({r["cube_id"] for r in rows})

    def _due(self, cube_id: Optional[str] = None) -> Expr:
        expr = scope_expr([cube_id]) if cube_id is not None else Expr()
        expr.add(f"state == {expr.param(ACTIVE)}")
        expr.add(f"expires_at_ms <= {expr.param(self._store.now_ms())}")
        return expr

    def expire(self, cube_id: str, action: str, limit: int) -> list[str]:
        """Archive (or delete, with history) up to `limit` of the cube's active memories whose
        expiry has passed; returns their ids. Who calls it: the scheduler's cycle, through the
        shard (GuardedShard.expire_due), inside the cube's write guard."""
        store = self._store
        with store.write_lock:
            ids = sorted(r["memory_id"] for r in store.scan_rows(
                store.names.collection, self._due(cube_id).render(), ["pk", "memory_id"]))[:limit]
            if action == "delete":
                store.delete_memories(cube_id, ids)
            elif ids:
                due = list(store.current_rows(cube_id, ids, ms.FULL_ROW).values())
                for row in due:
                    row["state"] = ARCHIVED
                    row["lifecycle"] = {**(row.get("lifecycle") or {}), "why": "expired"}
                store.client.upsert(store.names.collection, due)
                store.wrote(len(due))
        return ids


def _stored_facts(row: dict[str, Any]) -> tuple[Fact, ...]:
    return tuple(Fact(*f) for f in (row.get("lifecycle") or {}).get("f", ()))


def _mark_superseded(row: dict[str, Any], decision: Supersession) -> None:
    row["state"] = SUPERSEDED
    valid_from = int(row["valid_from_ms"])
    row["valid_to_ms"] = ms.TIME_MAX if decision.valid_to_ms is None else \
        max(decision.valid_to_ms, valid_from + 1)  # never an empty validity
    row["lifecycle"] = {**row["lifecycle"], "by": decision.new_id, "why": decision.reason}

