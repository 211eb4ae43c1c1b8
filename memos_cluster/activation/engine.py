"""Activation memory at work: compose a block of memories into tokens, prefill it once (reusing the
longest cached prefix), and generate on top of it.

The prompt is one token sequence: [BOS] + each block memory's tokens + the retrieved memories'
tokens + the query's tokens. A cache holds the keys/values of a prefix of exactly that sequence,
computed by the same model, so generating over a reused cache is the same computation as a full
prefill of the whole prompt (the test suite checks greedy output token for token).

Who uses it: the KV-cache actor (`actors/kv_cache.py`) builds one per model and forwards
`build` / `generate` to it. Torch is imported lazily.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Sequence

from memos_cluster.activation.blocks import Segment, SegmentKey
from memos_cluster.activation.kvstore import KVStore, cache_layers, cache_view
from memos_cluster.errors import InvalidArgument

MEMORY_TOKEN_CACHE = 8192  # memory texts whose token ids an engine keeps


@dataclass(frozen=True)
class BlockMemory:
    """One memory as activation memory sees it: identity, version and text."""

    cube_id: str
    memory_id: str
    version: int
    text: str

    @property
    def key(self) -> SegmentKey:
        return SegmentKey(self.cube_id, self.memory_id, self.version)


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int = 32
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    seed: int = 0


@dataclass(frozen=True)
class GenerateRequest:
    block: tuple[BlockMemory, ...]  # the activation block, in order (several cubes: concatenated)
    query: str
    retrieved: tuple[str, ...] = ()  # texts of retrieved plaintext memories, after the block
    sampling: SamplingParams = SamplingParams()
    use_cache: bool = True  # False: full prefill of the same prompt (the exactness baseline)
    adapters: tuple[str, ...] = ()  # loaded adapter names active for this request (LoRA)


@dataclass(frozen=True)
class BlockStats:
    num_tokens: int  # tokens in the block, BOS included
    prefill_tokens: int  # tokens computed now
    reused_tokens: int  # tokens taken from a cached prefix
    cache_id: str


@dataclass(frozen=True)
class TokenEvent:
    token_id: int
    text: str


@dataclass(frozen=True)
class GenerateStats:
    ttft_ms: float  # request start to the first token, prefill included (milliseconds)
    total_ms: float
    prompt_tokens: int
    prefill_tokens: int  # prompt tokens computed for this request
    prefill_tokens_saved: int  # prompt tokens taken from activation memory
    caches_used: tuple[str, ...] = ()
    num_generated: int = 0
    finish_reason: str = "length"  # "length" or "eos"
    generated: tuple[int, ...] = field(default=(), repr=False)
    adapters_used: tuple[str, ...] = ()  # "cube@vN"
    # Retrieval hits already in the activation block (served from its cache, not re-prefilled).
    retrieved_from_activation: int = 0


class ActivationEngine:
    def __init__(self, model: Any, tokenizer: Any, store: KVStore, max_prompt_tokens: int):
        from memos_cluster.parametric.serving import AdapterHost

        self._model = model
        self.adapters = AdapterHost(model)  # every forward pass goes through it
        self._tokenizer = tokenizer
        self._store = store
        self._max_prompt_tokens = max_prompt_tokens
        self._bos = tokenizer.cls_token_id if tokenizer.bos_token_id is None \
            else tokenizer.bos_token_id
        self._eos = model.config.eos_token_id
        # Every Generate composes its block again: tokenize each memory text once.
        self._memory_tokens = functools.lru_cache(maxsize=MEMORY_TOKEN_CACHE)(
            self._encode_memory)

    def _tokens(self, text: str) -> list[int]:
        return self._tokenizer.encode(text, add_special_tokens=False)

    def _encode_memory(self, text: str) -> tuple[int, ...]:
        return tuple(self._tokens(f"[memory] {text}\n"))

    def segments(self, block: Sequence[BlockMemory],
                 adapters: Sequence[str] = ()) -> tuple[list[Segment], list[int]]:
        """The block's segments and its token ids, BOS first (counted in the first segment, so
        an empty block has no segments and nothing to cache). With adapters, a first segment
        names them: keys and values computed through adapters never mix with the base's."""
        segments, tokens = [], [self._bos]
        if adapters and block:
            segments.append(Segment(SegmentKey("", "adapters:" + "+".join(adapters), 0), 1))
        for memory in block:
            ids = self._memory_tokens(memory.text)
            segments.append(Segment(memory.key, len(ids) + (0 if segments else 1)))
            tokens += ids
        return segments, tokens

    def _prefill(self, model: Any, tokens: Sequence[int], cache: Any) -> Any:
        """Run `model` over `tokens` on top of `cache` (extended in place); last logits."""
        import torch

        input_ids = torch.tensor([list(tokens)], device=self._model.device)
        with torch.inference_mode():
            out = model(input_ids=input_ids, past_key_values=cache, use_cache=True,
                        logits_to_keep=1)
        return out.logits[0, -1]

    def _block_cache(self, model: Any, block: Sequence[BlockMemory],
                     adapters: Sequence[str]) -> tuple[Any, BlockStats, Optional[str]]:
        """A request-private cache of the whole block (longest cached prefix + the rest), and
        the block recorded for later requests. Returns (cache, stats, pinned cache id)."""
        from transformers import DynamicCache

        segments, tokens = self.segments(block, adapters)
        if not segments:  # an empty block: BOS only, prefilled with the rest of the prompt
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
        """Make sure the block is cached. Who calls it: the KV actor, when memories are promoted
        to activation memory (ActivateMemories)."""
        with self.adapters.using(()) as model:
            _, stats, pinned = self._block_cache(model, block, ())
        self._store.release(pinned)
        return stats

    def _prompt_tail(self, request: GenerateRequest) -> list[int]:
        tail = []
        for text in request.retrieved:
            tail += self._tokens(f"[retrieved] {text}\n")
        return tail + self._tokens(f"[query] {request.query}\n[answer]")

    def generate(self, request: GenerateRequest) -> Iterator[TokenEvent | GenerateStats]:
        """Stream the generated tokens, then the stats. Who calls it: the KV actor's streaming
        method, once per Generate RPC, after loading the request's adapters."""
        start = time.perf_counter()
        with self.adapters.using(request.adapters) as model:
            yield from self._generate(model, request, start)

    def _generate(self, model: Any, request: GenerateRequest,
                  start: float) -> Iterator[TokenEvent | GenerateStats]:
        from transformers import DynamicCache

        tail = self._prompt_tail(request)
        pinned: Optional[str] = None
        if request.use_cache:
            cache, block, pinned = self._block_cache(model, request.block, request.adapters)
            caches_used = (block.cache_id,) if block.reused_tokens else ()
            pending = tail if block.num_tokens else [self._bos] + tail
            prompt_tokens, saved = max(block.num_tokens, 1) + len(tail), block.reused_tokens
        else:
            _, block_tokens = self.segments(request.block)
            cache, caches_used = DynamicCache(config=self._model.config), ()
            pending = block_tokens + tail
            prompt_tokens, saved = len(pending), 0
        try:
            if prompt_tokens + request.sampling.max_new_tokens > self._max_prompt_tokens:
                raise InvalidArgument(f"prompt of {prompt_tokens} tokens plus max_new_tokens "
                                      f"exceeds the model's {self._max_prompt_tokens}",
                                      "max_new_tokens")
            yield from self._decode(model, request.sampling, cache, pending,
                                    (start, prompt_tokens, saved, caches_used, request.adapters))
        finally:
            self._store.release(pinned)

    def _decode(self, model: Any, sampling: SamplingParams, cache: Any, pending: list[int],
                accounting: tuple[float, int, int, tuple[str, ...], tuple[str, ...]]
                ) -> Iterator[TokenEvent | GenerateStats]:
        import torch

        start, prompt_tokens, saved, caches_used, adapters = accounting
        generator = torch.Generator(device="cpu").manual_seed(sampling.seed)
        logits = self._prefill(model, pending, cache)
        ttft_ms, generated, reason = 0.0, [], "length"
        for step in range(sampling.max_new_tokens):
            token = pick_token(logits, sampling, generator)
            if step == 0:
                ttft_ms = 1000 * (time.perf_counter() - start)
            generated.append(token)
            yield TokenEvent(token, self._tokenizer.decode([token]))
            if token == self._eos:
                reason = "eos"
                break
            if step + 1 < sampling.max_new_tokens:
                logits = self._prefill(model, [token], cache)
        yield GenerateStats(ttft_ms=ttft_ms, total_ms=1000 * (time.perf_counter() - start),
                            prompt_tokens=prompt_tokens,
                            prefill_tokens=prompt_tokens - saved, prefill_tokens_saved=saved,
                            caches_used=caches_used, num_generated=len(generated),
                            finish_reason=reason, generated=tuple(generated),
                            adapters_used=adapters)


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
