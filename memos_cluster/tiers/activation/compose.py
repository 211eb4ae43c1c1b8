"""Composing per-memory KV caches into one prompt's cache, with positions fixed.

In "segments" composition each memory's keys and values are computed once on their own, as
`[head] + memory` at positions 0..n (its *canonical* cache; the head is the prompt's shared
opening, BOS or a chat template's system line: prompt.py). A prompt that places the memory at
position p needs its keys at positions p..p+n-1. Values carry no position, and a RoPE key at
position i is R(i)·k, so moving it by d is one more rotation: R(i + d)·k = R(d)·R(i)·k. Rotating
the stored keys by d = p - h (h: the head's length) puts them at their positions in the prompt:
at layer 0, where a
key depends only on its token and position, they are exactly a full prefill's. What
composition leaves out is attention *between* memories (each memory's deeper layers saw only
the head and itself), the approximation that parallel-encoding schemes (TurboRAG,
Block-Attention) make. Concatenating without the shift, as some systems do, gives every memory
the positions right after the head: wrong for all but the first.

Who uses it: `ActivationEngine` in segments mode. Torch is imported lazily.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from memos_cluster.core.errors import ConfigError, FailedPrecondition

# Model families whose attention applies RoPE with rotate_half to the whole head dimension,
# and rotary types whose frequencies do not depend on the sequence length (so a rotation by d
# composes). "dynamic" and "longrope" rescale by length and are refused.
ROPE_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3", "granite")
ROPE_TYPES = ("default", "linear", "llama3", "yarn")


def _rotate_half(x: Any) -> Any:
    import torch

    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class RopeShift:
    """Moves cached keys along the sequence. Who calls it: `append_pieces`, once a prompt."""

    def __init__(self, model: Any):
        config = model.config
        rotary = getattr(getattr(model, "model", None), "rotary_emb", None)
        rope_type = getattr(rotary, "rope_type", None)
        if config.model_type not in ROPE_MODEL_TYPES or rotary is None \
                or rope_type not in ROPE_TYPES:
            raise ConfigError(
                f"activation.compose 'segments' needs a RoPE model of a known layout "
                f"({', '.join(ROPE_MODEL_TYPES)}; rope types {', '.join(ROPE_TYPES)}), not "
                f"{config.model_type!r} with rope type {rope_type!r}; use 'prefix'",
                "activation.compose")
        # float64: a shift of thousands of positions keeps the angles accurate.
        self._inv_freq = rotary.inv_freq.detach().double().cpu()

    def rotation(self, deltas: Any) -> tuple[Any, Any]:
        """(cos, sin), [tokens, head_dim] float64, for moving each token by its delta."""
        import torch

        angles = deltas[:, None] * self._inv_freq[None, :]
        angles = torch.cat((angles, angles), dim=-1)  # rotate_half pairs dim i with i + half
        return angles.cos(), angles.sin()

    def rotate(self, keys: Any, cos: Any, sin: Any) -> Any:
        """`keys` ([batch, kv_heads, tokens, head_dim]) rotated by `rotation`'s angles."""
        if keys.shape[-1] != 2 * self._inv_freq.numel():
            raise FailedPrecondition(f"keys of head size {keys.shape[-1]} do not match the "
                                     f"model's {2 * self._inv_freq.numel()} rotary dimensions")
        cos = cos.to(dtype=keys.dtype, device=keys.device)
        sin = sin.to(dtype=keys.dtype, device=keys.device)
        return keys * cos + _rotate_half(keys) * sin


@dataclass(frozen=True)
class Piece:
    """Positions `start:` of a stored segment, to be moved `delta` positions later. Holds views
    of the stored tensors: the caller keeps the segment pinned until `append_pieces`."""

    layers: list[tuple[Any, Any]]  # per layer (keys, values), [batch, kv_heads, tokens, dim]
    delta: int

    @property
    def num_tokens(self) -> int:
        return self.layers[0][0].shape[-2]


def segment_piece(layers: Any, start: int, delta: int, stop: Optional[int] = None) -> Piece:
    """Positions start:stop of a stored cache's layers, to be moved `delta` positions."""
    return Piece([(keys[..., start:stop, :], values[..., start:stop, :])
                  for keys, values in layers], delta)


def append_pieces(cache: Any, pieces: list[Piece], rope: RopeShift) -> None:
    """Append pieces to `cache` (a transformers DynamicCache), each one's keys moved by its
    delta: one concatenation and one rotation per layer for all of them (piece by piece, the
    growing cache would be copied once a memory, and the rotation run once a memory a layer).
    The stored tensors are not modified: rotation and concatenation make new ones."""
    import torch

    deltas = torch.cat([torch.full((p.num_tokens,), p.delta, dtype=torch.float64)
                        for p in pieces])
    cos, sin = rope.rotation(deltas) if bool(deltas.any()) else (None, None)
    for index in range(len(pieces[0].layers)):
        keys = torch.cat([p.layers[index][0] for p in pieces], dim=-2)
        values = torch.cat([p.layers[index][1] for p in pieces], dim=-2)
        cache.update(keys if cos is None else rope.rotate(keys, cos, sin), values, index)


