"""`memos-cluster bench chat`: multi-turn chat with memory, each turn's prompt reused from the
conversation's cache against a full prefill of the same prompt, in one run on one model.

Conversations are replayed from a LoCoMo conversation held in a cube: the user's messages are
one speaker's lines of a session, every QUESTION_EVERY-th replaced by a question from the
conversation's QA; the assistant's messages are the model's own answers (sent back as they
came, as a chat client does). Retrieval is on: each user message places its top-k memories
before it by the gateway's rule (tiers/activation/conversation.py), over the plaintext tier's
hybrid search of a temporary shard.

For every turn: the prompt's tokens and the share reused from the cache; time to first token
with the cache and with a full prefill of the same prompt (the ratio); whether the greedy
answers are identical; and, after each conversation, the KV store's bytes and what its
budgets did (spills, drops). In-process, as the KV actor runs the engine. Not a test: it
asserts nothing.
"""
from __future__ import annotations

import asyncio
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from memos_cluster.bench.qa import LocomoRetriever
from memos_cluster.core.config import MemosConfig
from memos_cluster.core.tier_types import (
    ChatCall, ChatMessage, ChatRequest, GenerateStats, SamplingParams, TokenEvent,
    block_memory)
from memos_cluster.tiers.activation.conversation import PlacementBook, place

TURN_COUNTS = (5, 10, 20)
QUESTION_EVERY = 3  # every third user message is a question from the conversation's QA
MAX_NEW_TOKENS = 24


def user_messages(sample: dict, session: int, turns: int) -> list[tuple[str, str]]:
    """(speaker, text) of a session's first speaker, with questions mixed in; from later
    sessions when one is too short."""
    conversation, questions = sample["conversation"], [q["question"] for q in sample["qa"]]
    speaker = conversation["speaker_a"]
    lines = [t["text"] for s in range(session, session + 30)
             for t in conversation.get(f"session_{s}", []) if t["speaker"] == speaker]
    out = []
    for i in range(turns):
        if (i + 1) % QUESTION_EVERY == 0:
            out.append((speaker, questions[(session * 7 + i) % len(questions)]))
        else:
            out.append((speaker, lines[i]))
    return out


def _collect(events) -> tuple[str, GenerateStats]:
    text, stats = [], None
    for event in events:
        if isinstance(event, TokenEvent):
            text.append(event.text)
        else:
            stats = event
    return "".join(text), stats


class _Conversations:
    """The engine and the retriever a run shares, and one conversation's replay."""

    def __init__(self, engine: Any, retriever: LocomoRetriever, cube_id: str, top_k: int,
                 max_new_tokens: int):
        self.engine, self.retriever, self.cube_id = engine, retriever, cube_id
        self.top_k, self.book = top_k, PlacementBook()
        self.sampling = SamplingParams(max_new_tokens=max_new_tokens)

    async def _retrieve(self, text: str):
        return list(self.retriever.top(self.cube_id, text, self.top_k))

    async def _current(self, refs):
        items = self.retriever.get(self.cube_id, [memory_id for _, memory_id in refs])
        return {(self.cube_id, m.id): block_memory(m) for m in items}

    def replay(self, turns: Sequence[tuple[str, str]], say: Callable[[str], None]) -> list[dict]:
        messages: list[ChatMessage] = []
        rows = []
        for number, (speaker, text) in enumerate(turns, start=1):
            messages.append(ChatMessage("user", text, speaker))
            call = ChatCall((self.cube_id,), tuple(messages), self.sampling, self.top_k)
            context, _ = asyncio.run(place(call, self.book, self._retrieve, self._current))
            request = ChatRequest(tuple(messages), tuple(context), self.sampling)
            _, full = _collect(self.engine.chat(replace(request, use_cache=False)))
            answer, cached = _collect(self.engine.chat(request))
            messages.append(ChatMessage("assistant", answer))
            rows.append({"turn": number, "prompt_tokens": cached.prompt_tokens,
                         "reused_tokens": cached.prefill_tokens_saved,
                         "reused_share": round(cached.prefill_tokens_saved
                                               / cached.prompt_tokens, 4),
                         "ttft_cached_ms": round(cached.ttft_ms, 1),
                         "ttft_full_ms": round(full.ttft_ms, 1),
                         "ttft_ratio": round(cached.ttft_ms / full.ttft_ms, 4),
                         "identical": cached.generated == full.generated,
                         "memories_placed": len(context[-1])})
            row = rows[-1]
            say(f"  turn {number:>2}: prompt {row['prompt_tokens']:>5} tokens, "
                f"{100 * row['reused_share']:5.1f}% reused; TTFT {row['ttft_cached_ms']:>7.1f} "
                f"vs {row['ttft_full_ms']:>7.1f} ms full ({row['ttft_ratio']:.2f}); identical: "
                f"{row['identical']}")
        return rows


