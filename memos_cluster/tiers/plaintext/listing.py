"""Paging through a cube's current memories with a filter: the console's memory table
(ListMemories). A part of each PlaintextTier.

Milvus queries have no ORDER BY, so a page is cut from an ordered scan of the matching memories'
ids and update times (two small columns; the text too only when a substring is asked for), and
only the page's rows are then read whole. The offset is the page token: a write between two pages
can shift a memory across the cut (shown twice or not at all), never lose it from the cube.
"""
from __future__ import annotations

from memos_cluster.core.config import LimitsConfig
from memos_cluster.core.types import ListQuery, MemoryPage
from memos_cluster.core.validation import check_list_query
from memos_cluster.tiers.plaintext.filters import build_search_expr
from memos_cluster.tiers.plaintext.store import MilvusStore

DEFAULT_PAGE_SIZE = 50  # memories per page when the caller gives 0


class Listing:
    """Over one shard's MilvusStore; `PlaintextTier.listing`."""

    def __init__(self, store: MilvusStore):
        self._store = store

    def page(self, query: ListQuery, limits: LimitsConfig) -> MemoryPage:
        """Who calls it: PlaintextTier.list_memories, for the shard actor."""
        check_list_query(query, limits)  # the service checked too; a shard serves other callers
        store = self._store
        store.require_cube(query.cube_id)
        size = query.page_size or DEFAULT_PAGE_SIZE
        expr = build_search_expr([query.cube_id], query.filter, store.engine.event_time_none,
                                 store.now_ms())
        needle = query.text_contains.casefold()
        fields = ["memory_id", "updated_at_ms"] + (["text"] if needle else [])
        keys = sorted((-int(r["updated_at_ms"]), r["memory_id"])
                      for r in store.scan_rows(store.names.collection, expr.render(), fields)
                      if not needle or needle in r["text"].casefold())
        ids = [memory_id for _, memory_id in keys[query.offset:query.offset + size]]
        rows = store.current_rows(query.cube_id, ids)
        # A memory deleted between the scan and the read is left out of its page.
        items = tuple(store.engine.row_to_item(rows[i]) for i in ids if i in rows)
        end = query.offset + size
        return MemoryPage(items=items, next_offset=end if end < len(keys) else None,
                          total=len(keys))
