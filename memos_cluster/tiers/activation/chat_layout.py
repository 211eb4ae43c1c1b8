"""How a chat with memory is laid out in tokens, so that each turn's prompt is a prefix of the
next one's (docs/chat.md).

A conversation is the client's messages, with the memories retrieved for each user message in
a system message just before it ("Context:", the memory lines, the instruction: the layout
Generate's prompt uses, so turn 1 of a chat is exactly Generate's prompt for the question).
A turn's memories stay where they were placed in later turns; later turns place only memories
not already in the conversation. So turn N+1's prompt is turn N's prompt, its answer, the new
memories and the new message.

The prompt is cut into *pieces*, each a run of token ids with a key, which the KV store's
radix tree matches (blocks.py): a memory line is keyed by (cube, memory, version), as in
Generate, and every other piece (a message with the template's text around it, an answer) by
a hash of its token ids. A piece's key thus names its tokens exactly, and a cached prefix of
keys is a cached prefix of tokens: reusing it is the same computation as prefilling it.

The template's own text around each message is cut out of the model's chat template, rendered
around markers: the opening of a conversation's first message, the text between any two roles,
and the opening of the answer. A model without a template uses a plain layout ("[user] ...").

Who uses it: `ActivationEngine.chat` (tiers/activation/chat.py), one per model.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from memos_cluster.core.errors import InvalidArgument
from memos_cluster.core.tier_types import BlockMemory, ChatMessage
from memos_cluster.tiers.activation.blocks import SegmentKey
from memos_cluster.tiers.llm.prompt import SYSTEM_INTRO, SYSTEM_OUTRO

FIRST = "\u2063FIRST\u2063"  # markers: invisible separators, never in a message
SECOND = "\u2063SECOND\u2063"
Render = Callable[[list[dict], bool], str]  # (messages, add_generation_prompt) -> text


@dataclass(frozen=True)
class Piece:
    key: SegmentKey
    tokens: tuple[int, ...]


def text_key(tokens: Sequence[int]) -> SegmentKey:
    """The key of a piece that is not a memory: its token ids' hash."""
    digest = hashlib.sha256(b"".join(t.to_bytes(4, "little") for t in tokens)).hexdigest()
    return SegmentKey("", "chat:" + digest[:32], 0)


class ChatLayout:
    def __init__(self, render: Optional[Render], tokenize: Callable[[str], list[int]],
                 memory_tokens: Callable[[str, Optional[int]], tuple[int, ...]],
                 bos: Sequence[int] = ()):
        """`render`: the tokenizer's chat template (None: the plain layout, after `bos`);
        `memory_tokens`: a memory line's tokens, as Generate's prompt has it."""
        self._render = render
        self._tokenize = tokenize
        self._memory_tokens = memory_tokens
        self._bos = tuple(bos)
        self._texts: dict[tuple, str] = {}

    # ---- the template's text around messages ---------------------------------------------
    def _cut(self, roles: tuple[str, ...], generation: bool) -> str:
        """The text the template puts before the first message (one role), between two
        (two roles), or after a user message when the answer opens (generation)."""
        key = (roles, generation)
        if key not in self._texts:
            self._texts[key] = self._template_text(roles, generation)
        return self._texts[key]

    def _template_text(self, roles: tuple[str, ...], generation: bool) -> str:
        if self._render is None:  # the plain layout
            if generation:
                return "\n[assistant] "
            return f"[{roles[0]}] " if len(roles) == 1 else f"\n[{roles[1]}] "
        marks = [FIRST, SECOND][:len(roles)]
        try:
            text = self._render([{"role": r, "content": m} for r, m in zip(roles, marks)],
                                generation)
        except Exception as error:  # noqa: BLE001 -- jinja's errors: the template refuses
            raise InvalidArgument(f"the model's chat template does not allow the messages "
                                  f"{' then '.join(roles)}: {error}", "messages") from error
        if generation:
            return text.partition(FIRST)[2]
        before, _, rest = text.partition(FIRST)
        return before if len(roles) == 1 else rest.partition(SECOND)[0]

    def opening(self, role: str) -> str:
        return self._cut((role,), False)

    def between(self, before: str, after: str) -> str:
        return self._cut((before, after), False)

    def answer_opening(self) -> str:
        return self._cut(("user",), True)

    # ---- pieces ---------------------------------------------------------------------------
    def _piece(self, text: str, lead: tuple[int, ...] = ()) -> Piece:
        tokens = lead + tuple(self._tokenize(text))
        return Piece(text_key(tokens), tokens)

    def pieces(self, messages: Sequence[ChatMessage],
               context: Sequence[Sequence[BlockMemory]],
               answers: Callable[[str], Optional[tuple[int, ...]]]) -> list[Piece]:
        """The prompt's pieces: `context[i]` is the memories placed before messages[i] (a user
        message; empty for none), `answers(text)` the token ids the model generated for an
        assistant message's text, when it did (else the text is tokenized). Ends with the
        answer's opening."""
        if not messages or messages[-1].role != "user":
            raise InvalidArgument("the last message must be the user's", "messages")
        out: list[Piece] = []
        previous = ""
        for message, memories in zip(messages, context):
            if memories:
                out.append(self._glue(previous, "system", SYSTEM_INTRO, not out))
                out += [Piece(SegmentKey(m.cube_id, m.memory_id, m.version),
                              tuple(self._memory_tokens(m.text, m.event_time_ms)))
                        for m in memories]
                text = SYSTEM_OUTRO + self.between("system", message.role) + message.content
                out.append(self._piece(text))
            elif message.role == "assistant":
                out.append(self._glue(previous, "assistant", "", not out))
                given = answers(message.content)
                out.append(Piece(text_key(given), given) if given is not None
                           else self._piece(message.content))
            else:
                out.append(self._glue(previous, message.role, message.content, not out))
            previous = message.role
        # The answer's opening is its own piece, as an assistant message's opening is, so a
        # kept answer continues the same path when it comes back as a message.
        out.append(self._piece(self.answer_opening()))
        return out

    def _glue(self, previous: str, role: str, content: str, first: bool) -> Piece:
        """A message's piece: the template's text before it, then its content."""
        if first:
            return self._piece(self.opening(role) + content, self._bos)
        if previous == "user" and role == "assistant":
            # The same text as the answer's opening when the template opens answers alike.
            return self._piece(self.answer_opening() + content)
        return self._piece(self.between(previous, role) + content)


def chat_layout(tokenizer: Any, tokenize: Callable[[str], list[int]],
                memory_tokens: Callable[[str, Optional[int]], tuple[int, ...]],
                plain_bos: Sequence[int]) -> ChatLayout:
    """The layout for a model's tokenizer: its chat template's when it has one."""
    if getattr(tokenizer, "chat_template", None):
        def render(messages: list[dict], generation: bool) -> str:
            return tokenizer.apply_chat_template(messages, tokenize=False,
                                                 add_generation_prompt=generation)
        return ChatLayout(render, tokenize, memory_tokens)
    return ChatLayout(None, tokenize, memory_tokens, plain_bos)
