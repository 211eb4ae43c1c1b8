"""Activation memory at work: compose a prompt's memories into tokens and keys/values, reusing
cached ones, and generate on top of them.

Two compositions (`activation.compose`):
Prompts are laid out by the model's `PromptFormat` (prompt.py): a head (BOS, or the chat
template's opening of the system message), memories, then the question and the answer's opening.

- "prefix": the prompt is [head] + each block memory + the retrieved memories + the query. A cache
  holds the keys/values of a prefix of exactly that sequence, computed by the same model, so
  generating over a reused cache is the same computation as a full prefill of the whole prompt
  (the test suite checks greedy output token for token).
- "segments": the prompt is [head] + its memories (the request's block memories, then its other
  retrieved ones) + the query. Each memory's cache is computed on its own and composed at its
  place with RoPE positions fixed (`compose.py`). A block memory with no cache gets one built
  (and kept) first; a retrieved memory outside the block with none is prefilled in place.
  The `recompute_ratio` share of the composed tokens that deviate most from a full prefill is
  computed again with the question (compose.prefill_recomputing), which restores attention
  between memories where it matters most; at 1 the answer is a full prefill's.

Who uses it: the KV-cache actor (`actors/kv_cache.py`) builds one per model and forwards
`build` / `generate` to it. Torch is imported lazily.
"""
from __future__ import annotations

import functools
import hashlib
import math
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Sequence

from memos_cluster.core.errors import ConfigError, InvalidArgument
from memos_cluster.core.tier_types import (
    BlockMemory, BlockStats, GenerateStats, SamplingParams, TokenEvent)
from memos_cluster.tiers.activation.blocks import Segment, SegmentKey
from memos_cluster.tiers.activation.compose import (
    Piece, RopeShift, append_pieces, composed_cache, prefill_recomputing, segment_piece)
from memos_cluster.tiers.activation.select import choose, probe
from memos_cluster.tiers.activation.kvstore import KVStore, Layers, cache_layers, cache_view
from memos_cluster.tiers.llm.prompt import prompt_format

MEMORY_TOKEN_CACHE = 8192  # memory texts whose token ids an engine keeps


@dataclass(frozen=True)
class GenerateRequest:
    block: tuple[BlockMemory, ...]  # the activation block, in order (several cubes: concatenated)
    query: str
    retrieved: tuple[BlockMemory, ...] = ()  # retrieved plaintext memories, after the block
    sampling: SamplingParams = SamplingParams()
    use_cache: bool = True  # False: full prefill of the same prompt (the exactness baseline)
    adapters: tuple[str, ...] = ()  # loaded adapter names active for this request (LoRA)


@dataclass
class _Prepared:
    """A request's prompt before decoding: the cache so far and the tokens still to prefill."""

    cache: Any
    pending: list[int]
    prompt_tokens: int
    saved: int = 0  # prompt tokens whose keys/values came from activation memory
    caches_used: list[str] = field(default_factory=list)
    pins: list[str] = field(default_factory=list)  # cache ids to release after the request
    from_cache: int = 0  # memories served from activation memory
    # Segments composition: shifted pieces not yet in the cache, and the tokens in the cache
    # plus in those pieces (where the next memory goes).
    pieces: list[Piece] = field(default_factory=list)
    length: int = 0
    # Composed memories whose cache never saw the memories before them: (first position,
    # tokens, reused from activation memory), the candidates for recomputation; and the
    # chosen ones, (tokens, positions), recomputed with the question's prefill.
    spans: list[tuple[int, tuple[int, ...], bool]] = field(default_factory=list)
    recompute: tuple[list[int], list[int]] = field(default_factory=lambda: ([], []))


