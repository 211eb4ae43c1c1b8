"""Text embedders: the interface and default model (`base.py`) and two backends, ONNX Runtime
on the CPU (`onnx_embedder.py`, the default) and sentence-transformers (`torch_embedder.py`).
Heavy libraries are imported by the backends on first use, so importing this package is cheap."""
from __future__ import annotations

from memos_cluster.core.config import EmbedderConfig
from memos_cluster.core.errors import ConfigError
from memos_cluster.embed.base import MINILM_DIM, Embedder, resolve_model_path
from memos_cluster.embed.onnx_embedder import OnnxEmbedder
from memos_cluster.embed.torch_embedder import SentenceTransformerEmbedder

__all__ = ["Embedder", "make_embedder"]


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
        return OnnxEmbedder(resolve_model_path(config.model_path), cache_dir, MINILM_DIM,
                            num_threads=config.num_threads, precision=config.precision)
    raise ConfigError(f"embedder.backend {config.backend!r} is unknown (onnx, torch)",
                      "embedder.backend")
