"""Segments composition on the real built-in model: each memory cached on its own, composed into
any prompt with RoPE positions fixed, reused across prompts, never mutated."""
import dataclasses
import math

import pytest
import torch
from transformers import (
    DynamicCache, GPT2Config, GPT2LMHeadModel, MistralConfig, MistralForCausalLM)

from memos_cluster.core.errors import ConfigError, FailedPrecondition
from memos_cluster.core.tier_types import BlockMemory
from memos_cluster.tiers.activation.blocks import Budgets
from memos_cluster.tiers.activation.compose import (
    RopeShift, append_pieces, prefill_recomputing, segment_piece)
from memos_cluster.tiers.activation.select import probe
from memos_cluster.tiers.activation.engine import ActivationEngine, GenerateRequest
from memos_cluster.tiers.activation.kvstore import KVStore, cache_layers

from test_activation_engine import BIG, GREEDY, MEMORIES, make_engine, on_gpu, run


def prefill(model, tokens, cache):
    with torch.inference_mode():
        model(input_ids=torch.tensor([tokens]), past_key_values=cache, use_cache=True)
    return cache


def test_shifted_keys_are_exactly_where_a_full_prefill_puts_them(loaded):
    """Layer 0 sees no other token's state, so its keys and values depend on token and position
    only: composed segments must match a full prefill there, and do so only when shifted."""
    model, tokenizer, _ = loaded
    bos = tokenizer.cls_token_id
    texts = [tokenizer.encode(m.text, add_special_tokens=False) for m in MEMORIES[:4]]
    full = prefill(model, [bos] + sum(texts, []), DynamicCache(config=model.config))
    rope = RopeShift(model)
    for shift in (True, False):
        composed, pieces, length = DynamicCache(config=model.config), [], 0
        for i, ids in enumerate(texts):
            layers = cache_layers(prefill(model, [bos] + ids, DynamicCache(config=model.config)))
            start = 0 if i == 0 else 1
            delta = length - 1 if i and shift else 0
            pieces.append(segment_piece(layers, start, delta))
            length += len(ids) + (1 if i == 0 else 0)
        append_pieces(composed, pieces, rope)  # one concatenation per layer, as the engine does
        keys, values = composed.layers[0].keys, composed.layers[0].values
        assert keys.shape == full.layers[0].keys.shape
        assert torch.equal(values, full.layers[0].values)
        close = torch.allclose(keys, full.layers[0].keys, atol=1e-4)
        assert close is shift, "unshifted concatenation gives the wrong positions"


def test_one_memory_composed_generates_what_a_full_prefill_does(loaded, tmp_path):
    engine, _ = make_engine(loaded, tmp_path, compose="segments")
    engine.build(MEMORIES[:1])
    request = GenerateRequest(MEMORIES[:1], "which door was open?", sampling=GREEDY)
    cached, full = run(engine, request), run(engine, dataclasses.replace(request,
                                                                         use_cache=False))
    assert cached.generated == full.generated and len(set(full.generated)) > 3
    assert cached.prefill_tokens_saved > 10 and full.prefill_tokens_saved == 0


def test_segments_are_built_once_and_composed_into_any_prompt(loaded, tmp_path):
    engine, store = make_engine(loaded, tmp_path, compose="segments")
    first = engine.build(MEMORIES[:3])
    assert first.prefill_tokens == first.num_tokens > 30 and first.reused_tokens == 0
    grown = engine.build(MEMORIES[:4])  # only the new memory is prefilled
    assert grown.reused_tokens == first.num_tokens
    assert grown.prefill_tokens == grown.num_tokens - first.num_tokens
    assert store.stats()["entries"] == 4
    # Any subset, in any order, is composed from the same caches: the prompt is the
    # memories' tokens plus the query, and only the query is prefilled.
    query = "which door was open?"
    request = GenerateRequest((MEMORIES[3], MEMORIES[0]), query, sampling=GREEDY)
    stats = run(engine, request)
    assert stats.retrieved_from_activation == 2 and len(stats.caches_used) == 2
    assert stats.prefill_tokens == len(engine._prompt_tail(request))
    assert stats.prompt_tokens == stats.prefill_tokens + stats.prefill_tokens_saved
    assert stats.prompt_tokens == run(engine, dataclasses.replace(
        request, use_cache=False)).prompt_tokens


