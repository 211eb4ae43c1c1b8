"""Segments composition with an anchor line, the exact prefix path a request can ask for
(memory_mode auto), the tiers a prompt's memories were served from, and the teacher-forced
scoring `bench fidelity` uses; on the real built-in model (random weights, real transformers)."""
import dataclasses

import pytest
import torch
from transformers import DynamicCache

from memos_cluster.core.errors import ConfigError
from memos_cluster.tiers.activation.blocks import Budgets
from memos_cluster.tiers.activation.engine import ActivationEngine, GenerateRequest
from memos_cluster.tiers.activation.kvstore import KVStore
from memos_cluster.tiers.activation.select import Probe, choose

from test_activation_engine import BIG, GREEDY, MEMORIES, run

ANCHOR = "Bob noted that nothing happened that day"


def anchored_engine(loaded, tmp_path, ratio=0.0, anchor=ANCHOR, instruction=False):
    model, tokenizer, identity = loaded
    store = KVStore(identity, "cpu", Budgets(BIG, BIG, BIG),
                    tmp_path / f"spill-{ratio}-{instruction}")
    return ActivationEngine(model, tokenizer, store, 4096, compose="segments",
                            recompute_ratio=ratio, anchor=anchor,
                            cache_instruction=instruction), store


def tiers(stats):
    return [(m.memory_id, m.tier) for m in stats.memories]


def test_promotion_builds_both_caches_and_the_opening_memory_is_exact(loaded, tmp_path):
    engine, store = anchored_engine(loaded, tmp_path)
    engine.build(MEMORIES[:3])
    assert len(store._tensors) == 6  # an anchored and a plain cache a memory
    request = GenerateRequest(MEMORIES[:1], "which door was open?", sampling=GREEDY)
    composed = run(engine, request)
    assert composed.generated == run(engine, dataclasses.replace(
        request, use_cache=False)).generated
    assert tiers(composed) == [("m0", "activation")]
    assert composed.prefill_tokens == len(engine._prompt_tail(request))


def test_later_memories_are_moved_from_their_anchored_caches_to_their_places(loaded, tmp_path):
    """Layer 0 depends on token and position only: composed keys there must be a full
    prefill's although each later memory's cache put it after the anchor line (its keys
    moved back by the anchor's length). Every memory is served from activation memory; with
    every composed token recomputed the answer is a full prefill's."""
    model = loaded[0]
    engine, _ = anchored_engine(loaded, tmp_path)
    engine.build(MEMORIES[:3])
    order = MEMORIES[2::-1]
    prepared = engine._composer.compose(model, order, (), (), True, [], lambda n: None)
    tokens = list(engine._head) + [t for m in order for t in engine._memory_tokens(m.text)]
    full = DynamicCache(config=model.config)
    with torch.inference_mode():
        model(input_ids=torch.tensor([tokens]), past_key_values=full, use_cache=True)
    assert torch.allclose(prepared.cache.layers[0].keys, full.layers[0].keys, atol=1e-4)
    assert torch.allclose(prepared.cache.layers[0].values, full.layers[0].values, atol=1e-5)
    assert [tier for _, tier in prepared.served] == ["activation"] * 3
    assert len(prepared.spans) == 2  # the opening memory is exact, never a candidate

    everything, _ = anchored_engine(loaded, tmp_path, ratio=1.0)
    everything.build(MEMORIES[:3])
    request = GenerateRequest(order, "which door was open?", sampling=GREEDY)
    assert run(everything, request).generated == run(everything, dataclasses.replace(
        request, use_cache=False)).generated


