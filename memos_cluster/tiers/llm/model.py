"""The model registry of activation (and parametric) memory: which causal LM a KV cache belongs to.

`activation.model` names either a Hugging Face model id or local directory (real deployments), or
`builtin:tiny-llama`: a small Llama created offline from a fixed config with a fixed seed, saved
once under the model cache directory and loaded from there by every actor, so all of them see
identical weights. Its weights are random: its text is meaningless, while every mechanism (prefill,
cache reuse, spill, exactness) is real. Its tokenizer is the BERT tokenizer shipped with MiniLM.

A cache or adapter records the `ModelIdentity` it was built with and is refused by any other.
"""
from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from memos_cluster.core.errors import ConfigError, FailedPrecondition

BUILTIN_PREFIX = "builtin:"
# The built-in model: small enough to prefill thousands of tokens on a 2-core CPU in well under
# a second, with a context long enough for the 8,192-token bench blocks plus a 512-token query.
BUILTIN_CONFIGS: dict[str, dict[str, Any]] = {
    "tiny-llama": dict(hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                       num_attention_heads=4, num_key_value_heads=2,
                       max_position_embeddings=16384, tie_word_embeddings=False,
                       # Wider than the usual 0.02, so that random weights still give
                       # input-dependent, varied greedy output (exactness tests mean something).
                       initializer_range=0.1),
    # A bigger one for GPU benchmarks.
    "small-llama": dict(hidden_size=1024, intermediate_size=2816, num_hidden_layers=12,
                        num_attention_heads=16, num_key_value_heads=4,
                        max_position_embeddings=16384, tie_word_embeddings=False,
                        initializer_range=0.1),
}
BUILTIN_SEED = 1234
BUILTIN_FORMAT = "1"  # bump when the built-in recipe changes (new weights, new identity)


@dataclass(frozen=True)
class ModelIdentity:
    """What a KV cache or an adapter is only valid for."""

    model_id: str  # "builtin:tiny-llama", a hub id, or a local path
    revision: str  # a digest of the weights and config files
    tokenizer: str  # a digest of the tokenizer files

    def as_metadata(self) -> dict[str, str]:
        return {"model_id": self.model_id, "revision": self.revision,
                "tokenizer": self.tokenizer}

    def check(self, metadata: dict[str, str], what: str) -> None:
        """Raise FailedPrecondition unless `metadata` (from a file) names this identity."""
        found = {k: metadata.get(k) for k in ("model_id", "revision", "tokenizer")}
        if found != self.as_metadata():
            raise FailedPrecondition(f"{what} was built for model {found}, not for "
                                     f"{self.as_metadata()}; refusing to load it")


FULL_HASH_MAX_BYTES = 1 << 30  # larger weight files: size plus their first and last MiB
EDGE_BYTES = 1 << 20


def _file_digest(path: Path, digest: Any) -> None:
    size = path.stat().st_size
    with open(path, "rb") as handle:
        if size <= FULL_HASH_MAX_BYTES:
            while chunk := handle.read(1 << 24):
                digest.update(chunk)
        else:
            digest.update(str(size).encode())
            digest.update(handle.read(EDGE_BYTES))
            handle.seek(size - EDGE_BYTES)
            digest.update(handle.read(EDGE_BYTES))


def _digest(directory: Path, suffixes: tuple[str, ...], names: tuple[str, ...] = ()) -> str:
    """A content digest of the files with these suffixes or exact names, the same on every
    node: identical weights built or downloaded on different machines get the same identity."""
    digest = hashlib.sha256()
    for name in sorted(os.listdir(directory)):
        path = directory / name
        if path.is_file() and (name.endswith(suffixes) or name in names):
            digest.update(name.encode())
            _file_digest(path, digest)
    return digest.hexdigest()[:16]


def identity_of(model_id: str, directory: Path) -> ModelIdentity:
    # tokenizer_config.json is left out: it records volatile loading flags (local_files_only).
    return ModelIdentity(
        model_id=model_id,
        revision=_digest(directory, (".safetensors", ".bin"),
                         ("config.json", "generation_config.json")),
        tokenizer=_digest(directory, (), ("tokenizer.json", "vocab.txt", "tokenizer.model",
                                          "merges.txt", "vocab.json")))


def _create_builtin(name: str, target: Path) -> None:
    """Build the named built-in model from its config and seed; write it atomically."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from memos_cluster.embed.base import resolve_model_path

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(None))
    config = LlamaConfig(vocab_size=tokenizer.vocab_size, bos_token_id=tokenizer.cls_token_id,
                         eos_token_id=tokenizer.sep_token_id,
                         pad_token_id=tokenizer.pad_token_id, **BUILTIN_CONFIGS[name])
    torch.manual_seed(BUILTIN_SEED)
    model = LlamaForCausalLM(config)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    try:
        os.replace(partial, target)
    except OSError:  # another actor of this node finished first: keep its copy
        import shutil

        shutil.rmtree(partial, ignore_errors=True)


def resolve_model(model: str, cache_dir: Path) -> tuple[str, ModelIdentity]:
    """(a path or hub id that from_pretrained loads, its identity). Built-ins are created on
    first use under `cache_dir`. Who calls it: the KV-cache and LoRA actors when they start."""
    if model.startswith(BUILTIN_PREFIX):
        name = model[len(BUILTIN_PREFIX):]
        if name not in BUILTIN_CONFIGS:
            raise ConfigError(f"unknown built-in model {model!r} (known: "
                              f"{', '.join(BUILTIN_PREFIX + n for n in BUILTIN_CONFIGS)})",
                              "activation.model")
        directory = cache_dir / f"{name}-v{BUILTIN_FORMAT}-seed{BUILTIN_SEED}"
        if not directory.exists():
            directory.parent.mkdir(parents=True, exist_ok=True)
            _create_builtin(name, directory)
        return str(directory), identity_of(model, directory)
    path = Path(model).expanduser()
    if path.is_dir():
        return str(path), identity_of(model, path)
    # A hub id: resolved through the local hub cache only (no downloads at run time here).
    from huggingface_hub import snapshot_download

    try:
        directory = Path(snapshot_download(model, local_files_only=True))
    except Exception as exc:  # the hub client raises several types for "not cached"
        raise ConfigError(f"model {model!r} is neither a directory nor in the local hub cache: "
                          f"{exc}", "activation.model") from exc
    return str(directory), identity_of(model, directory)


def default_device(requested: Optional[str] = None) -> str:
    """`requested`, else "cuda" where torch sees a GPU, else "cpu". Who calls it: KV-cache and
    LoRA actors when they load the model, and the benches."""
    import torch

    return requested or ("cuda" if torch.cuda.is_available() else "cpu")


def load_causal_lm(path: str, device: str) -> tuple[Any, Any]:
    """(model in eval mode on `device`, tokenizer). Eager attention: identical numerics for a
    prefill in one pass or in pieces over a cache, which exact reuse depends on."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32,
                                                 attn_implementation="eager")
    return model.to(device).eval(), AutoTokenizer.from_pretrained(path)
