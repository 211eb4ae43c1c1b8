"""Activation memory on the real built-in model (random weights, real transformers): reuse is
exact, incremental, never mutates a stored cache, and spills and reloads with its identity."""
import contextlib
import dataclasses
from pathlib import Path

import pytest
import torch

from memos_cluster.core.errors import FailedPrecondition, InvalidArgument
from memos_cluster.core.tier_types import BlockMemory, GenerateStats, SamplingParams, TokenEvent
from memos_cluster.tiers.activation.blocks import Budgets
from memos_cluster.tiers.activation.engine import ActivationEngine, GenerateRequest
from memos_cluster.tiers.activation.kvstore import KVStore, load_spilled
from memos_cluster.tiers.llm.model import resolve_model

BIG = 1 << 32
MEMORIES = tuple(BlockMemory("alice", f"m{i}", 1, f"Alice noted on day {i} that the {colour} "
                             f"door of the {place} was open")
                 for i, (colour, place) in enumerate(
                     [("red", "barn"), ("blue", "mill"), ("green", "school"), ("grey", "bakery"),
                      ("white", "chapel"), ("black", "forge"), ("pink", "harbour"),
                      ("brown", "station")] * 3))
GREEDY = SamplingParams(max_new_tokens=12)


def make_engine(loaded, tmp_path, budgets=Budgets(BIG, BIG, BIG), compose="prefix",
                device="cpu"):
    model, tokenizer, identity = loaded
    store = KVStore(identity, device, budgets, tmp_path / "spill")
    return ActivationEngine(model, tokenizer, store, 4096, compose=compose), store


@contextlib.contextmanager
def on_gpu(loaded, tmp_path, compose="prefix"):
    """An engine and its store on the GPU; the shared model goes back to the CPU after."""
    model = loaded[0]
    model.to("cuda")
    try:
        yield make_engine(loaded, tmp_path, compose=compose, device="cuda")
    finally:
        model.to("cpu")


def run(engine, request):
    events = list(engine.generate(request))
    tokens = [e.token_id for e in events if isinstance(e, TokenEvent)]
    stats = events[-1]
    assert isinstance(stats, GenerateStats) and list(stats.generated) == tokens
    return stats


def test_reused_cache_generates_exactly_what_a_full_prefill_does(loaded, tmp_path):
    engine, _ = make_engine(loaded, tmp_path)
    full = run(engine, GenerateRequest(MEMORIES[:12], "which door was open?", sampling=GREEDY,
                                       use_cache=False))
    first = run(engine, GenerateRequest(MEMORIES[:12], "which door was open?", sampling=GREEDY))
    again = run(engine, GenerateRequest(MEMORIES[:12], "which door was open?", sampling=GREEDY))
    assert full.generated == first.generated == again.generated
    assert len(set(full.generated)) > 3  # varied output, so the comparison means something
    assert again.prefill_tokens_saved == again.prompt_tokens - again.prefill_tokens > 100
    assert again.caches_used and not full.caches_used
    # A different query over the same block gives different text from the same cache.
    other = run(engine, GenerateRequest(MEMORIES[:12], "who is alice?", sampling=GREEDY))
    assert other.generated != again.generated and other.caches_used == again.caches_used


def test_appending_prefills_only_the_new_memories(loaded, tmp_path):
    engine, store = make_engine(loaded, tmp_path)
    base = engine.build(MEMORIES[:8])
    grown = engine.build(MEMORIES[:10])
    _, tokens_8 = engine.segments(MEMORIES[:8])
    assert grown.reused_tokens == len(tokens_8) == base.num_tokens
    assert grown.prefill_tokens == grown.num_tokens - base.num_tokens
    request = GenerateRequest(MEMORIES[:10], "what was open on day 9?", sampling=GREEDY)
    assert run(engine, request).generated == run(
        engine, dataclasses.replace(request, use_cache=False)).generated