def test_the_instruction_is_composed_from_its_own_cache(loaded, tmp_path):
    """With cache_instruction the prompt's fixed instruction after the memories comes from
    its cache (built once, kept), so a hit prefills only the question; recomputing every
    composed token, the instruction's too, still gives a full prefill's answer."""
    engine, _ = anchored_engine(loaded, tmp_path, instruction=True)
    engine.build(MEMORIES[:3])
    request = GenerateRequest(MEMORIES[:3], "which door was open?", sampling=GREEDY)
    tail, fixed = engine._prompt_tail(request), engine.format.instruction()
    assert fixed and tail[:len(fixed)] == list(fixed)
    first, again = run(engine, request), run(engine, request)
    assert first.prefill_tokens == len(tail)  # the instruction's cache was built now
    assert again.prefill_tokens == len(tail) - len(fixed)
    assert tiers(again) == [(m.memory_id, "activation") for m in MEMORIES[:3]]
    assert again.retrieved_from_activation == 3

    everything, _ = anchored_engine(loaded, tmp_path, ratio=1.0, instruction=True)
    everything.build(MEMORIES[:3])
    assert run(everything, request).generated == run(everything, dataclasses.replace(
        request, use_cache=False)).generated


def test_without_a_plain_cache_the_opening_memory_uses_its_anchored_one(loaded, tmp_path):
    model = loaded[0]
    engine, store = anchored_engine(loaded, tmp_path)
    prepared = engine._composer.compose(model, MEMORIES[:2], (), (), True, [], lambda n: None)
    assert len(store._tensors) == 2  # built on the request path: the anchored kind only
    assert len(prepared.spans) == 2  # and then no memory is exact


def test_the_exact_prefix_path_is_a_full_prefill_and_caches_the_prompt(loaded, tmp_path):
    engine, _ = anchored_engine(loaded, tmp_path)
    request = GenerateRequest(MEMORIES[:3], "which door was open?", sampling=GREEDY,
                              compose="prefix")
    first = run(engine, request)
    full = run(engine, dataclasses.replace(request, use_cache=False))
    assert first.generated == full.generated
    assert tiers(first) == [(m.memory_id, "plaintext") for m in MEMORIES[:3]]
    again = run(engine, request)
    assert again.generated == full.generated
    assert tiers(again) == [(m.memory_id, "activation") for m in MEMORIES[:3]]
    assert again.prefill_tokens == len(engine._prompt_tail(request))
    # A longer list reuses the cached one as its prefix: those memories from activation.
    longer = run(engine, dataclasses.replace(request, block=MEMORIES[:4]))
    assert tiers(longer)[:3] == tiers(again) and tiers(longer)[3] == ("m3", "plaintext")


def test_scores_are_the_logits_that_pick_each_token(loaded, tmp_path):
    engine, _ = anchored_engine(loaded, tmp_path)
    request = GenerateRequest(MEMORIES[:3], "which door was open?", sampling=GREEDY,
                              compose="prefix", use_cache=False)
    answer = list(run(engine, request).generated)
    logits = engine.score(request, answer)
    assert logits.shape[0] == len(answer)
    assert logits.argmax(dim=-1).tolist() == answer
    cached = engine.score(dataclasses.replace(request, use_cache=True), answer)
    assert torch.allclose(cached, logits, atol=1e-3)


def test_choose_rules_on_known_signals():
    deviation = torch.tensor([0.0, 5.0, 1.0, 0.0, 4.0, 0.1])
    attention = torch.tensor([0.5, 0.0, 0.1, 0.3, 0.05, 0.05])
    found = Probe(deviation, attention)
    spans = [2, 2, 2]  # three memories of two tokens
    assert choose(found, spans, 2, "deviation") == [1, 4]
    assert choose(found, spans, 2, "attention") == [0, 3]
    assert choose(found, spans, 2, "product") == [2, 4]
    # whole memories, the most attended first: memory 0 (0.5), then memory 1 (0.4) no longer
    # fits in 3 tokens
    assert choose(found, spans, 3, "memory") == [0, 1]
    assert choose(found, spans, 1, "memory") == [0, 1]  # at least one memory
    with pytest.raises(ConfigError, match="recompute_select"):
        choose(found, spans, 2, "loudest")
