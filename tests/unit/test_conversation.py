"""The gateway's chat bookkeeping (tiers/activation/conversation.py), pure: memories placed
before each user message stay where they were, a forgotten record is rebuilt by the same rule,
a conversation never gets its own remembered turns back, and remembered ids are stable."""
import asyncio

from memos_cluster.core.tier_types import BlockMemory, ChatCall, ChatMessage, SamplingParams
from memos_cluster.tiers.activation.conversation import (
    PlacementBook, own_turn_ids, place, turn_memories)

MEMORIES = {f"m{i}": BlockMemory("c", f"m{i}", 1, f"memory {i}") for i in range(6)}


def retrieve_from(ranked):
    """A search that returns `ranked[text]`, and the queries it was asked."""
    asked = []

    async def retrieve(text):
        asked.append(text)
        return [MEMORIES[i] if i in MEMORIES else BlockMemory("c", i, 1, i)
                for i in ranked[text]]
    return retrieve, asked


async def current(refs):
    return {ref: MEMORIES[ref[1]] for ref in refs if ref[1] in MEMORIES}


def call(*texts):
    messages = []
    for i, text in enumerate(texts):
        messages.append(ChatMessage("user" if i % 2 == 0 else "assistant", text))
    return ChatCall(("c",), tuple(messages), SamplingParams())


def ids(context):
    return [[m.memory_id for m in memories] for memories in context]


def test_placements_stay_and_later_turns_place_only_new_memories():
    book = PlacementBook()
    retrieve, asked = retrieve_from({"a?": ["m0", "m1"], "b?": ["m1", "m2", "m3"]})
    first, _ = asyncio.run(place(call("a?"), book, retrieve, current))
    second, new = asyncio.run(place(call("a?", "yes", "b?"), book, retrieve, current))
    assert ids(first) == [["m0", "m1"]]
    assert ids(second) == [["m0", "m1"], [], ["m2", "m3"]] and ids([new]) == [["m2", "m3"]]
    assert asked == ["a?", "b?"]  # turn 1's placement came from the record
    # Another gateway (an empty record) places the same by the same rule.
    again, _ = asyncio.run(place(call("a?", "yes", "b?"), PlacementBook(), retrieve, current))
    assert ids(again) == ids(second)


def test_a_deleted_memory_leaves_the_prompt_and_own_turns_never_come_back():
    book = PlacementBook()
    first = call("I moved to Berlin.")
    own = own_turn_ids(call("I moved to Berlin.", "Nice!", "where do I live?"))
    retrieve, _ = retrieve_from({"I moved to Berlin.": ["m0", "gone"],
                                 "where do I live?": [own[0], "m4"]})
    context, _ = asyncio.run(place(first, book, retrieve, current))
    assert ids(context) == [["m0", "gone"]]  # fresh hits are used as found
    later, _ = asyncio.run(place(call("I moved to Berlin.", "Nice!", "where do I live?"), book,
                                 retrieve, current))
    assert ids(later) == [["m0"], [], ["m4"]]  # "gone" is no longer current; own turn skipped


def test_remembered_turns_have_stable_ids_and_questions_are_not_remembered():
    told = call("I moved to Berlin.")
    a, b = turn_memories(told, "Nice!", 1), turn_memories(told, "Lovely!", 2)
    assert [m.id for m in a] == [m.id for m in b] and a[0].text == "User: I moved to Berlin."
    assert a[1].text == "Assistant: Nice!" and {m.source for m in a} == {"chat"}
    assert turn_memories(call("where do I live?"), "Berlin", 1) == []
    assert own_turn_ids(call("I moved to Berlin.", "Nice!", "more?"))[0] == a[0].id
