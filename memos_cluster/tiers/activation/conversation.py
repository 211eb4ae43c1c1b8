"""A chat turn at the gateway: which memories go before each user message, the KV actor's answer,
and the turn remembered (docs/chat.md).

Placement rule: the memories retrieved for a user message (its text as the query, the cubes'
hybrid search) go just before it, except those already placed earlier in the conversation.
The gateway records, per conversation prefix (a hash of the cubes and the messages up to that
user message), which memories it placed, so later turns place the same ones at the same place
and the prompt stays a prefix of the next. A prefix the record does not know (a restart, an
eviction, another gateway replica, a client that edited history) is placed again by the same
rule; the answer is then exactly a full prefill's of the prompt it used, which may differ from
the first time if the cubes changed. Placed memories are read at their current version, as
Generate reads its block; a deleted one leaves the prompt.

Remembering: the new user message and the answer are added to the first cube, each as
"<speaker>: <text>" (the message's name, else "User" / "Assistant") at the request's time,
through AddMemories' write path (and so the memory reader), unless the message is a question
(turn_memories says why). Their ids are a hash of the conversation up to the user message, so
a retried request finds them stored and stores nothing twice.

Who uses it: `ActivationService.chat` (service.py), on the gateway.
"""
from __future__ import annotations

import hashlib
import json
from typing import Awaitable, Callable, Optional, Sequence

from memos_cluster.core.errors import AlreadyExists
from memos_cluster.core.tier_types import BlockMemory, ChatCall, ChatMessage
from memos_cluster.core.types import NewMemory
from memos_cluster.tiers.activation.lru import LruMap

PLACEMENTS_KEPT = 20000  # conversation prefixes whose placed memories the gateway remembers
Retrieve = Callable[[str], Awaitable[list[BlockMemory]]]  # a user message -> ranked memories
Current = Callable[[Sequence[tuple[str, str]]], Awaitable[dict[tuple[str, str], BlockMemory]]]


def prefix_keys(cube_ids: Sequence[str], messages: Sequence[ChatMessage]) -> list[str]:
    """The hashes naming the conversation up to (and with) each of its messages: a chain,
    each the hash of the one before and the message, so all of them cost one pass."""
    key = hashlib.sha256(json.dumps(list(cube_ids)).encode()).hexdigest()
    keys = []
    for m in messages:
        body = json.dumps([key, m.role, m.name, m.content], ensure_ascii=False,
                          separators=(",", ":"))
        key = hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()
        keys.append(key)
    return keys


class PlacementBook(LruMap[str, tuple[tuple[str, str], ...]]):
    """Conversation prefix (prefix_keys) -> the memories (cube, id) placed before its last
    user message; oldest out past `capacity`."""

    def __init__(self, capacity: int = PLACEMENTS_KEPT):
        super().__init__(capacity)


async def place(call: ChatCall, book: PlacementBook, retrieve: Retrieve,
                current: Current) -> tuple[list[tuple[BlockMemory, ...]], list[BlockMemory]]:
    """The memories before each message (empty for all but user messages), at their current
    versions; and the ones placed for the last message (its new retrieval)."""
    keys = prefix_keys(call.cube_ids, call.messages)
    placed: list[tuple[tuple[str, str], ...]] = []
    # This conversation's own remembered turns are in it already: never placed again.
    seen: set[tuple[str, str]] = {(call.cube_ids[0], memory_id)
                                  for memory_id in own_turn_ids(call, keys)}
    fresh: dict[tuple[str, str], BlockMemory] = {}
    for i, message in enumerate(call.messages):
        if message.role != "user":
            placed.append(())
            continue
        key = keys[i]
        ids = book.get(key) if i < len(call.messages) - 1 else None
        if ids is None:  # the last message, or a prefix this gateway does not know
            hits = [m for m in await retrieve(message.content)
                    if (m.cube_id, m.memory_id) not in seen]
            fresh.update({(m.cube_id, m.memory_id): m for m in hits})
            ids = tuple((m.cube_id, m.memory_id) for m in hits)
            book.put(key, tuple(ids))
        placed.append(ids)
        seen.update(ids)
    older = [ref for ids in placed for ref in ids if ref not in fresh]
    found = {**(await current(older) if older else {}), **fresh}
    context = [tuple(found[ref] for ref in ids if ref in found) for ids in placed]
    return context, list(context[-1])


def own_turn_ids(call: ChatCall, keys: Optional[Sequence[str]] = None) -> list[str]:
    """The ids the conversation's earlier turns were remembered as (turn_memories); `keys`:
    its prefix_keys, when the caller has them."""
    keys = keys or prefix_keys(call.cube_ids, call.messages)
    return [f"chat-{key[:24]}-{side}" for message, key in zip(call.messages[:-1], keys)
            if message.role == "user" for side in ("u", "a")]


def is_question(text: str) -> bool:
    """A message that asks rather than tells (ends with a question mark)."""
    return text.rstrip().endswith("?")


def turn_memories(call: ChatCall, answer: str, now_ms: int) -> list[NewMemory]:
    """The new user message and the answer as memories, with ids stable across retries; none
    for a question: a remembered question comes back as the best match for the same question
    later, and the small default model then answers by repeating it (seen with the sample),
    while the answer to it is only the model's guess at what the memories already hold."""
    user = call.messages[-1]
    if is_question(user.content):
        return []
    key = prefix_keys(call.cube_ids, call.messages)[-1][:24]
    return [NewMemory(f"{user.name or 'User'}: {user.content}", id=f"chat-{key}-u",
                      event_time_ms=now_ms, source="chat"),
            NewMemory(f"Assistant: {answer}", id=f"chat-{key}-a", event_time_ms=now_ms,
                      source="chat")]


async def remember(add: Callable[[str, list[NewMemory]], Awaitable[object]], cube_id: str,
                   items: list[NewMemory]) -> tuple[str, ...]:
    """Add the turn's memories one by one; one already stored (a retried request: same id,
    perhaps another answer) is kept as it is. Returns the ids."""
    for item in items:
        try:
            await add(cube_id, [item])
        except AlreadyExists:
            pass  # stored by an earlier attempt of the same request: nothing to add
    return tuple(item.id for item in items if item.id)

