"""The ONNX Runtime embedder: the same sentence-transformers model, run by onnxruntime on the CPU.

Why: a query is one short text, and torch spends most of its time on per-operator overhead for
such small matrices. On the 2-core machine all-MiniLM-L6-v2 embeds a LoCoMo question in 4.7 ms
(p50) with onnxruntime against 12.0 ms with torch, to the same vector (cosine >= 0.99999), and
batches run at the same rate (~400 texts/s). The query embedding is the largest single cost of
a Search, so this is the default on CPU (`embedder.backend: onnx`); `torch` remains for GPUs.

The ONNX graph is exported from the model's own weights (torch.onnx) the first time a process
needs it and cached under `cache_dir`, keyed by the model's files, so every shard actor of a node
reuses one export. The export is checked against torch on a probe sentence before it is used.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from memos_cluster.core.errors import ConfigError
from memos_cluster.embed.base import SMALL_BATCH

EXPORT_FORMAT = "1"  # bump when the exported graph's inputs/outputs change
# Two texts of different lengths: one batch exercises padding and the attention mask.
PROBE_TEXTS = ("Caroline went to the LGBTQ support group on 7 May 2023 with her friends.",
               "Melanie paints.")
# The export against torch on the probe, by precision; below this the export is refused. int8
# (dynamic, per-channel weights): measured on 256 LoCoMo turns, cosine to fp32 mean 0.992, min
# 0.981, at 2.3x the throughput.
PROBE_MIN_COSINE = {"fp32": 0.9999, "int8": 0.97}
PRECISIONS = tuple(PROBE_MIN_COSINE)
ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _read_json(path: Path, default: Any) -> Any:
    return json.loads(path.read_text()) if path.exists() else default


def _check_mean_pooling(model_dir: Path) -> None:
    pooling = _read_json(model_dir / "1_Pooling" / "config.json", {"pooling_mode_mean_tokens": True})
    if not pooling.get("pooling_mode_mean_tokens"):
        raise ConfigError(f"{model_dir}: the onnx embedder supports mean pooling only; "
                          "set embedder.backend to torch for this model", "embedder.backend")


def export_key(model_dir: Path) -> str:
    """A name for the export that changes when the model's files change (config and weights)."""
    digest = hashlib.sha256(EXPORT_FORMAT.encode())
    for name in sorted(os.listdir(model_dir)):
        path = model_dir / name
        if path.is_file() and (name.endswith((".json", ".safetensors", ".bin", ".txt"))):
            stat = path.stat()
            digest.update(f"{name}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    return f"{model_dir.name}-{digest.hexdigest()[:16]}.onnx"


def _torch_module(model_dir: Path):
    """The transformer as a module of positional tensors -> last hidden state, for tracing.
    Eager attention: the fused kernels' mask handling does not trace to ONNX faithfully."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    return LastHiddenState()


def export_onnx(model_dir: Path, target: Path) -> None:
    """Trace the model to `target` (written to a unique temporary name, then renamed, so
    concurrent exporters on one node never see a half-written file)."""
    import torch

    module = _torch_module(model_dir)
    # Two rows of different lengths, so padding and masks are traced as dynamic.
    ids = torch.tensor([[101, 2023, 2003, 1037, 3231, 102], [101, 2023, 2003, 102, 0, 0]])
    mask = (ids > 0).long()
    axes = {name: {0: "batch", 1: "tokens"} for name in (*ONNX_INPUTS, "last_hidden_state")}
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
    # The tracer warns about data-dependent branches (mask shortcuts) and its own deprecation;
    # the export is checked against torch on a padded batch before use (_check_against_torch).
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (ids, mask, torch.zeros_like(ids)), str(partial),
                          input_names=list(ONNX_INPUTS), output_names=["last_hidden_state"],
                          dynamic_axes=axes, opset_version=17, dynamo=False)
    os.replace(partial, target)


class OnnxEmbedder:
    """Mean-pooled, L2-normalised sentence embeddings from an exported ONNX graph (fp32, or
    quantized to int8). Every run is single-threaded and embeds one text (see `embed`): a
    query keeps to one core, so a Search does not compete with the node's other work for both;
    a batch (writes) spreads its texts over `num_threads` runs at once."""

    def __init__(self, model_dir: str, cache_dir: str, dim: int, num_threads: int = 0,
                 precision: str = "fp32"):
        if precision not in PRECISIONS:
            raise ConfigError(f"embedder.precision {precision!r} is not one of {PRECISIONS}",
                              "embedder.precision")
        self._precision = precision
        self._model_dir = Path(model_dir)
        self._cache_dir = Path(cache_dir)
        self._dim = dim
        self._num_threads = num_threads or os.cpu_count() or 1
        self._lock = threading.Lock()
        self._tokenizer = None
        self._sessions: dict[int, Any] = {}  # threads -> onnxruntime.InferenceSession
        self._workers: Optional[ThreadPoolExecutor] = None  # batches: one run a row
        self._onnx_path: Optional[Path] = None

    @property
    def dim(self) -> int:
        return self._dim

    def _load(self) -> None:
        """Tokenizer and (exported, checked) graph; called once, under the lock."""
        from tokenizers import Tokenizer

        _check_mean_pooling(self._model_dir)
        config = _read_json(self._model_dir / "sentence_bert_config.json", {})
        tokenizer = Tokenizer.from_file(str(self._model_dir / "tokenizer.json"))
        tokenizer.no_padding()  # padding is done here, per batch, with explicit masks
        tokenizer.enable_truncation(int(config.get("max_seq_length", 256)))
        self._tokenizer = tokenizer
        path = self._cache_dir / export_key(self._model_dir)
        if not path.exists():
            export_onnx(self._model_dir, path)
            self._check_against_torch(path, PROBE_MIN_COSINE["fp32"])
        if self._precision == "int8":
            quantized = path.with_name(path.stem + "-int8.onnx")
            if not quantized.exists():
                quantize_int8(path, quantized)
                self._check_against_torch(quantized, PROBE_MIN_COSINE["int8"])
            path = quantized
        self._onnx_path = path

    def _session(self, threads: int):
        with self._lock:
            if self._onnx_path is None:
                self._load()
            if threads not in self._sessions:
                self._sessions[threads] = _new_session(self._onnx_path, threads)
            return self._sessions[threads]

    def _check_against_torch(self, path: Path, min_cosine: float) -> None:
        """Refuse (and delete) an export whose output differs from the model's own."""
        import torch

        ids, mask = self._pad(self._tokenizer.encode_batch(list(PROBE_TEXTS)))
        tensors = [torch.from_numpy(a) for a in (ids, mask, np.zeros_like(ids))]
        with torch.inference_mode():
            want = _pool(_torch_module(self._model_dir)(*tensors).numpy(), mask)
        got = self._run(_new_session(path, 1), ids, mask)
        if float((want * got).sum(axis=1).min()) < min_cosine:
            path.unlink(missing_ok=True)
            raise ConfigError(f"the ONNX export of {self._model_dir} does not reproduce the "
                              "model; set embedder.backend to torch", "embedder.backend")

    @staticmethod
    def _pad(encodings: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and attention mask of a batch, padded to its longest text."""
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1
        return ids, mask

    def _run(self, session, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = session.run(["last_hidden_state"], feeds)[0]
        if hidden.shape[-1] != self._dim:
            raise ConfigError(f"embedder produces {hidden.shape[-1]}-d vectors but {self._dim} "
                              "were configured", "embedder")
        return _pool(hidden, mask)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors in the order of `texts`, each computed from its own text alone: one row a
        run, on a pool of `num_threads` single-threaded runs (a few texts, a query, run on the
        caller's thread). So nothing is spent on padding, and a text gets the same vector
        whatever it is embedded with: int8 quantizes activations per run, and batched rows
        would depend on their batch-mates (cosine down to 0.96 against the text alone).
        Measured on LoCoMo turns, 2 cores: fp32 172 texts/s, int8 381 (batches of 32 in
        arrival order: fp32 80)."""
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        session = self._session(1)
        encodings = self._tokenizer.encode_batch(list(texts))

        def one(encoding: Any) -> np.ndarray:
            ids, mask = self._pad([encoding])
            return self._run(session, ids, mask)[0]

        if len(texts) <= SMALL_BATCH:
            return np.stack([one(e) for e in encodings]).astype(np.float32, copy=False)
        return np.stack(list(self._pool().map(one, encodings))).astype(np.float32, copy=False)

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._workers is None:
                self._workers = ThreadPoolExecutor(self._num_threads,
                                                   thread_name_prefix="embed")
            return self._workers


def quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8 quantization of an fp32 export (per-channel weights), written under a
    temporary name and renamed, like the export."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial.onnx")
    quantize_dynamic(str(source), str(partial), weight_type=QuantType.QInt8, per_channel=True)
    os.replace(partial, target)


def _new_session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # No spinning: idle ORT threads would burn the cores that Ray and Milvus need.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over real tokens, then L2 normalisation (what the sentence-transformers pipeline
    Transformer -> Pooling(mean) -> Normalize computes)."""
    weights = mask[..., None].astype(hidden.dtype)
    vectors = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
