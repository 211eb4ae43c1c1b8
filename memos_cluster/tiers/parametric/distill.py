"""Parametric memory's job: a cube's frequent questions answered without retrieval.

A 135M base model does not turn trained memory lines into answers to unseen questions
(docs/parametric.md). What an adapter can do is answer the questions a cube is asked often as
the base model does with their memories in context, from the question alone: the time to
first token of a prompt with no memories. So an adapter is trained by distillation:

- the teacher is the base model with a question's retrieved memories in its prompt (the
  plaintext tier's answer); its greedy answer (up to `max_answer_tokens`, with the end of turn)
  and its top-k log-probabilities at each answer token are the target;
- answers that share no word with their memories are dropped (the teacher did not answer
  from memory there, and an adapter should not learn it);
- the student is the adapted model with the question alone (`PromptFormat.tail` after the
  head, no memories), on the question and rule-made rewrites of it (`rewrites`), trained on
  cross-entropy against the teacher's top-k distribution (KL up to a constant);
- one rewrite of each question is held out: the adapter's agreement with the teacher there
  (the share of answer tokens its greedy picks reproduce before the first miss, teacher
  forced) decides whether it may serve (trainer.py).

Who uses it: the LoRA trainer (`AdapterTrainer.start_questions`) and `bench parametric`. Torch
and peft are imported lazily.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from memos_cluster.core.errors import InvalidArgument
from memos_cluster.core.tier_types import BlockMemory
from memos_cluster.tiers.llm.prompt import PromptFormat, prompt_format
from memos_cluster.tiers.parametric.training import LoraSpec, run_lora

TOP_K = 32  # teacher log-probabilities kept per answer token
MAX_ANSWER_TOKENS = 16
_WH = re.compile(r"^(when|where|what|why|how|who|which)\s+(did|does|do|is|was|has|have|are|"
                 r"were|can|could|would|will)\s+(.+)$", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9]{3,}")
_COMMON = frozenset("the and for with that this from have has had was were are you your "
                    "she her his him they them their what when where why how who which did "
                    "does about yes not".split())


@dataclass(frozen=True)
class Lesson:
    """A question a cube is asked often, and the memories retrieval puts beside it."""

    question: str
    memories: tuple[BlockMemory, ...]


@dataclass(frozen=True)
class Target:
    """What the student learns for one question: the teacher's answer and distribution."""

    question: str
    answer: tuple[int, ...]  # the teacher's greedy answer tokens, its end of turn last
    top_ids: Any  # LongTensor [len(answer), TOP_K]
    top_logprobs: Any  # FloatTensor [len(answer), TOP_K]


def rewrites(question: str) -> list[str]:
    """Rule-made rewrites of a question, in a fixed order (the last is held out): a preamble,
    a closing request, the wh-word moved to the end, and the question in lower case."""
    text = " ".join(question.split())
    core = text.rstrip("?").strip()
    out = [f"Quick question: {core}?", f"{core}? Please answer briefly."]
    moved = _WH.match(core)
    if moved:  # "When did Caroline go to the group" -> "Caroline go to the group, when?"
        out.append(f"{moved.group(3)}, {moved.group(1).lower()}?")
    out.append(core.lower() + "?")
    return [q for q in dict.fromkeys(out) if q != text]


def _content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _COMMON}


def _greedy(model: Any, tokens: Sequence[int], stop_ids: frozenset[int],
            max_tokens: int) -> tuple[list[int], Any, Any]:
    """The greedy answer after `tokens` and each step's top-k log-probabilities."""
    import torch
    from transformers import DynamicCache

    cache, answer, ids, logprobs = DynamicCache(config=model.config), [], [], []
    step = list(tokens)
    with torch.inference_mode():
        for _ in range(max_tokens):
            out = model(input_ids=torch.tensor([step], device=model.device),
                        past_key_values=cache, use_cache=True, logits_to_keep=1)
            scores = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
            top = torch.topk(scores, TOP_K)
            ids.append(top.indices.cpu())
            logprobs.append(top.values.cpu())
            token = int(top.indices[0])
            answer.append(token)
            if token in stop_ids:
                break
            step = [token]
    return answer, torch.stack(ids), torch.stack(logprobs)


def teach(model: Any, layout: PromptFormat, lessons: Sequence[Lesson],
          max_answer_tokens: int = MAX_ANSWER_TOKENS,
          require_overlap: bool = True) -> tuple[list[Target], int]:
    """The teacher's targets for the lessons whose answers come from their memories (share a
    word with them; `require_overlap` False keeps every answer: tests of the mechanics on a
    random model); and how many lessons were dropped for answering from elsewhere."""
    targets, dropped = [], 0
    for lesson in lessons:
        prompt = list(layout.head)
        for memory in lesson.memories:
            prompt += layout.memory(memory.text, memory.event_time_ms)
        prompt += layout.tail(lesson.question)
        answer, ids, logprobs = _greedy(model, prompt, layout.stop_ids, max_answer_tokens)
        said = layout.decode(answer) if layout.decode else ""
        if require_overlap and not _content_words(said) & _content_words(
                " ".join(m.text for m in lesson.memories)):
            dropped += 1
            continue
        targets.append(Target(lesson.question, tuple(answer), ids, logprobs))
    return targets, dropped