def test_uncached_memories_are_prefilled_in_place_and_not_kept(loaded, tmp_path):
    engine, store = make_engine(loaded, tmp_path, compose="segments")
    engine.build(MEMORIES[:2])
    changed = dataclasses.replace(MEMORIES[1], version=2, text="Alice painted the mill door")
    other = BlockMemory("alice", "x9", 1, "Alice keeps a spare key under the mat")
    # A retrieved memory with no cache is prefilled between the cached ones, not kept.
    stats = run(engine, GenerateRequest((MEMORIES[0],), "where is the key?", (other, changed),
                                        sampling=GREEDY))
    assert stats.retrieved_from_activation == 1 and store.stats()["entries"] == 2
    # A block memory with no cache (a new version) is built and kept for later requests.
    built = run(engine, GenerateRequest((MEMORIES[0], changed), "who painted?", sampling=GREEDY))
    assert built.retrieved_from_activation == 1 and store.stats()["entries"] == 3
    again = run(engine, GenerateRequest((MEMORIES[0], changed), "who painted?", sampling=GREEDY))
    assert again.retrieved_from_activation == 2 and again.generated == built.generated
    # A memory built now is not counted as saved, its BOS included.
    fresh = dataclasses.replace(MEMORIES[1], version=3, text="Alice sold the mill")
    first_built = run(engine, GenerateRequest((fresh, MEMORIES[0]), "who sold?",
                                              sampling=GREEDY))
    assert first_built.prefill_tokens_saved == len(engine._memory_tokens(MEMORIES[0].text))
    assert store.stats()["entries"] == 4
    assert store.invalidate("alice", ["m1"]) == 3 and store.stats()["entries"] == 1


def test_requests_never_mutate_stored_segments(loaded, tmp_path):
    engine, store = make_engine(loaded, tmp_path, compose="segments")
    engine.build(MEMORIES[:3])
    before = {cid: [(k.clone(), v.clone()) for k, v in layers]
              for cid, layers in store._tensors.items()}
    run(engine, GenerateRequest(MEMORIES[2::-1], "a long question " * 20, sampling=GREEDY))
    for cid, layers in store._tensors.items():
        assert all(torch.equal(k, k0) and torch.equal(v, v0)
                   for (k, v), (k0, v0) in zip(layers, before[cid]))


def test_compositions_refuse_models_they_cannot_serve(loaded, tmp_path):
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64))
    with pytest.raises(ConfigError, match="activation.compose"):
        RopeShift(gpt2)
    # Sliding-window attention keeps only the window in its cache: no stored prefix blocks.
    mistral = MistralForCausalLM(MistralConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, sliding_window=16))
    _, tokenizer, identity = loaded
    store = KVStore(identity, "cpu", Budgets(BIG, BIG, BIG), tmp_path / "spill")
    with pytest.raises(ConfigError, match="sliding-window"):
        ActivationEngine(mistral, tokenizer, store, 4096, compose="prefix")
    assert ActivationEngine(mistral, tokenizer, store, 4096, compose="segments")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU (CI has none)")
def test_segments_on_the_gpu(loaded, tmp_path):
    with on_gpu(loaded, tmp_path, compose="segments") as (engine, store):
        engine.build(MEMORIES[:3])
        request = GenerateRequest(MEMORIES[:1], "which door was open?", sampling=GREEDY)
        assert run(engine, request).generated == run(
            engine, dataclasses.replace(request, use_cache=False)).generated
        composed = run(engine, GenerateRequest(MEMORIES[2::-1], "which door?", sampling=GREEDY))
        assert composed.retrieved_from_activation == 3
        assert all(k.is_cuda for layers in store._tensors.values() for k, _ in layers)


