"""A shard's search: dense, BM25 or hybrid over the cubes it owns (one of PlaintextTier's
composed parts, like duplicates.py and transfer.py, over the same MilvusStore).

Who uses it: PlaintextTier.search / embed_query / embed_texts, which pass the tier's query
thread pool (made by open()).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any, Optional, Sequence

from memos_cluster.core.config import SearchConfig
from memos_cluster.core.structure import stored_periods
from memos_cluster.core.types import SearchHit, SearchMode, SearchQuery
from memos_cluster.embed.base import Embedder
from memos_cluster.tiers.plaintext import schema as ms
from memos_cluster.tiers.plaintext.candidates import cut_ties, predecessors, single_hit
from memos_cluster.tiers.plaintext.dates import MemoryTimes, time_matches
from memos_cluster.tiers.plaintext.filters import build_search_expr
from memos_cluster.tiers.plaintext.fusion import explain_hybrid, fuse_hybrid
from memos_cluster.tiers.plaintext.store import MilvusStore
from memos_cluster.tiers.plaintext.structure import StructureIndex

TIE_SLACK = 8  # extra rows fetched so a tie at the top_k cut is broken by id, not storage order


class Searcher:
    def __init__(self, store: MilvusStore, structure: StructureIndex, embedder: Embedder,
                 config: SearchConfig):
        self.store = store
        self._structure = structure
        self._embedder = embedder
        self._config = config

    def search(self, request: SearchQuery, pool: ThreadPoolExecutor,
               vector: Optional[Sequence[float]] = None) -> list[SearchHit]:
        """Top-k current memories of the request's cubes, best first; `pool` embeds the
        query beside the BM25 search (hybrid), `vector` is its embedding if the caller has it."""
        for cube_id in request.cube_ids:
            self.store.require_cube(cube_id)
        expr = build_search_expr(list(request.cube_ids), request.filter,
                                 self.store.engine.event_time_none, self.store.now_ms()).render()
        query, top_k = request.query, request.top_k
        if request.mode is SearchMode.BM25:
            results = self._search_one("sparse", query, top_k + TIE_SLACK, expr)
            # milvus-lite reports BM25 as a negated score; the order is already best first.
            return cut_ties([single_hit(self.store.engine.row_to_item(h),
                                        abs(float(h["distance"])), rank, request.explain, "bm25")
                             for rank, h in enumerate(results, start=1)], top_k)
        if request.mode is SearchMode.DENSE:
            results = self._search_one("dense", vector or self.embed_texts([query])[0],
                                       top_k + TIE_SLACK, expr)
            return cut_ties([single_hit(self.store.engine.row_to_item(h), float(h["distance"]),
                                        rank, request.explain, "dense")
                             for rank, h in enumerate(results, start=1)], top_k)
        return self._hybrid(request, expr, pool, vector)

    def embed_texts(self, texts: list[str]) -> list[list[float]]:
        """L2-normalised embeddings of texts by the tier's model."""
        return [[float(x) for x in row] for row in self._embedder.embed(texts)]

    def _search_one(self, field: str, data: Any, limit: int, expr: str,
                    rows: Optional[dict[str, dict]] = None) -> list[dict]:
        """The hits of one retriever with their fields; `rows`, when given, collects each
        hit's row by primary key."""
        results = self.store.client.search(
            self.store.names.collection, data=[data], anns_field=field, limit=limit, filter=expr,
            search_params=self.store.search_params(field), output_fields=ms.MEMORY_FIELDS)
        hits = list(results[0]) if results else []
        if rows is not None:
            for hit in hits:
                rows.setdefault(hit["pk"], hit)
        return hits

    def _times(self, rows: dict[str, dict]) -> dict[str, MemoryTimes]:
        """Each candidate's event time and resolved dates, for the time boosts."""
        decode = self.store.engine.decode_event_time
        return {pk: MemoryTimes(decode(row.get("event_time_ms")),
                                stored_periods(row.get("structure")))
                for pk, row in rows.items()}

    def _hybrid(self, request: SearchQuery, expr: str, pool: ThreadPoolExecutor,
                given: Optional[Sequence[float]] = None) -> list[SearchHit]:
        """Dense and BM25 candidates, with their rows, fused (fusion.py). The query is embedded
        on a worker thread while the BM25 search runs: onnxruntime releases the GIL, so the two
        overlap on a second core. Candidates come with their fields, so no third call fetches
        the winners (fields cost the engine 0.1 ms more a search at 10k rows; a `get` of the
        top_k rows cost 1.3 ms of the engine's time and 0.8 ms of ours)."""
        search, query, top_k = self._config, request.query, request.top_k
        candidates = max(top_k, search.num_candidates)
        # A vector the caller embedded needs no thread; otherwise embed beside the BM25 search.
        vector = None if given else pool.submit(self.embed_texts, [query])
        rows: dict[str, dict] = {}
        # BM25 scores: abs() keeps them positive whichever sign the engine reports them with.
        sparse = [(h["pk"], abs(float(h["distance"])))
                  for h in self._search_one("sparse", query, candidates, expr, rows=rows)]
        dense = [(h["pk"], float(h["distance"]))
                 for h in self._search_one("dense", given or vector.result()[0], candidates,
                                           expr, rows=rows)]
        reference_ms = request.reference_time_ms
        reference_ms = self.store.now_ms() if reference_ms is None else reference_ms
        # Cached: an explained query asks for the candidates' times and entities twice.
        times = cache(lambda: time_matches(lambda: self._times(rows), query, reference_ms))
        shares = cache(lambda: self._structure.entity_shares(query, rows))
        knobs = dict(method=search.fusion, rrf_k=search.rrf_k,
                     neighbour_share=search.neighbour_share,
                     predecessor=lambda: predecessors(rows), date_boost=search.date_boost,
                     when_boost=search.when_boost, times=times,
                     entity_boost=search.entity_boost, entity_shares=shares)
        weights = [search.dense_weight, search.bm25_weight]
        fused = fuse_hybrid([dense, sparse], weights, **knobs)[:top_k]
        parts = explain_hybrid(dense, sparse, weights, **knobs) if request.explain else {}
        return [SearchHit(self.store.engine.row_to_item(rows[pk]), score,
                          explain=parts.get(pk)) for pk, score in fused]
