"""LoRA training on a cube's memories, and the loss measure used to judge it. Each memory is a
training example in the model's prompt layout (tiers/llm/prompt.py, `recall`): for a chat model
the answer to a question about the memory's speaker, the loss on the memory's tokens only, so
the adapter learns to bring memories into answers rather than to continue a conversation.

Who uses it: the LoRA trainer actor (`actors/lora.py`) runs `train_lora` in a background thread
per job, and `bench lora`. Torch and peft are imported lazily.
"""
from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Callable, Optional, Sequence

from memos_cluster.core.errors import InvalidArgument
from memos_cluster.tiers.llm.prompt import prompt_format

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


def _encode(model: Any, tokenizer: Any, texts: Sequence[str], max_tokens: int,
            times: Sequence[Optional[int]] = ()) -> list[tuple[list[int], list[int]]]:
    """Each memory as a training example of the model's prompt layout (tiers/llm/prompt.py):
    (token ids, labels), the loss on the memory's tokens only (`max_tokens` of them). `times`:
    the memories' event times (epoch ms or None), shown as their dates; none if empty."""
    layout = prompt_format(tokenizer, model.config.eos_token_id)
    examples = []
    for text, cues, when in zip(texts, rare_words(texts), times or [None] * len(texts)):
        prompt, answer = layout.recall(text, cues, when)
        answer = answer[:max_tokens]
        examples.append((prompt + answer, [-100] * len(prompt) + answer))
    return examples


_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{2,}")


def rare_words(texts: Sequence[str], per_text: int = 3) -> list[list[str]]:
    """Each text's `per_text` rarest words among all the texts (by how many texts hold them;
    ties by first appearance): the cues a training example asks about."""
    words = [list(dict.fromkeys(w.lower() for w in _WORD.findall(t))) for t in texts]
    held = Counter(w for ws in words for w in ws)
    return [sorted(ws, key=lambda w: held[w])[:per_text] for ws in words]


def mean_token_loss(model: Any, tokenizer: Any, texts: Sequence[str],
                    max_tokens: int = 256, times: Sequence[Optional[int]] = ()) -> float:
    """Mean next-token cross-entropy over the memories' tokens, in their training layout
    (nats per token)."""
    import torch

    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for ids, labels in _encode(model, tokenizer, texts, max_tokens, times):
            scored = sum(1 for t in labels[1:] if t != -100)  # HF shifts labels by one
            if not scored:
                continue
            loss = model(input_ids=torch.tensor([ids], device=model.device),
                         labels=torch.tensor([labels], device=model.device)).loss
            total += float(loss) * scored
            count += scored
    if not count:
        raise InvalidArgument("the texts have no tokens to score", "memory_ids")
    return total / count


def _batch(encoded: list[tuple[list[int], list[int]]], index: Any,
           pad_id: int) -> dict[str, Any]:
    import torch

    rows = [encoded[i] for i in index]
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id)
    labels = torch.full((len(rows), width), -100)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for j, (row, row_labels) in enumerate(rows):
        ids[j, : len(row)] = torch.tensor(row)
        labels[j, : len(row)] = torch.tensor(row_labels)
        mask[j, : len(row)] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def train_lora(model: Any, tokenizer: Any, texts: Sequence[str], spec: LoraSpec,
               on_step: Callable[[int, float], None],
               should_stop: Callable[[], bool], times: Sequence[Optional[int]] = ()) -> Any:
    """Wrap `model` with a fresh LoRA adapter and train it on `texts`. Returns the peft model;
    the caller saves it and must `unload()` it to get the plain base back (peft injects its
    layers into `model`). Raises TrainingCancelled when `should_stop()` turns true."""
    if not texts:
        raise InvalidArgument("no memories to train on", "memory_ids")
    encoded = _encode(model, tokenizer, texts, spec.max_tokens, times)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def loss_of(peft_model: Any, index: list[int]) -> Any:
        batch = {k: v.to(peft_model.device) for k, v in _batch(encoded, index, pad).items()}
        return peft_model(**batch).loss
    return run_lora(model, spec, len(encoded), loss_of, on_step, should_stop)


def run_lora(model: Any, spec: LoraSpec, num_examples: int,
             loss_of: Callable[[Any, list[int]], Any], on_step: Callable[[int, float], None],
             should_stop: Callable[[], bool]) -> Any:
    """Wrap `model` with a fresh LoRA adapter (spec's rank, alpha, target modules) and take
    `spec.steps` AdamW steps, each on `spec.batch_size` example indices drawn with replacement
    (seeded), minimising `loss_of(peft_model, indices)`. Returns the peft model in eval mode;
    unloads it and re-raises on any failure (TrainingCancelled when `should_stop()`). Who
    calls it: `train_lora` (memory recall) and `distill.distill_lora` (question adapters)."""
    import torch
    from peft import LoraConfig, get_peft_model

    spec.check()
    torch.manual_seed(spec.seed)
    peft_model = get_peft_model(model, LoraConfig(
        r=spec.rank, lora_alpha=spec.alpha, lora_dropout=0.0,
        target_modules=list(spec.target_modules)))
    try:
        optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad],
                                      lr=spec.learning_rate)
        generator = torch.Generator().manual_seed(spec.seed)
        peft_model.train()
        for step in range(spec.steps):
            if should_stop():
                raise TrainingCancelled(f"cancelled at step {step}")
            index = torch.randint(0, num_examples, (spec.batch_size,), generator=generator)
            loss = loss_of(peft_model, index.tolist())
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