def asked(target: Target, held_out: bool) -> list[str]:
    """The texts a target is asked as: the question and its trained rewrites, or (held_out)
    its held-out rewrite."""
    variants = rewrites(target.question)
    return variants[-1:] if held_out else [target.question] + variants[:-1]


def _examples(layout: PromptFormat, targets: Sequence[Target],
              held_out: bool) -> list[tuple[list[int], Target]]:
    """(student prompt, target) pairs, one a text `asked` gives."""
    return [(list(layout.head) + layout.tail(q), target)
            for target in targets for q in asked(target, held_out)]


def _forward_answers(model: Any, rows: Sequence[tuple[list[int], Target]]) -> list[Any]:
    """Each row's student logits at the positions that predict its answer tokens."""
    import torch

    width = max(len(p) + len(t.answer) - 1 for p, t in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for j, (prompt, target) in enumerate(rows):
        seq = prompt + list(target.answer[:-1])
        ids[j, :len(seq)] = torch.tensor(seq)
        mask[j, :len(seq)] = 1
    logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits
    return [logits[j, len(p) - 1:len(p) - 1 + len(t.answer)] for j, (p, t) in enumerate(rows)]


def distillation_loss(student: Any, target: Target) -> Any:
    """Cross-entropy of the student's distribution against the teacher's top-k one (the
    teacher's renormalised over its top k), mean over answer tokens."""
    import torch

    teacher = torch.softmax(target.top_logprobs.to(student.device), dim=-1)
    picked = torch.log_softmax(student.float(), dim=-1).gather(
        -1, target.top_ids.to(student.device))
    return -(teacher * picked).sum(dim=-1).mean()


def reproduced(model: Any, layout: PromptFormat, targets: Sequence[Target],
               held_out: bool) -> list[float]:
    """For each text `asked` gives, in order: the share of the teacher's answer the student
    reproduces before its first miss (teacher forced: exactly its own greedy answer's
    agreement; 1.0 is the teacher's whole answer)."""
    import torch

    shares = []
    with torch.inference_mode():
        for row in _examples(layout, targets, held_out):
            picks = _forward_answers(model, [row])[0].argmax(dim=-1).tolist()
            answer, same = row[1].answer, 0
            while same < len(answer) and picks[same] == answer[same]:
                same += 1
            shares.append(same / len(answer))
    return shares


def agreement(model: Any, layout: PromptFormat, targets: Sequence[Target],
              held_out: bool) -> float:
    """`reproduced` as a percent, over the questions and their trained rewrites, or over
    their held-out rewrites."""
    shares = reproduced(model, layout, targets, held_out)
    return round(100 * sum(shares) / len(shares), 1) if shares else 0.0


def learned(model: Any, layout: PromptFormat, targets: Sequence[Target]) -> tuple[list[str],
                                                                                float]:
    """The trained texts (questions and rewrites) whose whole teacher answer the student
    gives, the only ones memory_mode auto lets the adapter answer; and `agreement` over all
    of them."""
    texts = [q for target in targets for q in asked(target, False)]
    shares = reproduced(model, layout, targets, False)
    return [q for q, share in zip(texts, shares) if share == 1.0], \
        round(100 * sum(shares) / len(shares), 1) if shares else 0.0


def distill_lora(model: Any, layout: PromptFormat, targets: Sequence[Target], spec: LoraSpec,
                 on_step: Callable[[int, float], None], should_stop: Callable[[], bool]) -> Any:
    """Wrap `model` with a fresh LoRA adapter trained on the targets. Returns the peft model
    (the caller saves it and must `unload()` it). TrainingCancelled when `should_stop()`."""
    import torch

    rows = _examples(layout, targets, held_out=False)
    if not rows:
        raise InvalidArgument("no question was answered from its memories: nothing to learn",
                              "questions")

    def loss_of(peft_model: Any, index: list[int]) -> Any:
        batch = [rows[i] for i in index]
        logits = _forward_answers(peft_model, batch)
        return torch.stack([distillation_loss(s, t) for s, (_, t) in zip(logits, batch)]).mean()
    return run_lora(model, spec, len(rows), loss_of, on_step, should_stop)


def layout_of(model: Any, tokenizer: Any) -> PromptFormat:
    """The model's prompt layout, able to decode (for the overlap check)."""
    import dataclasses

    return dataclasses.replace(prompt_format(tokenizer, model.config.eos_token_id),
                               decode=lambda ids: tokenizer.decode(ids,
                                                                   skip_special_tokens=True))
