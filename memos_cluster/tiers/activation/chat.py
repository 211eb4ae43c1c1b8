"""A chat turn on activation memory: the conversation's prompt (chat_layout.py) answered over the
longest cached prefix of its pieces, and the answer kept with the prompt for the next turn.

What is kept after a turn: one cache of the prompt and the answer (its keys and values), keyed
by the prompt's pieces and the answer's token ids; the caches of the same conversation's
earlier turns, which are its prefixes, are dropped (the longer one serves any lookup they
would). So a conversation holds about one copy of its keys and values, under the store's
budgets (device, host, disk, then dropped, least recently used first), and a spilled or
dropped one is reloaded or recomputed, never taken from another conversation: a cached prefix
of piece keys is a prefix of the same token ids.

The answers the model generated are remembered by their text (bounded, oldest out): a client
sending an answer back as it was generated gets its exact token ids, and so its cache; an
edited answer is tokenized from its text and computed again from where it differs.

Who uses it: `ActivationEngine.chat`, once per Chat request, in the KV actor.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Sequence

from memos_cluster.core.tier_types import (
    ChatRequest, GenerateStats, TokenEvent)
from memos_cluster.tiers.activation.blocks import Segment
from memos_cluster.tiers.activation.chat_layout import ChatLayout, Piece, text_key
from memos_cluster.tiers.activation.kvstore import KVStore, cache_layers, cache_view
from memos_cluster.tiers.activation.lru import LruMap
from memos_cluster.tiers.activation.segmented import ACTIVATION, PLAINTEXT, Prepared

ANSWERS_KEPT = 4096  # generated answers whose token ids are remembered, by their text


class AnswerBook:
    """Token ids of generated answers by their text (its hash), oldest out; thread-safe."""

    def __init__(self, capacity: int = ANSWERS_KEPT):
        self._ids: LruMap[str, tuple[int, ...]] = LruMap(capacity)

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    def get(self, text: str) -> Optional[tuple[int, ...]]:
        return self._ids.get(self._key(text))

    def put(self, text: str, ids: tuple[int, ...]) -> None:
        self._ids.put(self._key(text), ids)


@dataclass(frozen=True)
class ChatParts:
    """What a chat turn uses of its ActivationEngine: the adapter host every forward pass goes
    through, the model's config, and the engine's length check, decoding loop, prefill and
    detokenizer, so a chat answer is decoded exactly as a Generate answer is."""

    adapters: Any
    model_config: Any
    check_length: Callable[[int, Any], None]
    decode: Callable[[Any, Any, Prepared, float], Iterator[TokenEvent | GenerateStats]]
    prefill: Callable[[Any, Sequence[int], Any], Any]
    decode_text: Callable[[Sequence[int]], str]


class ChatRunner:
    def __init__(self, engine: ChatParts, layout: ChatLayout, store: KVStore):
        self._engine = engine
        self._layout = layout
        self._store = store
        self.answers = AnswerBook()

    def run(self, request: ChatRequest) -> Iterator[TokenEvent | GenerateStats]:
        """Stream the answer's tokens, then its stats (prefill_tokens_saved: the prompt tokens
        taken from a cached prefix)."""
        start = time.perf_counter()
        engine = self._engine
        pieces = self._layout.pieces(request.messages, request.context, self.answers.get)
        tokens = [t for p in pieces for t in p.tokens]
        engine.check_length(len(tokens), request.sampling)
        with engine.adapters.using(()) as model:
            prepared = self._prepare(pieces, tokens, request.use_cache)
            prepared.served = _served(request, pieces, prepared.saved)
            prepared.from_cache = sum(tier == ACTIVATION for _, tier in prepared.served)
            kept = None
            try:
                stats = None
                for event in engine.decode(model, request, prepared, start):
                    if isinstance(event, GenerateStats):
                        stats = event
                    else:
                        yield event
                if request.use_cache:
                    kept = self._keep(model, pieces, prepared, stats)
            finally:
                self._store.release_all(prepared.pins)
            if kept:  # after the release: the cache this turn started from is one of them
                self._store.drop_prefixes(kept)
            yield stats

    def _prepare(self, pieces: list[Piece], tokens: list[int], use_cache: bool) -> Prepared:
        from transformers import DynamicCache

        config = self._engine.model_config
        if not use_cache:
            return Prepared(DynamicCache(config=config), tokens, len(tokens))
        match, layers = self._store.acquire([p.key for p in pieces])
        if layers is None:
            return Prepared(DynamicCache(config=config), tokens, len(tokens))
        # The whole prompt cached (a retried turn): the last token is computed again for
        # its logits, which a cache does not hold.
        reused = min(match.num_tokens, len(tokens) - 1)
        return Prepared(cache_view(layers, reused, config), tokens[reused:], len(tokens),
                        reused, [match.cache_id], [match.cache_id])

    def _keep(self, model: Any, pieces: list[Piece], prepared: Prepared,
              stats: GenerateStats) -> list[Any]:
        """Record the prompt and the answer as one cache, and the answer's ids by its text;
        the cache's keys."""
        answer = stats.generated
        cache = prepared.cache
        if answer and stats.finish_reason != "eos":
            # The last token was sampled, not computed: compute it, so the cache holds all.
            self._engine.prefill(model, [answer[-1]], cache)
        kept = list(pieces) + ([Piece(text_key(answer), answer)] if answer else [])
        num_tokens = sum(len(p.tokens) for p in kept)
        if cache.get_seq_length() != num_tokens:
            raise RuntimeError(f"a chat cache holds {cache.get_seq_length()} tokens, its "
                               f"pieces {num_tokens}")
        segments = [Segment(p.key, len(p.tokens)) for p in kept]
        self._store.put(segments, cache_layers(cache))
        if answer:
            self.answers.put(self._engine.decode_text(answer), answer)
        return [s.key for s in segments]


def _served(request: ChatRequest, pieces: list[Piece],
            reused_tokens: int) -> list[tuple[Any, str]]:
    """Each placed memory and the tier that served it: activation when its piece lies inside
    the reused prefix."""
    by_key = {(m.cube_id, m.memory_id, m.version): m for ms in request.context for m in ms}
    served, end = [], 0
    for piece in pieces:
        end += len(piece.tokens)
        memory = by_key.get((piece.key.cube_id, piece.key.memory_id, piece.key.version))
        if piece.key.cube_id and memory is not None:
            served.append((memory, ACTIVATION if end <= reused_tokens else PLAINTEXT))
    return served

