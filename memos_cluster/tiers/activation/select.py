"""Which composed tokens a segments-composed prompt recomputes with its question.

A composed memory's cache never saw the memories before it (compose.py). Recomputing a share
of its tokens with the question (compose.prefill_recomputing) restores that attention where it
matters; this module picks the share. One probe pass measures, per composed token, two signals
at an early layer (layer 0 is exact after composition, so layer 1 is the first that can
differ; the pass stops there, about 1/num_layers of a prefill):

- deviation: how far the token's cached values are from what attending to the whole prompt
  gives (squared L2 over heads): CacheBlend's signal (Yao et al. 2024);
- attention: how much the question attends to the token (softmax over the composed tokens,
  averaged over the question's tokens and heads), with the question's and the tokens' queries
  and keys as a full prefill computes them at that layer: ProphetKV's idea, that the tokens the
  question reads are the ones whose errors reach the answer.

Rules (`activation.recompute_select`): "deviation", "attention", "product" (both normalised,
multiplied), or "memory" (whole memories, the most attended first, up to the budget).

Who uses it: `ActivationEngine._select`, once per composed prompt. Torch is imported lazily.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, Sequence

from memos_cluster.core.config import RECOMPUTE_RULES as RULES
from memos_cluster.core.errors import ConfigError, FailedPrecondition
from memos_cluster.tiers.activation.compose import RopeShift, Stop, forward_pass, positions_of


@dataclass(frozen=True)
class Probe:
    deviation: Any  # [tokens] float32: squared L2 of cached minus fresh values at `layer`
    attention: Any  # [tokens] float32: the question's mean attention probability to each


def _projections(base_model: Any, layer: int) -> tuple[Any, Any, Any]:
    """The modules computing `layer`'s queries, keys and values, looked up when used (peft
    swaps in its wrappers when an adapter loads; the wrappers' outputs are what runs)."""
    attention = base_model.model.layers[layer].self_attn
    return attention.q_proj, attention.k_proj, attention.v_proj


def probe(model: Any, base_model: Any, rope: RopeShift, cache: Any, tokens: Sequence[int],
          positions: Sequence[int], appended: Sequence[int], num_question: int,
          layer: int = 1) -> Probe:
    """One pass over the composed `tokens` (at their `positions`, rewriting the cache there)
    and the `appended` tokens after the cache (whatever is still to prefill: the last
    `num_question` of them are the question, whose attention is measured), stopped at
    `layer`'s value projection. The
    cache is left as it was: layer 0 is rewritten with the values it held (exact there) and
    the question's entries are cropped away."""
    captured: dict[str, Any] = {}

    def grab(name: str, stop: bool) -> Any:
        def hook(_module: Any, _inputs: Any, output: Any) -> None:
            captured[name] = output
            if stop:
                raise Stop
        return hook

    length = cache.get_seq_length()
    where, every = positions_of(cache, positions, len(appended))
    q_proj, k_proj, v_proj = _projections(base_model, layer)
    handles = [q_proj.register_forward_hook(grab("q", False)),
               k_proj.register_forward_hook(grab("k", False)),
               v_proj.register_forward_hook(grab("v", True))]
    cache.overwrite = where.to(model.device)
    try:
        with contextlib.suppress(Stop):  # the expected end: later layers are not needed
            forward_pass(model, cache, every.to(model.device), list(tokens) + list(appended))
    finally:
        cache.overwrite = None
        for handle in handles:
            handle.remove()
        for cached_layer in cache.layers[:layer]:  # they got the appended tokens: cut them
            cached_layer.keys = cached_layer.keys[..., :length, :]
            cached_layer.values = cached_layer.values[..., :length, :]
    if "v" not in captured:
        raise FailedPrecondition(f"layer {layer}'s value projection did not run")
    cached = cache.layers[layer].values[..., where.to(model.device), :]
    kv_heads, head_dim = cached.shape[1], cached.shape[-1]
    n = len(tokens)
    fresh = captured["v"][:, :n].view(1, n, kv_heads, head_dim).transpose(1, 2)
    deviation = ((fresh - cached) ** 2).sum(dim=(0, 1, 3))
    attention = _question_attention(rope, captured["q"], captured["k"], every, n,
                                    num_question, kv_heads, head_dim)
    return Probe(deviation.float().cpu(), attention.float().cpu())


def _question_attention(rope: RopeShift, queries: Any, keys: Any, every: Any, n: int,
                        num_question: int, kv_heads: int, head_dim: int) -> Any:
    """[n]: the question tokens' (the last `num_question`) attention to the first n tokens, their
    queries and keys rotated to their positions, softmax over those n, mean over the question
    tokens and the query heads."""
    import torch

    total = queries.shape[1]
    q = queries[0].view(total, -1, head_dim).transpose(0, 1)  # [heads, total, dim]
    k = keys[0].view(total, kv_heads, head_dim).transpose(0, 1)  # [kv_heads, total, dim]
    cos, sin = rope.rotation(every.double().cpu())
    q = rope.rotate(q[:, total - num_question:], cos[total - num_question:],
                    sin[total - num_question:])
    k = rope.rotate(k[:, :n], cos[:n], sin[:n])
    k = k.repeat_interleave(q.shape[0] // kv_heads, dim=0)  # grouped-query: heads share keys
    scores = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(head_dim), dim=-1)
    return scores.mean(dim=(0, 1))


def choose(found: Probe, spans: Sequence[int], count: int, rule: str) -> list[int]:
    """The indices (ascending) of the `count` composed tokens to recompute; `spans` are the
    composed memories' token counts in order (they sum to the number of tokens). "memory"
    takes whole memories, the most attended (by total attention) first, while they fit in
    `count` (at least one)."""
    import torch

    if rule not in RULES:
        raise ConfigError(f"activation.recompute_select must be one of {', '.join(RULES)}, "
                          f"not {rule!r}", "activation.recompute_select")
    if rule == "memory":
        return _whole_memories(found.attention, spans, count)
    if rule == "deviation":
        score = found.deviation
    elif rule == "attention":
        score = found.attention
    else:
        score = (found.deviation / found.deviation.sum().clamp_min(1e-12)) * \
            (found.attention / found.attention.sum().clamp_min(1e-12))
    return sorted(torch.topk(score, count).indices.tolist())


def _whole_memories(attention: Any, spans: Sequence[int], count: int) -> list[int]:
    starts = [sum(spans[:i]) for i in range(len(spans))]
    mass = [float(attention[s:s + n].sum()) for s, n in zip(starts, spans)]
    chosen: list[int] = []
    for i in sorted(range(len(spans)), key=lambda i: -mass[i]):
        if chosen and len(chosen) + spans[i] > count:
            continue
        chosen += range(starts[i], starts[i] + spans[i])
    return sorted(chosen)
