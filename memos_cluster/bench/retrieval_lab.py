"""Candidate lists for `bench locomo --cross-validate`: every retriever's top candidates for every
LoCoMo question, from the real engine, once, so that thousands of recipes can be scored offline.

- BM25 lists come from milvus-lite itself (the plaintext tier, in-process), one collection per
  index-time variant (stop words x preceding turns indexed as context): the engine's analyzer
  and scorer, not a re-implementation.
- Each conversation is read once by the memory reader (its dates: `Turns.times`); a BM25
  variant with dates indexes them beside the text, as the shard does (search.bm25_dates).
- Dense lists are exact cosine top-N over each conversation's turn vectors (numpy): the HNSW
  index at ef 64 over ~600 rows of a cube returns the same neighbours; the gateway run of
  `bench locomo` then checks the chosen recipe end to end.

Who calls it: `memos_cluster.cli.bench.bench_locomo` with `--cross-validate`. Embeddings are
cached under `work_dir` (e5 embeds ~40 turns/s on 2 cores; 2,760 turns take a minute).
"""
from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from memos_cluster.bench.crossval import QuestionLists, Scored, Turns
from memos_cluster.bench.evaluation import locomo_questions
from memos_cluster.core.config import MemosConfig, with_overrides
from memos_cluster.core.structure import MemoryStructure
from memos_cluster.core.types import CubeSpec, SearchMode, SearchQuery
from memos_cluster.data.locomo import locomo_memories
from memos_cluster.embed.base import Embedder
from memos_cluster.reader import NullReader, ReaderInput, SpacyReader
from memos_cluster.tiers.plaintext.dates import MemoryTimes
from memos_cluster.tiers.plaintext.graph import CubeGraph, resolve_mentions
from memos_cluster.tiers.plaintext.tier import PlaintextTier

LIST_DEPTH = 100  # candidates kept per retriever and question (the recipes use up to this)


class DatesReader:
    """The reader's dates (no entities) of texts read once: the BM25 variants with dates reuse
    them instead of reading every conversation again. Who builds it: `collect`."""

    def __init__(self, structures: dict[tuple[str, int], MemoryStructure]):
        self._structures = structures
        self.name = "bench-dates"

    def read_many(self, inputs):
        return [self._structures[(i.text, i.event_time_ms)] for i in inputs]


def read_turns(samples: Sequence[dict]) -> dict[tuple[str, int], MemoryStructure]:
    """(text, event time) -> the reader's structure, every turn read once."""
    memories = [m for s in samples for m in locomo_memories(s, context_turns=0)]
    structures = SpacyReader().read_many([ReaderInput(m.text, m.event_time_ms)
                                          for m in memories])
    return {(m.text, m.event_time_ms): s for m, s in zip(memories, structures)}


def dates_only(read: dict[tuple[str, int], MemoryStructure]
               ) -> dict[tuple[str, int], MemoryStructure]:
    return {k: MemoryStructure(times=s.times, reader=s.reader) for k, s in read.items()}


def conversation_graph(memories: Sequence, read: dict[tuple[str, int], MemoryStructure]
                       ) -> tuple[CubeGraph, dict[str, frozenset[str]]]:
    """The conversation's entity graph as a cube builds it (exact, fuzzy and short-name
    resolution; the name-embedding step left out) and each turn's entity ids."""
    graph = CubeGraph("bench")
    structures = [read[(m.text, m.event_time_ms)] for m in memories]
    resolved, _ = resolve_mentions(graph, structures)
    mentions = {}
    for memory, structure in zip(memories, resolved):
        graph.put_memory(memory.metadata["dia_id"], structure, memory.event_time_ms)
        mentions[memory.metadata["dia_id"]] = frozenset(
            e.entity_id for e in structure.entities if e.entity_id)
    return graph, mentions


def conversation_turns(sample: dict,
                       dates: dict[tuple[str, int], MemoryStructure]) -> Turns:
    memories = locomo_memories(sample, context_turns=0)
    ids = [m.metadata["dia_id"] for m in memories]
    predecessor = {ids[i]: ids[i - 1] for i in range(1, len(memories))
                   if memories[i].metadata["session"] == memories[i - 1].metadata["session"]}
    times = {i: MemoryTimes(m.event_time_ms, tuple(
        (t.start_ms, t.end_ms) for t in dates[(m.text, m.event_time_ms)].resolved_times()))
        for i, m in zip(ids, memories)}
    graph, mentions = conversation_graph(memories, dates)
    return Turns(ids, [m.text for m in memories], predecessor, times,
                 max(m.event_time_ms for m in memories), graph, mentions)


def _cached_embed(name: str, embed: Callable[[list[str]], np.ndarray], texts: list[str],
                  work_dir: Path) -> np.ndarray:
    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    path = work_dir / f"{name}-{key}.npy"
    if path.exists():
        return np.load(path)
    vectors = np.asarray(embed(texts), dtype=np.float32)
    np.save(path, vectors)
    return vectors


