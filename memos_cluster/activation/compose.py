"""Composing per-memory KV caches into one prompt's cache, with positions fixed.

In "segments" composition each memory's keys and values are computed once on their own, as
`[BOS] + memory` at positions 0..n (its *canonical* cache). A prompt that places the memory at
position p needs its keys at positions p..p+n-1. Values carry no position, and a RoPE key at
position i is R(i)·k, so moving it by d is one more rotation: R(i + d)·k = R(d)·R(i)·k. Shifting
the stored keys by d = p - 1 therefore gives exactly the keys a full prefill would put there
for the memory's own tokens; what composition leaves out is attention *between* memories
(each memory's deeper layers saw only BOS and itself), the approximation that parallel-encoding
schemes (TurboRAG, Block-Attention) make. Concatenating without the shift, as some systems do,
gives every memory the positions 1..n: wrong for all but the first.

Who uses it: `ActivationEngine` in segments mode. Torch is imported lazily.
"""
from __future__ import annotations

from typing import Any

from memos_cluster.errors import ConfigError, FailedPrecondition

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
    """Moves cached keys along the sequence. Who calls it: the engine, per composed memory."""

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

    def shift(self, keys: Any, delta: int) -> Any:
        """`keys` ([batch, kv_heads, tokens, head_dim]) moved `delta` positions later."""
        import torch

        if delta == 0:
            return keys
        if keys.shape[-1] != 2 * self._inv_freq.numel():
            raise FailedPrecondition(f"keys of head size {keys.shape[-1]} do not match the "
                                     f"model's {2 * self._inv_freq.numel()} rotary dimensions")
        angles = delta * self._inv_freq
        angles = torch.cat((angles, angles))  # rotate_half pairs dimension i with i + half
        cos = angles.cos().to(keys.dtype).to(keys.device)
        sin = angles.sin().to(keys.dtype).to(keys.device)
        return keys * cos + _rotate_half(keys) * sin


def append_segment(cache: Any, layers: Any, start: int, delta: int, rope: RopeShift) -> None:
    """Append positions `start:` of a stored segment's per-layer (keys, values) to `cache` (a
    transformers DynamicCache), keys shifted by `delta`. The stored tensors are not modified:
    the shift makes new tensors and the cache appends with torch.cat."""
    for index, (keys, values) in enumerate(layers):
        cache.update(rope.shift(keys[..., start:, :], delta), values[..., start:, :], index)