def test_a_changed_memory_reuses_the_prefix_before_it(loaded, tmp_path):
    engine, store = make_engine(loaded, tmp_path)
    engine.build(MEMORIES[:10])
    changed = list(MEMORIES[:10])
    changed[6] = dataclasses.replace(changed[6], version=2, text="Alice painted the forge door")
    rebuilt = engine.build(changed)
    _, prefix = engine.segments(MEMORIES[:6])
    assert rebuilt.reused_tokens == len(prefix)
    request = GenerateRequest(tuple(changed), "what did alice paint?", sampling=GREEDY)
    assert run(engine, request).generated == run(
        engine, dataclasses.replace(request, use_cache=False)).generated
    # Invalidation cuts every cache holding any version of m6 back to the prefix before it.
    assert store.invalidate("alice", ["m6"]) == 2
    assert store.stats()["entries"] == 1  # the two cut-down prefixes are the same block
    again = engine.build(changed)
    assert again.reused_tokens == len(prefix)
    assert store.invalidate("alice", ["m0"]) == 2 and store.stats()["entries"] == 0


def test_requests_never_mutate_the_stored_cache(loaded, tmp_path):
    engine, store = make_engine(loaded, tmp_path)
    engine.build(MEMORIES[:6])
    (layers,) = store._tensors.values()
    before = [(k.clone(), v.clone()) for k, v in layers]
    run(engine, GenerateRequest(MEMORIES[:6], "a long question " * 20, sampling=GREEDY))
    (after,) = store._tensors.values()
    assert all(torch.equal(k, k0) and torch.equal(v, v0)
               for (k, v), (k0, v0) in zip(after, before))


def test_spill_to_host_and_disk_then_reload_identically(loaded, tmp_path):
    engine, store = make_engine(loaded, tmp_path, Budgets(device_bytes=0, host_bytes=0,
                                                          disk_bytes=BIG))
    request = GenerateRequest(MEMORIES[:8], "which door?", sampling=GREEDY)
    reference = run(engine, dataclasses.replace(request, use_cache=False))
    run(engine, request)  # builds, then spills on release: budgets are zero
    assert store.stats()["spills"] == 1 and store.stats()["disk_bytes"] > 0
    reused = run(engine, request)  # reloads from safetensors
    assert store.stats()["reloads"] == 1
    assert reused.generated == reference.generated and reused.prefill_tokens_saved > 0


def test_a_spilled_cache_is_refused_by_another_model(loaded, tmp_path):
    engine, store = make_engine(loaded, tmp_path, Budgets(0, 0, BIG))
    engine.build(MEMORIES[:3])
    (path,) = (tmp_path / "spill").glob("*.safetensors")
    identity = store.identity
    segments, layers = load_spilled(path, identity, "cpu")
    assert [s.key.memory_id for s in segments] == ["m0", "m1", "m2"]
    other = dataclasses.replace(identity, revision="0123456789abcdef")
    with pytest.raises(FailedPrecondition, match="refusing"):
        load_spilled(path, other, "cpu")


def test_sampling_is_seeded_and_prompt_length_is_checked(loaded, tmp_path):
    engine, _ = make_engine(loaded, tmp_path)
    sampled = SamplingParams(max_new_tokens=8, temperature=0.9, top_p=0.9, seed=7)
    request = GenerateRequest(MEMORIES[:4], "tell me", sampling=sampled)
    assert run(engine, request).generated == run(engine, request).generated
    with pytest.raises(InvalidArgument, match="max_new_tokens"):
        list(engine.generate(GenerateRequest((), "x", sampling=SamplingParams(
            max_new_tokens=5000))))


def test_builtin_model_is_created_once_and_identical_everywhere(tmp_path, loaded):
    first = resolve_model("builtin:tiny-llama", tmp_path)
    again = resolve_model("builtin:tiny-llama", tmp_path)
    assert first == again and Path(first[0]).is_dir()
    # Built separately (another node, another time): the same weights, the same identity.
    assert first[1] == loaded[2]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU (CI has none)")
def test_exact_reuse_on_the_gpu(loaded, tmp_path):
    with on_gpu(loaded, tmp_path) as (engine, store):
        request = GenerateRequest(MEMORIES[:12], "which door was open?", sampling=GREEDY)
        full = run(engine, dataclasses.replace(request, use_cache=False))
        run(engine, request)
        reused = run(engine, request)
        assert reused.generated == full.generated and reused.prefill_tokens_saved > 100
        (layers,) = store._tensors.values()
        assert layers[0][0].is_cuda
