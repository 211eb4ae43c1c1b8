"""`memos-cluster bench kv`: time to first token with activation memory reused against a full
prefill of the same prompt, on the same model in one run, for several memory-block and query
sizes: reused as one prefix block (prefix composition; greedy output is checked identical to
the full prefill's) and composed from per-memory caches (segments composition; the same prompt).

Runs the activation engine in-process (what a KV-cache actor runs), so the figures are the
engine's, without RPC overhead. Not a test: it asserts nothing about speed.
"""
from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from memos_cluster.core.errors import InvalidArgument
from memos_cluster.core.tier_types import BlockMemory, GenerateStats, SamplingParams
from memos_cluster.tiers.activation.blocks import Budgets
from memos_cluster.tiers.activation.engine import ActivationEngine, GenerateRequest
from memos_cluster.tiers.activation.kvstore import KVStore
from memos_cluster.tiers.llm.model import load_causal_lm, resolve_model

FILLER = ("Caroline told Melanie about the support group she joined, the painting she finished "
          "for the library fundraiser, and the camping trip planned for the long weekend.")
QUESTION = "What did Caroline say about the painting and the trip"
IDENTICAL_TOKENS = 16  # greedy tokens compared between the two ways
# A block ends past its size by up to one memory (a LoCoMo turn: under 100 tokens), and the
# greedy check generates IDENTICAL_TOKENS: what a size needs beyond memory + query tokens.
HEADROOM_TOKENS = 128


def fitting_sizes(context: int, memory_tokens: Optional[Sequence[int]],
                  query_tokens: Sequence[int]) -> list[int]:
    """The memory sizes to run: the given ones, each checked against the model's context
    before any work (InvalidArgument naming those that do not fit); by default 512, 2048
    and the largest multiple of 1024 that fits beside the largest query."""
    room = context - max(query_tokens) - HEADROOM_TOKENS
    if memory_tokens is None:
        largest = room // 1024 * 1024
        return [m for m in (512, 2048) if m < largest] + ([largest] if largest else [])
    too_big = [m for m in memory_tokens if m > room]
    if too_big:
        raise InvalidArgument(
            f"memory sizes {too_big} do not fit the model's {context}-token context beside a "
            f"{max(query_tokens)}-token query (at most {room}); pass --memory-tokens",
            "memory_tokens")
    return list(memory_tokens)


def _block(engine: ActivationEngine, tokens: int, texts: Sequence[str]) -> tuple[BlockMemory, ...]:
    """Memories (LoCoMo turns when given, else a filler sentence) until the block holds about
    `tokens` tokens."""
    block: list[BlockMemory] = []
    total = len(engine.format.head)
    i = 0
    while total < tokens:
        text = f"{i}: {texts[i % len(texts)] if texts else FILLER}"
        memory = BlockMemory("bench", f"m{i}", 1, text)
        total += len(engine.format.memory(text))
        block.append(memory)
        i += 1
    return tuple(block)


def _query(engine: ActivationEngine, tokens: int) -> str:
    words = []
    while len(engine.format.tail(" ".join(words))) < tokens:
        words.append(QUESTION.split()[len(words) % len(QUESTION.split())])
    return " ".join(words)


def _ttft_ms(engine: ActivationEngine, request: GenerateRequest,
             repeats: int) -> tuple[float, GenerateStats]:
    samples, stats = [], None
    for _ in range(repeats):
        *_, stats = engine.generate(request)
        samples.append(stats.ttft_ms)
    return statistics.median(samples), stats


def run_kv_bench(model: str, cache_dir: Path, device: str = "cpu",
                 memory_tokens: Optional[Sequence[int]] = None,
                 query_tokens: Sequence[int] = (32, 512), repeats: int = 3,
                 texts: Sequence[str] = (), say: Callable[[str], None] = print,
                 segments: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """`segments`: the segments engine's options (engine.segment_options; default: composition
    alone, no anchor); `memory_tokens` None: sizes that fit the model (fitting_sizes)."""
    segments = {**(segments or {}), "compose": "segments"}
    path, identity = resolve_model(model, cache_dir)
    lm, tokenizer = load_causal_lm(path, device)
    unbounded = Budgets(1 << 40, 1 << 40, 0)
    store = KVStore(identity, device, unbounded, cache_dir / "bench-kv-spill")
    engine = ActivationEngine(lm, tokenizer, store, lm.config.max_position_embeddings)
    composer = ActivationEngine(
        lm, tokenizer, KVStore(identity, device, unbounded, cache_dir / "bench-kv-spill-segments"),
        lm.config.max_position_embeddings, **segments)
    memory_tokens = fitting_sizes(lm.config.max_position_embeddings, memory_tokens,
                                  query_tokens)
    once = SamplingParams(max_new_tokens=1)
    say(f"model {model} ({sum(p.numel() for p in lm.parameters()) / 1e6:.1f} M parameters, "
        f"{lm.config.num_hidden_layers} layers) on {device}")
    rows = []
    for m_tokens in memory_tokens:
        block = _block(engine, m_tokens, texts)
        built = engine.build(block)
        composer.build(block)
        for q_tokens in query_tokens:
            query = _query(engine, q_tokens)
            full = GenerateRequest(block, query, sampling=once, use_cache=False)
            reuse = GenerateRequest(block, query, sampling=once)
            engine.generate(full).__next__()  # warm-up of this shape
            full_ms, full_stats = _ttft_ms(engine, full, repeats)
            reuse_ms, reuse_stats = _ttft_ms(engine, reuse, repeats)
            composed_ms, _ = _ttft_ms(composer, reuse, repeats)
            greedy = SamplingParams(max_new_tokens=IDENTICAL_TOKENS)
            *_, a = engine.generate(GenerateRequest(block, query, sampling=greedy,
                                                    use_cache=False))
            *_, b = engine.generate(GenerateRequest(block, query, sampling=greedy))
            row = {"memory_tokens": built.num_tokens,
                   "query_tokens": full_stats.prompt_tokens - built.num_tokens,
                   "ttft_full_ms": round(full_ms, 2), "ttft_reuse_ms": round(reuse_ms, 2),
                   "reduction": round(1 - reuse_ms / full_ms, 4),
                   "ttft_segments_ms": round(composed_ms, 2),
                   "prefill_tokens_saved": reuse_stats.prefill_tokens_saved,
                   "identical": a.generated == b.generated}
            rows.append(row)
            say(f"memory {row['memory_tokens']:>5} tokens, query {row['query_tokens']:>4}: "
                f"TTFT full {row['ttft_full_ms']:>8.1f} ms, reused {row['ttft_reuse_ms']:>7.1f} ms"
                f" = {100 * row['reduction']:.1f}% less (identical output: {row['identical']}); "
                f"composed from segments {row['ttft_segments_ms']:>7.1f} ms")
    stats = store.stats()
    return {"model": {**identity.as_metadata(),
                      "parameters": sum(p.numel() for p in lm.parameters()),
                      "layers": lm.config.num_hidden_layers},
            "device": device, "rows": rows,
            "segments": {k: v for k, v in segments.items() if k != "compose"},
            "cache_bytes_per_1k_tokens": stats["bytes_per_1k_tokens"],
            "hit_rate": round(stats["hit_rate"], 3)}
