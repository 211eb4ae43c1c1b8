"""Activation memory through the gateway (Generate over every transport, cache mechanics over
gRPC): promote memories into a cube's KV cache, stream Generate over it, and keep it consistent
with plaintext updates and deletes.
(Token-for-token exactness against a full prefill is asserted in tests/unit on the same engine.)"""
import math

import pytest

from memos_cluster.core.config import MemosConfig
from memos_cluster.core.errors import InvalidArgument, NotFound
from memos_cluster.core.tier_types import GenerateStats, TokenEvent
from memos_cluster.core.types import NewMemory

NOTES = [NewMemory(f"Day {i}: the {colour} lantern was lit in the {place}", id=f"n{i}")
         for i, (colour, place) in enumerate([("red", "tower"), ("blue", "cellar"),
                                              ("green", "garden"), ("amber", "attic"),
                                              ("violet", "stable"), ("silver", "dock")])]


def generate(client, cube, query="which lantern was lit?", **kw):
    events = list(client.generate(cube, query, max_new_tokens=kw.pop("max_new_tokens", 6), **kw))
    tokens = [e for e in events if isinstance(e, TokenEvent)]
    (stats,) = [e for e in events if isinstance(e, GenerateStats)]
    assert events[-1] is stats and len(tokens) == stats.num_generated
    return [t.token_id for t in tokens], stats


def test_activate_then_generate_reuses_the_block(client, cube):
    client.add(cube, NOTES)
    first = client.activate(cube, ["n0", "n1", "n2"])
    assert first.prefill_tokens == first.num_tokens > 20 and first.reused_tokens == 0
    grown = client.activate(cube, ["n3"])  # appended: only n3 is prefilled
    assert grown.reused_tokens == first.num_tokens
    assert grown.prefill_tokens == grown.num_tokens - first.num_tokens > 0

    tokens, stats = generate(client, cube)
    # The block's first memory (with the prompt's head) is reused as it is; of the others,
    # the configured share of tokens (none by default) is recomputed with the question. (The
    # prompt's instruction may come from its own cache too, built by an earlier request.)
    ratio = MemosConfig().activation.recompute_ratio
    assert stats.prefill_tokens_saved >= grown.num_tokens - math.ceil(ratio * grown.num_tokens)
    assert stats.caches_used and stats.ttft_ms > 0
    again, _ = generate(client, cube)
    assert again == tokens  # greedy and deterministic
    _, plain = generate(client, cube, use_activation_memory=False)
    assert plain.prefill_tokens_saved == 0 and plain.prompt_tokens < stats.prompt_tokens


@pytest.mark.parametrize("client", ["grpc"], indirect=True)  # mechanics: one transport
def test_plaintext_changes_invalidate_the_block(client, cube):
    client.add(cube, NOTES)
    built = client.activate(cube, ["n0", "n1", "n2", "n3"])
    client.update(cube, "n2", "Day 2: the lantern in the garden was broken")
    _, stats = generate(client, cube)
    # n0 and n1 are still valid: reused; n2 (new version) and n3 were prefilled again.
    assert 0 < stats.prefill_tokens_saved < built.num_tokens
    client.delete(cube, ["n0"])
    _, after_delete = generate(client, cube)
    assert after_delete.prompt_tokens < stats.prompt_tokens  # n0 left the block


@pytest.mark.parametrize("client", ["grpc"], indirect=True)  # mechanics: one transport
def test_retrieved_memories_join_the_prompt(client, cube):
    client.add(cube, NOTES)
    _, bare = generate(client, cube, use_activation_memory=False)
    _, retrieved = generate(client, cube, "where was the silver lantern?",
                            use_activation_memory=False, use_retrieved_memories=True,
                            retrieval_top_k=2)
    assert retrieved.prompt_tokens > bare.prompt_tokens + 10


def test_generate_errors_are_statuses(client, cube):
    with pytest.raises(NotFound):
        generate(client, "no-such-cube-for-generate")
    with pytest.raises(InvalidArgument, match="max_new_tokens"):
        generate(client, cube, max_new_tokens=100_000)
    with pytest.raises(InvalidArgument, match="query"):
        generate(client, cube, query="")
    with pytest.raises(NotFound, match="memories"):
        client.activate(cube, ["never-added"])


def test_auto_mode_is_a_full_prefill_that_reuses_its_own_prompt(client, cube):
    """memory_mode auto retrieves, answers as a full prefill of the retrieved memories does,
    and serves the same memories from activation memory when they come back; the stats say
    which tier served each memory."""
    client.add(cube, NOTES)
    question = "which lantern was lit in the garden?"
    tokens, first = generate(client, cube, question, memory_mode="auto")
    plain, full = generate(client, cube, question, use_activation_memory=False,
                           use_retrieved_memories=True)
    assert tokens == plain and first.prompt_tokens == full.prompt_tokens
    assert len(first.memories) == MemosConfig().activation.retrieval_top_k
    assert all(m.tier == "plaintext" and m.cube_id == cube for m in first.memories)
    again, second = generate(client, cube, question, memory_mode="auto")
    assert again == tokens
    assert [m.memory_id for m in second.memories] == [m.memory_id for m in first.memories]
    assert all(m.tier == "activation" for m in second.memories)
    assert second.prefill_tokens < first.prefill_tokens
    assert second.retrieved_from_activation == len(second.memories)
    with pytest.raises(InvalidArgument, match="memory_mode"):
        generate(client, cube, question, memory_mode="fastest")
