"""Segments composition: a prompt's memories served from per-memory KV caches.

Each memory has its own cache, computed once; a prompt appends each cached memory at its
place with its keys rotated there (compose.py). Two caches a memory can have:

- anchored (when `activation.segment_anchor` is set, the default): [head] + the anchor line +
  memory. The anchor is dropped when composing, so the memory was encoded as a later line of
  a memory list, as it stands in most prompts (Star Attention prefixes each block so);
- plain: [head] + memory, which is exactly a full prefill's keys/values for a memory that opens
  the prompt. Promotion builds both; the memory that opens a prompt uses its plain cache when
  there is one (exact: never recomputed), every later memory its anchored one.

A memory with no cache is prefilled in place (attending to all before it); block memories get
one built (and kept) first. Then the `recompute_ratio` share of the composed tokens, chosen by
the `recompute_select` rule (select.py), is computed again with the question.

Who uses it: `ActivationEngine` in segments composition (engine.py). Torch is imported lazily.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from memos_cluster.core.tier_types import BlockMemory, BlockStats
from memos_cluster.tiers.activation.blocks import Segment, SegmentKey
from memos_cluster.tiers.activation.compose import (
    Piece, RopeShift, append_pieces, composed_cache, segment_piece)
from memos_cluster.tiers.activation.kvstore import KVStore, Layers, cache_layers
from memos_cluster.tiers.activation.select import choose, probe

ACTIVATION, PLAINTEXT = "activation", "plaintext"  # which tier served a prompt's memory
# The prompt's fixed instruction (PromptFormat.instruction) as a pseudo-memory: composed from
# its own anchored cache after the memories, when `activation.cache_instruction` is on.
INSTRUCTION = BlockMemory("", "instruction", 0, "")


@dataclass
class Prepared:
    """A request's prompt before decoding: the cache so far and the tokens still to prefill."""

    cache: Any
    pending: list[int]
    prompt_tokens: int
    saved: int = 0  # prompt tokens whose keys/values came from activation memory
    caches_used: list[str] = field(default_factory=list)
    pins: list[str] = field(default_factory=list)  # cache ids to release after the request
    from_cache: int = 0  # memories served from activation memory
    # The prompt's memories in order, with the tier that served each (ACTIVATION: keys and
    # values reused; PLAINTEXT: computed from the text for this request).
    served: list[tuple[BlockMemory, str]] = field(default_factory=list)
    # Segments composition: shifted pieces not yet in the cache, and the tokens in the cache
    # plus in those pieces (where the next memory goes).
    pieces: list[Piece] = field(default_factory=list)
    length: int = 0
    # Composed memories whose cache never saw the memories before them: (first position,
    # tokens, reused from activation memory), the candidates for recomputation; and the
    # chosen ones, (tokens, positions), recomputed with the question's prefill.
    spans: list[tuple[int, tuple[int, ...], bool]] = field(default_factory=list)
    recompute: tuple[list[int], list[int]] = field(default_factory=lambda: ([], []))


@dataclass(frozen=True)
class _Found:
    layers: Optional[Layers]  # the memory's cache, None when it has none
    pinned: Optional[str]  # the cache id to release, when reused
    built: bool  # computed now (for this request), not reused
    opening: int  # tokens before the memory's own in that cache
    exact: bool  # computed after the head alone: a full prefill's for the prompt's first