@functools.cache
def _composed_cache_class() -> type:
    from transformers import DynamicCache

    class ComposedCache(DynamicCache):
        """A DynamicCache that a forward pass can rewrite in place: while `overwrite` holds
        positions, the pass's first len(overwrite) keys/values replace the cached ones there
        and the rest are appended; attention then reads the whole cache, rewritten positions
        included."""

        overwrite: Any = None  # LongTensor of positions, during `prefill_recomputing` only

        def update(self, key_states: Any, value_states: Any, layer_idx: int, *args: Any,
                   **kwargs: Any) -> tuple[Any, Any]:
            if self.overwrite is None:
                return super().update(key_states, value_states, layer_idx, *args, **kwargs)
            count = self.overwrite.numel()
            layer = self.layers[layer_idx]
            layer.keys[..., self.overwrite, :] = key_states[..., :count, :]
            layer.values[..., self.overwrite, :] = value_states[..., :count, :]
            if key_states.shape[-2] > count:
                return super().update(key_states[..., count:, :], value_states[..., count:, :],
                                      layer_idx, *args, **kwargs)
            return layer.keys, layer.values

    return ComposedCache


def composed_cache(config: Any) -> Any:
    """An empty cache for a segments-composed prompt (one per request)."""
    return _composed_cache_class()(config=config)


class Stop(Exception):
    """Ends a probe pass (select.probe) once the layer it measures has run."""


def forward_pass(model: Any, cache: Any, positions: Any, tokens: Sequence[int],
             keep: int = 0) -> Any:
    """One pass over `tokens` at `positions` (those in `cache.overwrite` rewritten, the others
    appended), each token attending to the cache up to its own position; the last logits, or
    the last `keep` tokens' ([keep, vocab])."""
    import torch

    length = cache.get_seq_length() + len(tokens) - cache.overwrite.numel()
    dtype = next(model.parameters()).dtype
    # Additive mask [1, 1, tokens, keys]: a token sees the positions up to its own.
    visible = torch.arange(length, device=model.device)[None, :] <= positions[:, None]
    mask = torch.zeros(visible.shape, dtype=dtype, device=model.device)
    mask.masked_fill_(~visible, torch.finfo(dtype).min)
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([list(tokens)], device=model.device),
                    position_ids=positions[None, :], cache_position=positions,
                    attention_mask=mask[None, None], past_key_values=cache, use_cache=True,
                    logits_to_keep=max(keep, 1))
    return out.logits[0] if keep else out.logits[0, -1]


def positions_of(cache: Any, recomputed: Sequence[int], appended: int) -> Any:
    """(the recomputed positions, those and the appended ones' positions) as LongTensors;
    FailedPrecondition unless the recomputed ones ascend inside the cache."""
    import torch

    length = cache.get_seq_length()
    where = torch.tensor(list(recomputed), dtype=torch.long)
    if where.numel() and (int(where[-1]) >= length or bool((where[1:] <= where[:-1]).any())):
        raise FailedPrecondition(f"recomputed positions must ascend inside the cache's "
                                 f"{length} tokens")
    return where, torch.cat([where, torch.arange(length, length + appended)])


def prefill_recomputing(model: Any, cache: Any, recomputed: Sequence[int],
                        positions: Sequence[int], tokens: Sequence[int], keep: int = 0) -> Any:
    """Append `tokens` to `cache` (a `composed_cache`) and, in the same forward pass, compute
    again the keys/values of the `recomputed` tokens already in it at `positions` (ascending),
    each attending causally to the whole cache: at every layer they then see the memories
    before their own, which their stored caches never saw (CacheBlend's selective recompute,
    Yao et al. 2024). Other positions keep their composed keys/values. One pass, not two: on a
    CPU a forward pass over a few dozen tokens costs mostly its fixed per-layer overhead.
    Returns the last token's logits (with `keep`, the last `keep` tokens'). Who calls it:
    `ActivationEngine`, for a composed prompt's first prefill (the question)."""
    if keep > len(tokens):
        raise FailedPrecondition(f"{keep} logits asked of a pass appending {len(tokens)} tokens")
    where, every = positions_of(cache, positions, len(tokens))
    cache.overwrite = where.to(model.device)
    try:
        return forward_pass(model, cache, every.to(model.device), list(recomputed) + list(tokens),
                        keep)
    finally:
        cache.overwrite = None