def recomputing_engine(loaded, tmp_path, ratio):
    model, tokenizer, identity = loaded
    store = KVStore(identity, "cpu", Budgets(BIG, BIG, BIG), tmp_path / f"spill-{ratio}")
    return ActivationEngine(model, tokenizer, store, 4096, compose="segments",
                            recompute_ratio=ratio), store


def test_recomputing_every_composed_token_generates_what_a_full_prefill_does(loaded, tmp_path):
    engine, _ = recomputing_engine(loaded, tmp_path, 1.0)
    engine.build(MEMORIES[:4])
    request = GenerateRequest(MEMORIES[3::-1], "which door was open?", sampling=GREEDY)
    composed = run(engine, request)
    assert composed.generated == run(engine, dataclasses.replace(
        request, use_cache=False)).generated
    # Every memory after the first is prefilled again with the question; the first (with the
    # head) saw nothing it should have: it stays saved.
    first = len(engine._memory_tokens(MEMORIES[3].text)) + len(engine._head)
    assert composed.prefill_tokens_saved == first
    assert composed.prefill_tokens == composed.prompt_tokens - first


def test_a_recompute_share_rewrites_that_many_tokens_and_never_the_store(loaded, tmp_path):
    engine, store = recomputing_engine(loaded, tmp_path, 0.25)
    engine.build(MEMORIES[:3])
    before = {cid: [(k.clone(), v.clone()) for k, v in layers]
              for cid, layers in store._tensors.items()}
    request = GenerateRequest(MEMORIES[:3], "which door was open?", sampling=GREEDY)
    stats = run(engine, request)
    later = sum(len(engine._memory_tokens(m.text)) for m in MEMORIES[1:3])
    assert stats.prefill_tokens == len(engine._prompt_tail(request)) + math.ceil(0.25 * later)
    for cid, layers in store._tensors.items():
        assert all(torch.equal(k, k0) and torch.equal(v, v0)
                   for (k, v), (k0, v0) in zip(layers, before[cid]))


def test_deviation_marks_the_memories_that_never_saw_the_ones_before(loaded, tmp_path):
    """A composed cache's first memory (after the shared head) is exactly a full prefill's, so
    its tokens deviate by rounding only; later memories' tokens deviate at layer 1."""
    model, _, _ = loaded
    engine, _ = recomputing_engine(loaded, tmp_path, 0.0)
    engine.build(MEMORIES[:3])
    prepared = engine._composer.compose(model, MEMORIES[:3], (), (), True, [], lambda n: None)
    first = len(engine._head) + len(engine._memory_tokens(MEMORIES[0].text))
    length = prepared.cache.get_seq_length()
    tokens = list(engine._head) + [t for m in MEMORIES[:3] for t in engine._memory_tokens(m.text)]
    question = engine._prompt_tail(GenerateRequest((), "which door?"))
    before = [(k.clone(), v.clone()) for k, v in cache_layers(prepared.cache)]
    found = probe(model, model, RopeShift(model), prepared.cache, tokens, list(range(length)),
                  question, len(question))
    deviation = found.deviation
    assert float(deviation[:first].max()) < 1e-6 < float(deviation[first:].max())
    # The question's attention over the composed tokens is a distribution, and the probe
    # leaves the cache as it found it: the question's entries cut from the layer it reached,
    # layer 0 rewritten with what it held (exact there, up to rounding), the rest untouched.
    assert found.attention.shape == deviation.shape
    assert abs(float(found.attention.sum()) - 1) < 1e-4 and float(found.attention.min()) >= 0
    after = cache_layers(prepared.cache)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(after[0], before[0]))
    assert all(torch.equal(k, k0) and torch.equal(v, v0)
               for (k, v), (k0, v0) in zip(after[1:], before[1:]))
    with pytest.raises(FailedPrecondition):
        prefill_recomputing(model, prepared.cache, tokens[:2], [3, 2], [1])
    with pytest.raises(FailedPrecondition):
        probe(model, model, RopeShift(model), prepared.cache, tokens[:1], [length], [1], 1)