def run_chat_bench(config: MemosConfig, data: str, conversation: str = "conv-26",
                   turn_counts: Sequence[int] = TURN_COUNTS,
                   max_new_tokens: int = MAX_NEW_TOKENS, device: str = "cpu",
                   say: Callable[[str], None] = print,
                   plot: Optional[str] = None) -> dict[str, Any]:
    from memos_cluster.data.locomo import load_locomo
    from memos_cluster.tiers.activation.blocks import Budgets
    from memos_cluster.tiers.activation.engine import ActivationEngine
    from memos_cluster.tiers.activation.kvstore import KVStore
    from memos_cluster.tiers.llm.model import load_causal_lm, resolve_model

    sample = next(s for s in load_locomo(data) if s["sample_id"] == conversation)
    activation = config.activation
    path, identity = resolve_model(activation.model, config.model_cache_dir())
    model, tokenizer = load_causal_lm(path, device)
    with tempfile.TemporaryDirectory(prefix="memos-bench-chat-") as root:
        store = KVStore(identity, device, Budgets(activation.device_budget_bytes,
                                                  activation.host_budget_bytes,
                                                  activation.disk_budget_bytes),
                        Path(root) / "kv")
        engine = ActivationEngine(model, tokenizer, store, min(
            activation.max_prompt_tokens, model.config.max_position_embeddings))
        retriever = LocomoRetriever(config, Path(root))
        try:
            retriever.load(conversation, sample)
            runs = _Conversations(engine, retriever, conversation, activation.retrieval_top_k,
                                  max_new_tokens)
            result = _run_all(runs, sample, turn_counts, store, say)
        finally:
            retriever.close()
    result.update({"model": identity.as_metadata(), "device": device,
                   "conversation": conversation, "max_new_tokens": max_new_tokens,
                   "retrieval_top_k": activation.retrieval_top_k,
                   "budgets": {"device": activation.device_budget_bytes,
                               "host": activation.host_budget_bytes,
                               "disk": activation.disk_budget_bytes}})
    if plot:
        result["plot"] = plot_chat(result, plot)
    return result


def _run_all(runs: _Conversations, sample: dict, turn_counts: Sequence[int], store: Any,
             say: Callable[[str], None]) -> dict[str, Any]:
    conversations = []
    for index, turns in enumerate(turn_counts):
        say(f"conversation of {turns} turns (session {2 * index + 1} on):")
        rows = runs.replay(user_messages(sample, 2 * index + 1, turns), say)
        stats = store.stats()
        conversations.append({"turns": turns, "rows": rows,
                              "cache_bytes_after": sum(stats[f"{t}_bytes"]
                                                       for t in ("device", "host", "disk")),
                              "cache_entries_after": stats["entries"]})
    every = [r for c in conversations for r in c["rows"]]
    at = lambda n: [r for r in every if r["turn"] == n]  # noqa: E731
    stats = store.stats()
    summary = {
        "identical_share": sum(r["identical"] for r in every) / len(every),
        "reused_share_turn3": min((r["reused_share"] for r in at(3)), default=None),
        "reused_share_from_turn10": min((r["reused_share"] for r in every if r["turn"] >= 10),
                                        default=None),
        "ttft_ratio_turn10": max((r["ttft_ratio"] for r in at(10)), default=None),
        "cache_bytes_per_conversation": round(
            conversations[-1]["cache_bytes_after"] / len(conversations)),
        "spills": stats["spills"], "reloads": stats["reloads"], "drops": stats["drops"],
        "superseded": stats["superseded"]}
    say(f"identical answers {100 * summary['identical_share']:.0f}%; reused at turn 3 >= "
        f"{summary['reused_share_turn3']}, from turn 10 >= {summary['reused_share_from_turn10']}"
        f"; TTFT ratio at turn 10 <= {summary['ttft_ratio_turn10']}; "
        f"{summary['cache_bytes_per_conversation'] / 2 ** 20:.1f} MiB of KV a conversation")
    return {"conversations": conversations, "summary": summary}


def plot_chat(result: dict[str, Any], path: str) -> str:
    """Reused share and TTFT ratio by turn, one line per conversation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (share, ratio) = plt.subplots(1, 2, figsize=(10, 4))
    for conversation in result["conversations"]:
        turns = [r["turn"] for r in conversation["rows"]]
        label = f"{conversation['turns']} turns"
        share.plot(turns, [100 * r["reused_share"] for r in conversation["rows"]], marker="o",
                   label=label)
        ratio.plot(turns, [r["ttft_ratio"] for r in conversation["rows"]], marker="o",
                   label=label)
    share.set(xlabel="turn", ylabel="prompt tokens reused (%)", ylim=(0, 100),
              title="reused from the conversation's cache")
    ratio.set(xlabel="turn", ylabel="TTFT cached / full prefill", ylim=(0, None),
              title="time to first token")
    for axes in (share, ratio):
        axes.grid(alpha=0.3)
        axes.legend()
    figure.suptitle(f"bench chat: {result['model'].get('model_id', '')} on {result['device']}")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
