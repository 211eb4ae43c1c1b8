"""Paging through a cube's current memories with a filter: the console's memory table
(ListMemories). A part of each PlaintextTier.

Milvus queries have no ORDER BY, so a page is cut from an ordered scan of the matching memories'
ids and update times (two small columns; the text too only when a substring is asked for), and
only the page's rows are then read whole. The offset is the page token: a write between two pages
can shift a memory across the cut (shown twice or not at all), never lose it from the cube.
"""
from __future__ import annotations

from memos_cluster.core.errors import InvalidArgument
from memos_cluster.core.types import ListQuery, MemoryPage
from memos_cluster.tiers.plaintext.filters import build_search_expr
from memos_cluster.tiers.plaintext.store import PAGE_ROWS, MilvusStore

DEFAULT_PAGE_SIZE = 50  # memories per page when the caller gives 0


class Listing:
    """Over one shard's MilvusStore; `PlaintextTier.listing`."""

    def __init__(self, store: MilvusStore):
        self._store = store

    def page(self, query: ListQuery, max_page_size: int) -> MemoryPage:
        """Who calls it: PlaintextTier.list_memories, for the shard actor."""
        store = self._store
        store.require_cube(query.cube_id)
        size = query.page_size or DEFAULT_PAGE_SIZE
        if not 0 < size <= max_page_size:
            raise InvalidArgument(f"page_size must be between 1 and {max_page_size}",
                                  "page_size")
        if query.offset < 0:
            raise InvalidArgument("page_token must be one a previous page returned",
                                  "page_token")
        expr = build_search_expr([query.cube_id], query.filter, store.engine.event_time_none)
        needle = query.text_contains.casefold()
        fields = ["memory_id", "updated_at_ms"] + (["text"] if needle else [])
        iterator = store.client.query_iterator(store.names.collection, batch_size=PAGE_ROWS,
                                               filter=expr.render(), output_fields=fields)
        keys: list[tuple[int, str]] = []
        while batch := iterator.next():
            keys.extend((-int(r["updated_at_ms"]), r["memory_id"]) for r in batch
                        if not needle or needle in r["text"].casefold())
        iterator.close()
        keys.sort()
        ids = [memory_id for _, memory_id in keys[query.offset:query.offset + size]]
        rows = store.current_rows(query.cube_id, ids)
        # A memory deleted between the scan and the read is left out of its page.
        items = tuple(store.engine.row_to_item(rows[i]) for i in ids if i in rows)
        end = query.offset + size
        return MemoryPage(items=items, next_offset=end if end < len(keys) else None,
                          total=len(keys))
