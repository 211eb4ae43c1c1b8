"""LoRA training on a cube's memory texts (causal LM loss), and the loss measure used to judge it.

Who uses it: the LoRA trainer actor (`actors/lora.py`) runs `train_lora` in a background thread
per job, and `bench lora`. Torch and peft are imported lazily.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

from memos_cluster.core.errors import InvalidArgument

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class TrainingCancelled(Exception):
    """Raised inside a training loop when its job was cancelled."""


@dataclass(frozen=True)
class LoraSpec:
    rank: int = 16
    alpha: int = 32
    target_modules: tuple[str, ...] = DEFAULT_TARGETS
    steps: int = 150  # optimizer steps
    learning_rate: float = 3e-3
    batch_size: int = 8  # texts per step, sampled with replacement
    max_tokens: int = 256  # per text; longer texts are cut
    seed: int = 0

    def check(self) -> "LoraSpec":
        if not 1 <= self.rank <= 256 or self.alpha <= 0:
            raise InvalidArgument("rank must be in 1..256 and alpha positive", "rank")
        if not 1 <= self.steps <= 100_000 or not 1 <= self.batch_size <= 512:
            raise InvalidArgument("steps must be in 1..100000, batch_size in 1..512", "steps")
        if not 0 < self.learning_rate < 1:
            raise InvalidArgument("learning_rate must be in (0, 1)", "learning_rate")
        if not self.target_modules:
            raise InvalidArgument("name at least one target module", "target_modules")
        return self

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["target_modules"] = list(self.target_modules)
        return data


def _encode(tokenizer: Any, texts: Sequence[str], max_tokens: int) -> list[Any]:
    return [tokenizer(t, return_tensors="pt", truncation=True,
                      max_length=max_tokens).input_ids[0] for t in texts]


def mean_token_loss(model: Any, tokenizer: Any, texts: Sequence[str],
                    max_tokens: int = 256) -> float:
    """Mean next-token cross-entropy over all tokens of `texts` (nats per token)."""
    import torch

    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for ids in _encode(tokenizer, texts, max_tokens):
            if len(ids) < 2:
                continue
            ids = ids.unsqueeze(0).to(model.device)
            loss = model(input_ids=ids, labels=ids).loss
            total += float(loss) * (ids.shape[1] - 1)
            count += ids.shape[1] - 1
    if not count:
        raise InvalidArgument("the texts have no tokens to score", "memory_ids")
    return total / count


def _batch(encoded: list[Any], index: Any, pad_id: int) -> dict[str, Any]:
    import torch

    rows = [encoded[i] for i in index]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id)
    labels = torch.full((len(rows), width), -100)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for j, row in enumerate(rows):
        ids[j, : len(row)], labels[j, : len(row)], mask[j, : len(row)] = row, row, 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def train_lora(model: Any, tokenizer: Any, texts: Sequence[str], spec: LoraSpec,
               on_step: Callable[[int, float], None],
               should_stop: Callable[[], bool]) -> Any:
    """Wrap `model` with a fresh LoRA adapter and train it on `texts`. Returns the peft model;
    the caller saves it and must `unload()` it to get the plain base back (peft injects its
    layers into `model`). Raises TrainingCancelled when `should_stop()` turns true."""
    import torch
    from peft import LoraConfig, get_peft_model

    spec.check()
    if not texts:
        raise InvalidArgument("no memories to train on", "memory_ids")
    torch.manual_seed(spec.seed)
    config = LoraConfig(r=spec.rank, lora_alpha=spec.alpha, lora_dropout=0.0,
                        target_modules=list(spec.target_modules))
    peft_model = get_peft_model(model, config)
    try:
        encoded = _encode(tokenizer, texts, spec.max_tokens)
        optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad],
                                      lr=spec.learning_rate)
        generator = torch.Generator().manual_seed(spec.seed)
        peft_model.train()
        for step in range(spec.steps):
            if should_stop():
                raise TrainingCancelled(f"cancelled at step {step}")
            index = torch.randint(0, len(encoded), (spec.batch_size,), generator=generator)
            batch = {k: v.to(peft_model.device) for k, v in
                     _batch(encoded, index.tolist(), tokenizer.pad_token_id).items()}
            loss = peft_model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            on_step(step + 1, float(loss.detach()))
        peft_model.eval()
        return peft_model
    except BaseException:
        peft_model.unload()
        raise


def timed(function: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    return function(), time.perf_counter() - start