class ActivationEngine:
    def __init__(self, model: Any, tokenizer: Any, store: KVStore, max_prompt_tokens: int,
                 compose: str = "prefix", recompute_ratio: float = 0.0,
                 recompute_select: str = "deviation", anchor: str = ""):
        from memos_cluster.tiers.llm.serving import AdapterHost

        # Segments composition shifts cached keys: refused (ConfigError) for a model whose
        # positions it cannot shift.
        self.compose = compose
        # Segments composition: the share of composed memory tokens recomputed per prompt.
        self.recompute_ratio = recompute_ratio
        self.recompute_select = recompute_select  # select.RULES
        self._rope = RopeShift(model) if compose == "segments" else None
        if compose == "prefix" and getattr(model.config, "sliding_window", None):
            # A sliding-window cache keeps only the window: a stored block would be cut.
            raise ConfigError("activation.compose 'prefix' does not support sliding-window "
                              "attention; use 'segments'", "activation.compose")

        self._model = model
        self.adapters = AdapterHost(model)  # every forward pass goes through it
        self._tokenizer = tokenizer
        self._store = store
        self._max_prompt_tokens = max_prompt_tokens
        generation = getattr(model, "generation_config", None)
        eos = [model.config.eos_token_id, getattr(generation, "eos_token_id", None)]
        self.format = prompt_format(tokenizer, [t for e in eos if e is not None
                                                for t in (e if isinstance(e, list) else [e])])
        self._head = list(self.format.head)
        # Segments composition: a neutral memory line each memory's own cache is computed
        # after (then dropped), so that every memory was encoded as a later line of the list,
        # as it stands in most prompts (Star Attention's anchor block). "" for none.
        self._anchor = list(self.format.memory(anchor)) if anchor else []
        self._anchor_key = "anchor:" + hashlib.sha256(anchor.encode()).hexdigest()[:16]
        # Every Generate composes its block again: tokenize each memory text once.
        self._memory_tokens = functools.lru_cache(maxsize=MEMORY_TOKEN_CACHE)(
            self.format.memory)

    def segments(self, block: Sequence[BlockMemory],
                 adapters: Sequence[str] = ()) -> tuple[list[Segment], list[int]]:
        """The block's segments and its token ids, the prompt's head first (counted in the
        first segment, so an empty block has no segments and nothing to cache). With adapters,
        a first segment names them: keys and values computed through adapters never mix with
        the base's."""
        head = len(self._head)
        segments, tokens = [], list(self._head)
        if adapters and block:
            segments.append(Segment(SegmentKey("", "adapters:" + "+".join(adapters), 0), head))
        for memory in block:
            ids = self._memory_tokens(memory.text, memory.event_time_ms)
            key = SegmentKey(memory.cube_id, memory.memory_id, memory.version)
            segments.append(Segment(key, len(ids) + (0 if segments else head)))
            tokens += ids
        return segments, tokens

    def _prefill(self, model: Any, tokens: Sequence[int], cache: Any, keep: int = 0) -> Any:
        """Run `model` over `tokens` on top of `cache` (extended in place); the last logits
        ([vocab]), or with `keep` the last `keep` tokens' ([keep, vocab])."""
        import torch

        input_ids = torch.tensor([list(tokens)], device=self._model.device)
        with torch.inference_mode():
            out = model(input_ids=input_ids, past_key_values=cache, use_cache=True,
                        logits_to_keep=max(keep, 1))
        return out.logits[0] if keep else out.logits[0, -1]

    def _block_cache(self, model: Any, block: Sequence[BlockMemory],
                     adapters: Sequence[str]) -> tuple[Any, BlockStats, Optional[str]]:
        """A request-private cache of the whole block (longest cached prefix + the rest), and
        the block recorded for later requests. Returns (cache, stats, pinned cache id)."""
        from transformers import DynamicCache

        segments, tokens = self.segments(block, adapters)
        if not segments:  # an empty block: the head only, prefilled with the rest of the prompt
            return DynamicCache(config=self._model.config), BlockStats(0, 0, 0, ""), None
        match, layers = self._store.acquire([s.key for s in segments])
        try:
            if layers is None:
                cache = DynamicCache(config=self._model.config)
            else:
                cache = cache_view(layers, match.num_tokens, self._model.config)
            if match.num_tokens < len(tokens):
                self._prefill(model, tokens[match.num_tokens:], cache)
                cache_id = self._store.put(segments, cache_layers(cache))
            else:
                cache_id = match.cache_id
        except BaseException:
            self._store.release(match.cache_id)
            raise
        stats = BlockStats(len(tokens), len(tokens) - match.num_tokens, match.num_tokens,
                           cache_id or "")
        return cache, stats, match.cache_id

    def build(self, block: Sequence[BlockMemory]) -> BlockStats:
        """Make sure the block is cached (in segments composition: each memory's own cache).
        Who calls it: the KV actor, when memories are promoted to activation memory
        (ActivateMemories)."""
        with self.adapters.using(()) as model:
            if self.compose == "segments":
                return self._build_segments(model, block)
            _, stats, pinned = self._block_cache(model, block, ())
        self._store.release(pinned)
        return stats

    def _build_segments(self, model: Any, block: Sequence[BlockMemory]) -> BlockStats:
        """Counts as a prefix block would: the first memory's tokens include the head."""
        total = prefilled = 0
        for i, memory in enumerate(block):
            num_tokens = len(self._memory_tokens(memory.text, memory.event_time_ms)) + (
                len(self._head) if i == 0 else 0)
            _, pinned, built = self._segment(model, memory, (), build=True)
            self._store.release(pinned)
            total += num_tokens
            prefilled += num_tokens if built else 0
        return BlockStats(total, prefilled, total - prefilled, "")

    def _segment(self, model: Any, memory: BlockMemory, adapters: Sequence[str],
                 build: bool) -> tuple[Optional[Layers], Optional[str], bool]:
        """The memory's canonical cache ([head] + memory, positions 0..n): (layers, pinned cache
        id to release, built now). Looked up first; prefilled and recorded when missing and
        `build`; (None, None, False) when missing and not `build`."""
        from transformers import DynamicCache

        segments, tokens = self._canonical(memory, adapters)
        match, layers = self._store.acquire([s.key for s in segments])
        if layers is not None and match.num_segments == len(segments):
            # A longer prefix-mode block starting with this memory holds it too: crop.
            return [(k[..., :len(tokens), :], v[..., :len(tokens), :]) for k, v in layers], \
                match.cache_id, False
        self._store.release(match.cache_id)
        if not build:
            return None, None, False
        cache = DynamicCache(config=self._model.config)
        self._prefill(model, tokens, cache)
        layers = cache_layers(cache)
        self._store.put(segments, layers)
        return layers, None, True

    def _canonical(self, memory: BlockMemory,
                   adapters: Sequence[str]) -> tuple[list[Segment], list[int]]:
        """A memory's own cache in segments composition: its segments and tokens, [head] +
        memory, or [head] + the anchor line + memory (the opening's segment names the anchor
        and the adapters, so caches of other openings never match)."""
        if not self._anchor:
            return self.segments((memory,), adapters)
        opening = self._anchor_key + ("|adapters:" + "+".join(adapters) if adapters else "")
        ids = self._memory_tokens(memory.text, memory.event_time_ms)
        return [Segment(SegmentKey("", opening, 0), len(self._head) + len(self._anchor)),
                Segment(SegmentKey(memory.cube_id, memory.memory_id, memory.version),
                        len(ids))], self._head + self._anchor + list(ids)

    def _compose(self, model: Any, request: GenerateRequest, tail: list[int]) -> _Prepared:
        """Segments composition: cached memories appended with their keys shifted to their
        place, the others left pending (prefilled in place, attending to what precedes)."""
        # The prompt's memories in order, each with whether it belongs in activation memory
        # (block memories are cached when missing; retrieved ones only reused).
        memories = [(m, True) for m in request.block] + [(m, False) for m in request.retrieved]
        prepared = _Prepared(composed_cache(self._model.config), list(self._head),
                             len(self._head) + len(tail)
                             + sum(len(self._memory_tokens(m.text, m.event_time_ms))
                                   for m, _ in memories))
        self._check_length(prepared.prompt_tokens, request.sampling)
        try:
            for memory, in_block in memories:
                ids = self._memory_tokens(memory.text, memory.event_time_ms)
                layers, pinned, built = (None, None, False)
                if request.use_cache:
                    layers, pinned, built = self._segment(model, memory, request.adapters,
                                                          in_block)
                if layers is None:
                    prepared.pending += ids
                    continue
                if pinned:  # released once the pieces are in the cache
                    prepared.pins.append(pinned)
                self._append(model, prepared, layers, ids, reused=not built)
                if pinned:  # reused, not built now
                    prepared.caches_used.append(pinned)
                    prepared.saved += len(ids)
                    prepared.from_cache += 1
            self._flush(prepared)
            self._select(model, prepared, tail)
        finally:  # the pieces are in the cache (copied): the stored caches may move again
            self._store.release_all(prepared.pins)
            prepared.pins = []
        prepared.pending += tail
        return prepared

    def _append(self, model: Any, prepared: _Prepared, layers: Layers, ids: Sequence[int],
                reused: bool) -> None:
        head, opening = len(self._head), len(self._head) + len(self._anchor)
        exact = False  # whether these keys/values are a full prefill's (never recomputed)
        if prepared.pending == self._head and prepared.length == 0:
            # The segment's own head is the prompt's: take it too.
            prepared.pieces.append(segment_piece(layers, 0, 0, stop=head))
            prepared.pending, prepared.length = [], head
            prepared.saved += head if reused else 0
            exact = not self._anchor  # computed after the head alone, as it stands here
        elif prepared.pending:  # what precedes this memory must be in the cache first
            self._flush(prepared)
            self._prefill(model, prepared.pending, prepared.cache)
            prepared.length += len(prepared.pending)
            prepared.pending = []
        # The memory's tokens sit after the opening in its own cache: move them to here.
        piece = segment_piece(layers, opening, prepared.length - opening)
        if not exact:
            prepared.spans.append((prepared.length, tuple(ids), reused))
        prepared.pieces.append(piece)
        prepared.length += piece.num_tokens

    def _select(self, model: Any, prepared: _Prepared, tail: Sequence[int]) -> None:
        """Choose the composed tokens the question's prefill recomputes: the `recompute_ratio`
        share of the memories' tokens whose cache never saw the memories before them (all but
        a memory that opens the prompt and was cached after the head alone), picked by the
        `recompute_select` rule from one probe pass (select.py). A ratio of 1 recomputes them
        all: the prompt's keys and values are then a full prefill's (up to rounding)."""
        tokens = [t for _, ids, _ in prepared.spans for t in ids]
        positions = [start + i for start, ids, _ in prepared.spans for i in range(len(ids))]
        reused = [r for _, ids, r in prepared.spans for _ in ids]
        count = min(len(tokens), math.ceil(self.recompute_ratio * len(tokens)))
        if count == 0:
            return
        if count < len(tokens):
            found = probe(model, self._model, self._rope, prepared.cache, tokens, positions,
                          prepared.pending + list(tail), len(tail))
            chosen = choose(found, [len(ids) for _, ids, _ in prepared.spans], count,
                            self.recompute_select)
        else:
            chosen = list(range(len(tokens)))
        prepared.recompute = ([tokens[i] for i in chosen], [positions[i] for i in chosen])
        prepared.saved -= sum(reused[i] for i in chosen)

    def _flush(self, prepared: _Prepared) -> None:
        if prepared.pieces:
            append_pieces(prepared.cache, prepared.pieces, self._rope)
            prepared.pieces = []

    def _prompt_tail(self, request: GenerateRequest) -> list[int]:
        """What follows the cached block: in prefix composition the retrieved memories (as
        memories, prefilled), then the question and the answer's opening."""
        tail = []
        if self.compose == "prefix":
            for memory in request.retrieved:
                tail += self._memory_tokens(memory.text, memory.event_time_ms)
        return tail + self.format.tail(request.query)

    def _check_length(self, prompt_tokens: int, sampling: SamplingParams) -> None:
        if prompt_tokens + sampling.max_new_tokens > self._max_prompt_tokens:
            raise InvalidArgument(f"prompt of {prompt_tokens} tokens plus max_new_tokens "
                                  f"exceeds the model's {self._max_prompt_tokens}",
                                  "max_new_tokens")

    def generate(self, request: GenerateRequest) -> Iterator[TokenEvent | GenerateStats]:
        """Stream the generated tokens, then the stats. Who calls it: the KV actor's streaming
        method, once per Generate RPC, after loading the request's adapters."""
        start = time.perf_counter()
        with self.adapters.using(request.adapters) as model:
            yield from self._generate(model, request, start)

    def _prefix(self, model: Any, request: GenerateRequest, tail: list[int]) -> _Prepared:
        """Prefix composition: the block's longest cached prefix, the rest pending."""
        from transformers import DynamicCache

        _, block_tokens = self.segments(request.block)  # the head first, even for no memory
        self._check_length(len(block_tokens) + len(tail), request.sampling)
        if not request.use_cache:
            return _Prepared(DynamicCache(config=self._model.config), block_tokens + tail,
                             len(block_tokens) + len(tail))
        cache, block, pinned = self._block_cache(model, request.block, request.adapters)
        return _Prepared(cache, tail if block.num_tokens else self._head + tail,
                         max(block.num_tokens, len(self._head)) + len(tail), block.reused_tokens,
                         [block.cache_id] if block.reused_tokens else [],
                         [pinned] if pinned else [])

    def _prepare(self, model: Any, request: GenerateRequest) -> _Prepared:
        tail = self._prompt_tail(request)
        if self.compose == "segments":
            return self._compose(model, request, tail)
        return self._prefix(model, request, tail)

    def _generate(self, model: Any, request: GenerateRequest,
                  start: float) -> Iterator[TokenEvent | GenerateStats]:
        prepared = self._prepare(model, request)
        try:
            yield from self._decode(model, request, prepared, start)
        finally:
            self._store.release_all(prepared.pins)

    def score(self, request: GenerateRequest, continuation: Sequence[int]) -> Any:
        """The next-token logits ([len(continuation), vocab], float32 on the CPU) at each token
        of `continuation` given the prompt as `generate` would compose it and the tokens of
        `continuation` before it (teacher forcing): row i is the distribution that picks
        token i. One forward pass over the prompt's pending tokens and the continuation, so
        a tier's logits can be compared with a full prefill's (`bench fidelity`). Who calls
        it: the fidelity benchmark, never the serving path."""
        if not continuation:
            raise InvalidArgument("a continuation of at least one token is needed",
                                  "continuation")
        with self.adapters.using(request.adapters) as model:
            prepared = self._prepare(model, request)
            try:
                tokens = prepared.pending + list(continuation[:-1])
                if prepared.recompute[0]:
                    logits = prefill_recomputing(model, prepared.cache, *prepared.recompute,
                                                 tokens, keep=len(continuation))
                else:
                    logits = self._prefill(model, tokens, prepared.cache,
                                           keep=len(continuation))
            finally:
                self._store.release_all(prepared.pins)
        return logits.float().cpu()

    def _decode(self, model: Any, request: GenerateRequest, prepared: _Prepared,
                start: float) -> Iterator[TokenEvent | GenerateStats]:
        import torch

        sampling, cache = request.sampling, prepared.cache
        generator = torch.Generator(device="cpu").manual_seed(sampling.seed)
        if prepared.recompute[0]:
            logits = prefill_recomputing(model, cache, *prepared.recompute, prepared.pending)
        else:
            logits = self._prefill(model, prepared.pending, cache)
        ttft_ms, generated, reason, text = 0.0, [], "length", ""
        for step in range(sampling.max_new_tokens):
            token = pick_token(logits, sampling, generator)
            if step == 0:
                ttft_ms = 1000 * (time.perf_counter() - start)
            if token in self.format.stop_ids:  # the end of the answer is not part of it
                reason = "eos"
                break
            generated.append(token)
            # Each event carries the text this token added to the answer decoded whole (a
            # token alone may be half a character, or lack the space before it).
            decoded = self._tokenizer.decode(generated, skip_special_tokens=True)
            yield TokenEvent(token, decoded[len(text):])
            text = decoded
            if step + 1 < sampling.max_new_tokens:
                logits = self._prefill(model, [token], cache)
        yield GenerateStats(ttft_ms=ttft_ms, total_ms=1000 * (time.perf_counter() - start),
                            prompt_tokens=prepared.prompt_tokens,
                            prefill_tokens=prepared.prompt_tokens - prepared.saved,
                            prefill_tokens_saved=prepared.saved,
                            caches_used=tuple(dict.fromkeys(prepared.caches_used)),
                            num_generated=len(generated), finish_reason=reason,
                            generated=tuple(generated), adapters_used=request.adapters,
                            retrieved_from_activation=prepared.from_cache)


def pick_token(logits: Any, sampling: SamplingParams, generator: Any) -> int:
    """Greedy at temperature 0; otherwise nucleus sampling from a seeded generator."""
    import torch

    if sampling.temperature <= 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits.float().cpu() / sampling.temperature, dim=-1)
    ordered, index = torch.sort(probs, descending=True)
    keep = torch.cumsum(ordered, dim=-1) - ordered < sampling.top_p
    ordered = ordered * keep
    choice = torch.multinomial(ordered / ordered.sum(), 1, generator=generator)
    return int(index[choice])
