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
import time
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence

from memos_cluster.core.config import ActivationConfig
from memos_cluster.core.errors import ConfigError, InvalidArgument
from memos_cluster.core.tier_types import (
    BlockMemory, BlockStats, ChatRequest, GenerateStats, SamplingParams, ServedMemory,
    TokenEvent)
from memos_cluster.tiers.activation.blocks import Segment, SegmentKey
from memos_cluster.tiers.activation.chat import ChatParts, ChatRunner
from memos_cluster.tiers.activation.compose import prefill_recomputing
from memos_cluster.tiers.activation.segmented import (
    ACTIVATION, PLAINTEXT, Prepared, SegmentComposer)
from memos_cluster.tiers.activation.kvstore import KVStore, cache_layers, cache_view
from memos_cluster.tiers.activation.chat_layout import chat_layout
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
    # "" the engine's composition; "prefix" the block as the prompt's exact cached prefix
    # (what memory_mode auto asks for: the answer is a full prefill's), then the retrieved.
    compose: str = ""


def segment_options(activation: ActivationConfig) -> dict[str, Any]:
    """The engine's composition arguments from the configuration (the KV actor, the benches)."""
    return {"compose": activation.compose, "recompute_ratio": activation.recompute_ratio,
            "recompute_select": activation.recompute_select,
            "anchor": activation.segment_anchor,
            "cache_instruction": activation.cache_instruction}


class ActivationEngine:
    def __init__(self, model: Any, tokenizer: Any, store: KVStore, max_prompt_tokens: int,
                 compose: str = "prefix", recompute_ratio: float = 0.0,
                 recompute_select: str = "deviation", anchor: str = "",
                 cache_instruction: bool = False):
        from memos_cluster.tiers.llm.serving import AdapterHost

        # Segments composition shifts cached keys: refused (ConfigError) for a model whose
        # positions it cannot shift.
        self.compose = compose
        # A sliding-window cache keeps only the window: a stored prefix block would be cut.
        self._sliding = bool(getattr(model.config, "sliding_window", None))
        if compose == "prefix" and self._sliding:
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
        # Every Generate composes its block again: tokenize each memory text once.
        self._memory_tokens = functools.lru_cache(maxsize=MEMORY_TOKEN_CACHE)(
            self.format.memory)
        # Segments composition (segmented.py); `anchor` is a memory line each memory's own
        # cache is computed after (then dropped), "" for none. The share of composed tokens
        # recomputed per prompt and the rule choosing them: select.py.
        self._composer = None if compose != "segments" else SegmentComposer(
            model, store, self._head, list(self.format.memory(anchor)) if anchor else [],
            "anchor:" + hashlib.sha256(anchor.encode()).hexdigest()[:16], self._memory_tokens,
            self.segments, self._prefill, recompute_ratio, recompute_select,
            self.format.instruction() if cache_instruction else ())
        # Chat (chat.py): the conversation's pieces over the longest cached prefix, in prefix
        # composition whatever `compose` says (a chat's answer is always a full prefill's).
        self._chat = ChatRunner(
            ChatParts(self.adapters, model.config, self._check_length, self._decode,
                      self._prefill, lambda ids: tokenizer.decode(ids, skip_special_tokens=True)),
            chat_layout(tokenizer, self.format.tokenize, self._memory_tokens,
                        self._head if self.format.kind == "plain" else ()), store)

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
            if self._composer is not None:
                return self._composer.build(model, block)
            _, stats, pinned = self._block_cache(model, block, ())
        self._store.release(pinned)
        return stats

    def _prompt_tail(self, request: GenerateRequest) -> list[int]:
        """What follows the cached block: in prefix composition the retrieved memories (as
        memories, prefilled), then the question and the answer's opening."""
        tail = []
        if self._compose_of(request) == "prefix":
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

    def chat(self, request: ChatRequest) -> Iterator[TokenEvent | GenerateStats]:
        """Stream a chat turn's answer, then its stats (chat.py). Who calls it: the KV actor's
        streaming chat method, once per Chat RPC."""
        if self._sliding:  # a sliding-window cache keeps only the window: a prefix is cut
            raise InvalidArgument("chat does not support sliding-window attention", "messages")
        yield from self._chat.run(request)

    def _prefix(self, model: Any, request: GenerateRequest, tail: list[int]) -> Prepared:
        """Prefix composition: the block's longest cached prefix, the rest pending."""
        from transformers import DynamicCache

        _, block_tokens = self.segments(request.block)  # the head first, even for no memory
        self._check_length(len(block_tokens) + len(tail), request.sampling)
        if not request.use_cache:
            return Prepared(DynamicCache(config=self._model.config), block_tokens + tail,
                             len(block_tokens) + len(tail))
        cache, block, pinned = self._block_cache(model, request.block, request.adapters)
        prepared = Prepared(cache, tail if block.num_tokens else self._head + tail,
                            max(block.num_tokens, len(self._head)) + len(tail),
                            block.reused_tokens,
                            [block.cache_id] if block.reused_tokens else [],
                            [pinned] if pinned else [])
        prepared.served = self._served_prefix(request, block.reused_tokens)
        prepared.from_cache = sum(tier == ACTIVATION for _, tier in prepared.served)
        return prepared

    def _served_prefix(self, request: GenerateRequest,
                       reused_tokens: int) -> list[tuple[BlockMemory, str]]:
        """Prefix composition: the block memories inside the reused prefix came from
        activation memory, the rest of the block and the retrieved ones from their text."""
        segments, _ = self.segments(request.block, request.adapters)
        opening = 1 if request.adapters and request.block else 0  # the adapters' segment
        served, end = [], 0
        for memory, segment in zip(request.block, segments[opening:]):
            end += segment.num_tokens + (len(self._head) if opening and not served else 0)
            served.append((memory, ACTIVATION if end <= reused_tokens else PLAINTEXT))
        return served + [(m, PLAINTEXT) for m in request.retrieved]

    def _compose_of(self, request: GenerateRequest) -> str:
        return request.compose or self.compose

    def _prepare(self, model: Any, request: GenerateRequest) -> Prepared:
        tail = self._prompt_tail(request)
        if self._compose_of(request) == "segments":
            if self._composer is None:
                raise InvalidArgument("this engine composes prefixes only", "compose")
            return self._composer.compose(
                model, request.block, request.retrieved, request.adapters, request.use_cache,
                tail, lambda tokens: self._check_length(tokens, request.sampling))
        if self._sliding:  # a sliding-window cache keeps only the window: a block would be cut
            raise InvalidArgument("prefix composition does not support sliding-window "
                                  "attention", "compose")
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

    def _decode(self, model: Any, request: GenerateRequest, prepared: Prepared,
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
                            retrieved_from_activation=prepared.from_cache,
                            memories=tuple(ServedMemory(m.cube_id, m.memory_id, m.version, tier)
                                           for m, tier in prepared.served))


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