class SegmentComposer:
    def __init__(self, model: Any, store: KVStore, head: Sequence[int], anchor: Sequence[int],
                 anchor_key: str, memory_tokens: Callable[..., tuple[int, ...]],
                 plain_segments: Callable[..., tuple[list[Segment], list[int]]],
                 prefill: Callable[..., Any], ratio: float, rule: str,
                 instruction: Sequence[int] = ()):
        """`plain_segments(block, adapters)` and `prefill(model, tokens, cache)` are the
        engine's; `anchor` the anchor line's tokens ([] for none); `instruction` the tail's
        fixed opening, cached and composed like a memory (() to prefill it with the
        question)."""
        self._instruction = tuple(instruction)
        self._model = model
        self._rope = RopeShift(model)
        self._store = store
        self._head, self._anchor, self._anchor_key = list(head), list(anchor), anchor_key
        self._memory_tokens = memory_tokens
        self._plain_segments = plain_segments
        self._prefill = prefill
        self.ratio, self.rule = ratio, rule

    # ---- the caches ----------------------------------------------------------------------
    def _ids(self, memory: BlockMemory) -> tuple[int, ...]:
        if memory is INSTRUCTION:
            return self._instruction
        return self._memory_tokens(memory.text, memory.event_time_ms)

    def _canonical(self, memory: BlockMemory, adapters: Sequence[str],
                   anchored: bool) -> tuple[list[Segment], list[int], int]:
        """A memory's own cache: its segments, tokens and opening length. The anchored one's
        opening segment names the anchor and the adapters, so other openings never match."""
        if not (anchored and self._anchor):
            segments, tokens = self._plain_segments((memory,), adapters)
            return segments, tokens, len(self._head)
        opening = self._anchor_key + ("|adapters:" + "+".join(adapters) if adapters else "")
        ids = self._ids(memory)
        start = len(self._head) + len(self._anchor)
        return [Segment(SegmentKey("", opening, 0), start),
                Segment(SegmentKey(memory.cube_id, memory.memory_id, memory.version),
                        len(ids))], self._head + self._anchor + list(ids), start

    def lookup(self, model: Any, memory: BlockMemory, adapters: Sequence[str], build: bool,
               anchored: bool) -> _Found:
        """The memory's cache of that kind: looked up first (pinned); prefilled and recorded
        when missing and `build`; layers None when missing and not `build`."""
        from transformers import DynamicCache

        segments, tokens, opening = self._canonical(memory, adapters, anchored)
        exact = not (anchored and self._anchor)
        match, layers = self._store.acquire([s.key for s in segments])
        if layers is not None and match.num_segments == len(segments):
            # A longer prefix-mode block starting with this memory holds it too: crop.
            return _Found([(k[..., :len(tokens), :], v[..., :len(tokens), :])
                           for k, v in layers], match.cache_id, False, opening, exact)
        self._store.release(match.cache_id)
        if not build:
            return _Found(None, None, False, opening, exact)
        cache = DynamicCache(config=self._model.config)
        self._prefill(model, tokens, cache)
        layers = cache_layers(cache)
        self._store.put(segments, layers)
        return _Found(layers, None, True, opening, exact)

    def build(self, model: Any, block: Sequence[BlockMemory]) -> BlockStats:
        """Promotion: each memory's caches (anchored, and plain for opening a prompt). Counts
        as a prefix block would: the first memory's tokens include the head."""
        total = prefilled = 0
        for i, memory in enumerate(block):
            num_tokens = len(self._memory_tokens(memory.text, memory.event_time_ms)) + (
                len(self._head) if i == 0 else 0)
            kinds = (True, False) if self._anchor else (False,)
            found = [self.lookup(model, memory, (), True, anchored) for anchored in kinds]
            self._store.release_all([f.pinned for f in found if f.pinned])
            total += num_tokens
            prefilled += num_tokens if found[0].built else 0
        return BlockStats(total, prefilled, total - prefilled, "")

    # ---- a prompt ------------------------------------------------------------------------
    def compose(self, model: Any, block: Sequence[BlockMemory],
                retrieved: Sequence[BlockMemory], adapters: Sequence[str], use_cache: bool,
                tail: list[int], check_length: Callable[[int], None]) -> Prepared:
        """[head] + the block memories + the retrieved ones + `tail`: cached memories appended
        with their keys shifted to their place, the others left pending (prefilled in place)."""
        # Block memories are cached when missing; retrieved ones only reused.
        memories = [(m, True) for m in block] + [(m, False) for m in retrieved]
        prepared = Prepared(composed_cache(self._model.config), list(self._head),
                            len(self._head) + len(tail)
                            + sum(len(self._ids(m)) for m, _ in memories))
        check_length(prepared.prompt_tokens)
        try:
            for memory, in_block in memories:
                self._place(model, prepared, memory, in_block, adapters, use_cache)
            fixed = len(self._instruction)
            if fixed and use_cache and memories and tuple(tail[:fixed]) == self._instruction:
                self._place(model, prepared, INSTRUCTION, True, adapters, use_cache)
                tail = tail[fixed:]
            self._flush(prepared)
            self._select(model, prepared, tail)
        finally:  # the pieces are in the cache (copied): the stored caches may move again
            self._store.release_all(prepared.pins)
            prepared.pins = []
        prepared.pending += tail
        return prepared

    def _place(self, model: Any, prepared: Prepared, memory: BlockMemory, in_block: bool,
               adapters: Sequence[str], use_cache: bool) -> None:
        ids = self._ids(memory)
        found = _Found(None, None, False, 0, False)
        if use_cache:
            opens = prepared.pending == self._head and prepared.length == 0
            if opens and self._anchor:  # the plain cache is exact here, when there is one
                found = self.lookup(model, memory, adapters, False, anchored=False)
            if found.layers is None:
                found = self.lookup(model, memory, adapters, in_block, anchored=True)
        if found.layers is None:
            prepared.pending += ids
            if memory is not INSTRUCTION:
                prepared.served.append((memory, PLAINTEXT))
            return
        if found.pinned:  # released once the pieces are in the cache
            prepared.pins.append(found.pinned)
            prepared.caches_used.append(found.pinned)
            prepared.saved += len(ids)
            prepared.from_cache += memory is not INSTRUCTION
        if memory is not INSTRUCTION:
            prepared.served.append((memory, PLAINTEXT if found.built else ACTIVATION))
        self._append(model, prepared, found, ids)

    def _append(self, model: Any, prepared: Prepared, found: _Found, ids: Sequence[int]) -> None:
        head, reused = len(self._head), not found.built
        exact = False  # whether these keys/values are a full prefill's (never recomputed)
        if prepared.pending == self._head and prepared.length == 0:
            # The cache's own head is the prompt's: take it too.
            prepared.pieces.append(segment_piece(found.layers, 0, 0, stop=head))
            prepared.pending, prepared.length = [], head
            prepared.saved += head if reused else 0
            exact = found.exact
        elif prepared.pending:  # what precedes this memory must be in the cache first
            self._flush(prepared)
            self._prefill(model, prepared.pending, prepared.cache)
            prepared.length += len(prepared.pending)
            prepared.pending = []
        # The memory's tokens sit after the opening in its own cache: move them to here.
        piece = segment_piece(found.layers, found.opening, prepared.length - found.opening)
        if not exact:
            prepared.spans.append((prepared.length, tuple(ids), reused))
        prepared.pieces.append(piece)
        prepared.length += piece.num_tokens

    def _select(self, model: Any, prepared: Prepared, tail: Sequence[int]) -> None:
        """Choose the composed tokens the question's prefill recomputes: the `ratio` share of
        the memories' tokens whose cache never saw the memories before them (all but a memory
        that opens the prompt from its plain cache), picked by the `rule` from one probe pass
        (select.py). A ratio of 1 recomputes them all: the prompt's keys and values are then a
        full prefill's (up to rounding)."""
        tokens = [t for _, ids, _ in prepared.spans for t in ids]
        positions = [start + i for start, ids, _ in prepared.spans for i in range(len(ids))]
        reused = [r for _, ids, r in prepared.spans for _ in ids]
        count = min(len(tokens), math.ceil(self.ratio * len(tokens)))
        if count == 0:
            return
        if count < len(tokens):
            found = probe(model, self._model, self._rope, prepared.cache, tokens, positions,
                          prepared.pending + list(tail), len(tail))
            chosen = choose(found, [len(ids) for _, ids, _ in prepared.spans], count, self.rule)
        else:
            chosen = list(range(len(tokens)))
        prepared.recompute = ([tokens[i] for i in chosen], [positions[i] for i in chosen])
        prepared.saved -= sum(reused[i] for i in chosen)

    def _flush(self, prepared: Prepared) -> None:
        if prepared.pieces:
            append_pieces(prepared.cache, prepared.pieces, self._rope)
            prepared.pieces = []
