"""`memos-cluster bench lora`: train an adapter on a cube's memories (LoCoMo turns) and report the
mean token loss of the base and the adapter on the trained memories and on held-out memories of
the same conversation, training time and adapter size.

Runs the trainer in-process (what the LoRA trainer actor runs), through the real adapter store.
Not a test: it asserts nothing about speed.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

from memos_cluster.core.tier_types import BlockMemory
from memos_cluster.tiers.llm.model import load_causal_lm, resolve_model
from memos_cluster.tiers.parametric.store import AdapterStore
from memos_cluster.tiers.parametric.trainer import AdapterTrainer
from memos_cluster.tiers.parametric.training import LoraSpec, mean_token_loss

TIMEOUT_S = 3600


def run_lora_bench(model: str, cache_dir: Path, device: str, texts: Sequence[str],
                   spec: LoraSpec, n_train: int = 100, n_heldout: int = 50,
                   say: Callable[[str], None] = print) -> dict[str, Any]:
    if len(texts) < n_train + n_heldout:
        raise SystemExit(f"need {n_train + n_heldout} memories, have {len(texts)}")
    path, identity = resolve_model(model, cache_dir)
    lm, tokenizer = load_causal_lm(path, device)
    train = [BlockMemory("bench", f"m{i}", 1, t) for i, t in enumerate(texts[:n_train])]
    heldout = list(texts[n_train:n_train + n_heldout])
    base_heldout = mean_token_loss(lm, tokenizer, heldout, spec.max_tokens)
    with tempfile.TemporaryDirectory(prefix="memos-bench-lora-") as root:
        store = AdapterStore(root)
        trainer = AdapterTrainer(lambda: (lm, tokenizer, identity), store)
        say(f"training {model} LoRA r={spec.rank} on {n_train} memories, {spec.steps} steps "
            f"of {spec.batch_size} on {device} ...")
        job = trainer.wait(trainer.start("bench", train, spec).job_id, TIMEOUT_S)
        if job.status != "succeeded":
            raise SystemExit(f"training {job.status}: {job.error}")
        record = store.current("bench")
        from peft import PeftModel

        adapted = PeftModel.from_pretrained(lm, str(store.fetch(record, Path(root) / "fetched")))
        adapter_heldout = mean_token_loss(adapted, tokenizer, heldout, spec.max_tokens)
        adapted.unload()
    metrics = record.metrics
    result = {"model": identity.as_metadata(), "device": device, "n_memories": n_train,
              "n_heldout": len(heldout), "spec": spec.as_dict(),
              "train_s": metrics["train_s"],
              "train_s_per_100_memories": round(100 * metrics["train_s"] / n_train, 2),
              "adapter_bytes": int(metrics["adapter_bytes"]),
              "loss": {"base_trained": metrics["base_loss"],
                       "adapter_trained": metrics["adapter_loss"],
                       "base_heldout": round(base_heldout, 4),
                       "adapter_heldout": round(adapter_heldout, 4)}}
    loss = result["loss"]
    say(f"trained in {result['train_s']} s; adapter {result['adapter_bytes'] / 1e6:.2f} MB")
    say(f"mean token loss (nats): trained memories {loss['base_trained']} -> "
        f"{loss['adapter_trained']} ({loss['adapter_trained'] / loss['base_trained']:.2f}x); "
        f"held-out {loss['base_heldout']} -> {loss['adapter_heldout']}")
    return result