def dense_lists(name: str, embed_docs: Callable[[list[str]], np.ndarray],
                embed_queries: Callable[[list[str]], np.ndarray], samples: Sequence[dict],
                turns_of: dict[str, Turns], work_dir: Path,
                say: Callable[[str], None]) -> dict[tuple[str, str], Scored]:
    """(sample_id, question) -> exact cosine top LIST_DEPTH turns by one embedder."""
    out: dict[tuple[str, str], Scored] = {}
    for sample in samples:
        turns = turns_of[sample["sample_id"]]
        say(f"  {name}: {sample['sample_id']} ({len(turns.ids)} turns)")
        docs = _cached_embed(f"{name}-docs", embed_docs, turns.texts, work_dir)
        questions = [q.question for q in locomo_questions(sample)]
        queries = _cached_embed(f"{name}-queries", embed_queries, questions, work_dir)
        scores = queries @ docs.T
        for text, row in zip(questions, scores):
            best = np.argsort(-row, kind="stable")[:LIST_DEPTH]
            out[(sample["sample_id"], text)] = [(turns.ids[i], float(row[i])) for i in best]
    return out


def bm25_lists(stop_words: str, context_turns: int, samples: Sequence[dict],
               embedder: Embedder, dates: Optional[DatesReader] = None
               ) -> dict[tuple[str, str], Scored]:
    """(sample_id, question) -> the engine's BM25 top LIST_DEPTH, one cube a conversation, on a
    throwaway milvus-lite directory with this variant's stop words and context (and, with
    `dates`, the reader's dates indexed beside the text)."""
    with tempfile.TemporaryDirectory(prefix="memos-crossval-") as data_dir:
        config = with_overrides(MemosConfig(), {"data_dir": data_dir,
                                                "storage.bm25_stop_words": stop_words})
        tier = PlaintextTier(config, "shard-0", embedder, reader=dates or NullReader())
        tier.open()
        try:
            return _bm25_in(tier, context_turns, samples, embedder.dim)
        finally:
            tier.close()


def _bm25_in(tier: PlaintextTier, context_turns: int, samples: Sequence[dict],
             dim: int) -> dict[tuple[str, str], Scored]:
    out: dict[tuple[str, str], Scored] = {}
    for sample in samples:
        cube = sample["sample_id"]
        tier.create_cube(CubeSpec(cube))
        memories = locomo_memories(sample, context_turns=context_turns)
        # BM25 does not read the dense field: zero vectors spare an embedding pass per variant.
        tier.add(cube, memories, vectors=np.zeros((len(memories), dim), dtype=np.float32))
    # Sealed rows search fast; the tier's own flusher waits for writes to pause (flush.py).
    tier.store.client.flush(tier.store.names.collection)
    for sample in samples:
        for question in locomo_questions(sample):
            hits = tier.search(SearchQuery(cube_ids=(sample["sample_id"],),
                                           query=question.question, top_k=LIST_DEPTH,
                                           mode=SearchMode.BM25))
            out[(sample["sample_id"], question.question)] = [
                (str(h.item.metadata["dia_id"]), h.score) for h in hits]
    return out


def collect(samples: Sequence[dict], embedders: dict[str, tuple[Callable, Callable]],
            embedder: Embedder, variants: Sequence[tuple[str, int, bool]], work_dir: Path,
            say: Callable[[str], None] = print) -> tuple[list[QuestionLists], dict[str, Turns]]:
    """Every question's lists: each (stop words, context turns, dates) BM25 variant and each
    dense embedder (name -> (embed documents, embed queries)). `embedder`: the tier's model,
    whose dimension the throwaway collections take."""
    work_dir.mkdir(parents=True, exist_ok=True)
    say("  reading every turn (dates, entities) ...")
    read = read_turns(samples)
    turns = {s["sample_id"]: conversation_turns(s, read) for s in samples}
    dates = dates_only(read)
    by_retriever: dict[str, dict[tuple[str, str], Scored]] = {}
    for name, (docs, queries) in embedders.items():
        by_retriever[name] = dense_lists(name, docs, queries, samples, turns, work_dir, say)
    for stop, context, with_dates in variants:
        say(f"  bm25: stop words {stop}, {context} context turns, dates "
            f"{'on' if with_dates else 'off'}")
        name = f"bm25/{stop}/{context}" + ("/dates" if with_dates else "")
        by_retriever[name] = bm25_lists(stop, context, samples, embedder,
                                        DatesReader(dates) if with_dates else None)
    out = []
    for sample in samples:
        for question in locomo_questions(sample):
            key = (sample["sample_id"], question.question)
            out.append(QuestionLists(question, {n: lists[key] for n, lists in
                                                by_retriever.items()}))
    return out, turns
