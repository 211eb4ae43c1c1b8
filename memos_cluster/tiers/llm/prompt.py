"""How a Generate prompt is laid out in tokens: a head every prompt starts with, one piece per
memory, and a tail holding the question and opening the answer.

- chat layout (models with a chat template, such as SmolLM2-Instruct, the default model): the
  memories are lines of the system message ("Context:", the memories with the date they happened
  on when they have one, since temporal questions need it, then a one-line instruction), the
  question is the user's turn, and the prompt
  ends where the template opens the assistant's turn; generation stops at the template's end of
  turn. The pieces are cut out of the template rendered around markers, so the model sees
  exactly its own format.
- plain layout (models without one: the random built-ins): BOS, then `[memory] text` lines,
  then `[query] question` and `[answer]`.

The head is shared by every prompt and is the start of every cached memory ([head] + memory at
positions 0..n), so a memory's cache composes at any place of any prompt (compose.py).

Parametric memory trains in the same layout (`recall`): a memory is the answer to a question
about it, so an adapter learns to bring memories into answers, not to continue conversations.

Who uses it: `ActivationEngine`, which builds one `PromptFormat` per model, and LoRA training
(tiers/parametric/training.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Optional, Sequence

# What the system message says around the memories (chat layout). Kept short: every prompt
# carries it. Chosen by trying layouts on SmolLM2-135M with three LoCoMo turns: with the
# instruction after the memories it answered "Where did Caroline go yesterday?" and "What
# field does Caroline want to work in?" from them; with it before (or with the memories in the
# user's turn) it answered the second from its own imagination.
SYSTEM_INTRO = "Context:\n"
SYSTEM_OUTRO = "Answer the user's question from the context, in a few words."
MEMORY_MARK = "\u2063MEMORIES\u2063"  # invisible separators: never in a memory or a question
QUESTION_MARK = "\u2063QUESTION\u2063"


@dataclass(frozen=True)
class PromptFormat:
    kind: str  # "chat" or "plain"
    head: tuple[int, ...]  # tokens every prompt starts with
    stop_ids: frozenset[int]  # tokens that end the answer (end of turn, end of text)
    tokenize: Callable[[str], list[int]]
    memory_template: str  # one memory as text, "{text}" in it
    tail_template: str  # the question and the answer's opening, "{question}" in it
    end_id: Optional[int] = None  # the token that ends an answer (a training example's last)
    decode: Optional[Callable[[Sequence[int]], str]] = None  # token ids -> text, when needed

    def memory(self, text: str, event_time_ms: Optional[int] = None) -> tuple[int, ...]:
        """A memory's tokens (its piece of any prompt), with the date it happened on when the
        layout shows dates and the memory has one."""
        return tuple(self.tokenize(self.memory_template.replace("{when}", self._when(
            event_time_ms)).replace("{text}", text)))

    def _when(self, event_time_ms: Optional[int]) -> str:
        """"(8 May 2023) " for a memory's event time (UTC), when the layout shows dates."""
        if event_time_ms is None or "{when}" not in self.memory_template:
            return ""
        moment = datetime.fromtimestamp(event_time_ms / 1000, tz=timezone.utc)
        return f"({moment.day} {moment:%B %Y}) "

    def instruction(self) -> tuple[int, ...]:
        """The tail's fixed opening, the same in every prompt (chat: the instruction after the
        memories, the end of the system message, the user's turn opened), tokenized on its own
        so that segments composition can cache it like a memory."""
        fixed, _, _ = self.tail_template.partition("{question}")
        return tuple(self.tokenize(fixed)) if fixed else ()

    def tail(self, question: str) -> list[int]:
        _, _, after = self.tail_template.partition("{question}")
        return list(self.instruction()) + self.tokenize(question + after)

    def recall(self, text: str, cues: Sequence[str] = (),
               event_time_ms: Optional[int] = None) -> tuple[list[int], list[int]]:
        """A training example that teaches a memory: (prompt, answer) tokens. Chat layout: the
        prompt asks what is remembered of the memory's speaker ("Name: ..." texts) and of its
        `cues` (its rarest words: a question about the memory will name some of them), and
        the answer is the memory as a context line shows it (its date first, which temporal
        questions need), then the end of turn; plain layout: the memory after the head."""
        end = [self.end_id] if self.end_id is not None else []
        if self.kind != "chat":
            return list(self.head), self.tokenize(text) + end
        speaker, sep, _ = text.partition(":")
        subject = speaker.strip() if sep and 0 < len(speaker.split()) <= 3 else "that"
        about = f"{subject}: {', '.join(cues)}" if cues else subject
        prompt = list(self.head) + self.tail(f"What do you remember about {about}?")
        return prompt, self.tokenize(self._when(event_time_ms) + text) + end


def prompt_format(tokenizer: Any, eos_token_id: Any) -> PromptFormat:
    """The layout for a model's tokenizer: chat when it has a chat template, else plain."""
    def tokenize(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False)

    eos = eos_token_id if isinstance(eos_token_id, (list, tuple)) else [eos_token_id]
    stops = {int(t) for t in eos if t is not None}
    if getattr(tokenizer, "chat_template", None):
        rendered = tokenizer.apply_chat_template(
            [{"role": "system", "content": SYSTEM_INTRO + MEMORY_MARK + SYSTEM_OUTRO},
             {"role": "user", "content": QUESTION_MARK}],
            tokenize=False, add_generation_prompt=True)
        before, _, rest = rendered.partition(MEMORY_MARK)
        between, _, after = rest.partition(QUESTION_MARK)
        if not after or MEMORY_MARK in rest:
            raise ValueError("the chat template does not place the system and user messages")
        end_of_turn = after.split("\n")[0].strip()  # e.g. "<|im_end|>"
        end_id = tokenizer.convert_tokens_to_ids(end_of_turn) if end_of_turn else None
        if isinstance(end_id, int) and end_id != getattr(tokenizer, "unk_token_id", None):
            stops.add(end_id)
        return PromptFormat("chat", tuple(tokenize(before)), frozenset(stops), tokenize,
                            "{when}{text}\n", between + "{question}" + after,
                            end_id if isinstance(end_id, int) else None)
    bos = tokenizer.cls_token_id if tokenizer.bos_token_id is None else tokenizer.bos_token_id
    return PromptFormat("plain", (bos,), frozenset(stops), tokenize, "[memory] {text}\n",
                        "[query] {question}\n[answer]", min(stops) if stops else None)
