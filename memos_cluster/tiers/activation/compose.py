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

from dataclasses import dataclass
from typing import Any

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


def segment_piece(layers: Any, start: int, delta: int) -> Piece:
    return Piece([(keys[..., start:, :], values[..., start:, :]) for keys, values in layers],
                 delta)


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
