"""Parametric memory on the real built-in model and real peft: training lowers the loss on exactly
the trained memories, adapters reload with identical logits, are refused by another base, and
failed or cancelled runs leave the previous adapter in place."""
import dataclasses
import threading

import pytest
import torch

from memos_cluster.core.errors import FailedPrecondition, NotFound
from memos_cluster.core.tier_types import BlockMemory, check_base
from memos_cluster.tiers.llm.model import load_causal_lm, resolve_model
from memos_cluster.tiers.parametric.store import AdapterStore
from memos_cluster.tiers.parametric.trainer import AdapterTrainer
from memos_cluster.tiers.parametric.training import LoraSpec, mean_token_loss

TRAINED = [BlockMemory("bob", f"t{i}", 1, text) for i, text in enumerate([
    "Bob keeps his bicycle in the shed behind the bakery",
    "Bob's sister Ana teaches chemistry at the night school",
    "On Fridays Bob plays chess with the harbour master",
    "Bob is allergic to walnuts and carries a pen injector",
    "The band Bob joined rehearses in an old tram depot",
    "Bob planted three pear trees along the north fence",
])]
HELD_OUT = ["Grace repaired the lighthouse lamp in early spring",
            "The ferry to the islands leaves at seven every morning"]
SPEC = LoraSpec(rank=8, alpha=16, steps=40, batch_size=4, learning_rate=5e-3)
TIMEOUT_S = 300


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    path, identity = resolve_model("builtin:tiny-llama", tmp_path_factory.mktemp("models"))
    model, tokenizer = load_causal_lm(path, "cpu")
    return path, model, tokenizer, identity


@pytest.fixture
def trainer(base, tmp_path):
    _, model, tokenizer, identity = base
    store = AdapterStore(str(tmp_path / "adapters"))
    return AdapterTrainer(lambda: (model, tokenizer, identity), store), store


def test_training_lowers_loss_on_exactly_the_trained_memories(base, trainer, tmp_path):
    path, model, tokenizer, identity = base
    runner, store = trainer
    texts = [m.text for m in TRAINED]
    before_trained = mean_token_loss(model, tokenizer, texts)
    before_held = mean_token_loss(model, tokenizer, HELD_OUT)
    job = runner.wait(runner.start("bob", TRAINED, SPEC).job_id, TIMEOUT_S)
    assert job.status == "succeeded", job.error
    assert job.step == SPEC.steps and job.version == 1
    # The base model is plain again after the run.
    assert mean_token_loss(model, tokenizer, texts) == pytest.approx(before_trained, rel=1e-5)

    record = store.current("bob")
    assert record.memories == tuple((m.memory_id, 1) for m in TRAINED)
    assert record.base == identity.as_metadata()
    assert record.metrics["adapter_loss"] < 0.5 * record.metrics["base_loss"]
    assert record.metrics["base_loss"] == pytest.approx(before_trained, rel=1e-3)

    # A fresh base loads the stored adapter and gives identical logits to each other run;
    # the adapter helps on what it was trained on far more than on held-out text.
    from peft import PeftModel

    local = store.fetch(record, tmp_path / "fetched")
    fresh, _ = load_causal_lm(path, "cpu")
    adapted = PeftModel.from_pretrained(fresh, str(local)).eval()
    trained_after = mean_token_loss(adapted, tokenizer, texts)
    held_after = mean_token_loss(adapted, tokenizer, HELD_OUT)
    assert trained_after == pytest.approx(record.metrics["adapter_loss"], rel=1e-3)
    assert before_trained - trained_after > 2 * (before_held - held_after)
    again = PeftModel.from_pretrained(load_causal_lm(path, "cpu")[0], str(local)).eval()
    ids = tokenizer(texts[0], return_tensors="pt").input_ids
    with torch.inference_mode():
        assert torch.equal(adapted(input_ids=ids).logits, again(input_ids=ids).logits)


def test_an_adapter_for_another_base_is_refused(base, trainer):
    _, _, _, identity = base
    runner, store = trainer
    runner.wait(runner.start("bob", TRAINED[:2], dataclasses.replace(SPEC, steps=2)).job_id,
                TIMEOUT_S)
    record = store.current("bob")
    check_base(record, identity.as_metadata())
    other = dict(identity.as_metadata(), revision="another-base")
    with pytest.raises(FailedPrecondition, match="refusing"):
        check_base(record, other)


def test_failed_and_cancelled_runs_leave_the_previous_adapter(base, trainer):
    runner, store = trainer
    first = runner.wait(runner.start("bob", TRAINED, dataclasses.replace(SPEC, steps=3)).job_id,
                        TIMEOUT_S)
    assert first.status == "succeeded"
    broken = dataclasses.replace(SPEC, target_modules=("no_such_module",))
    failed = runner.wait(runner.start("bob", TRAINED, broken).job_id, TIMEOUT_S)
    assert failed.status == "failed" and "no_such_module" in failed.error
    slow = dataclasses.replace(SPEC, steps=100_000)
    job = runner.start("bob", TRAINED, slow)
    with pytest.raises(FailedPrecondition):  # one unfinished job per cube
        runner.start("bob", TRAINED, SPEC)
    while runner.job(job.job_id).step < 2:
        threading.Event().wait(0.05)
    runner.cancel(job.job_id)
    assert runner.wait(job.job_id, TIMEOUT_S).status == "cancelled"
    assert [r.version for r in store.versions("bob")] == [first.version]
    assert store.current("bob").version == first.version


def test_store_lineage_staleness_and_delete(base, trainer):
    runner, store = trainer
    runner.wait(runner.start("bob", TRAINED[:3], dataclasses.replace(SPEC, steps=2)).job_id,
                TIMEOUT_S)
    runner.wait(runner.start("bob", TRAINED[3:], dataclasses.replace(SPEC, steps=2)).job_id,
                TIMEOUT_S)
    assert [r.version for r in store.versions("bob")] == [1, 2]
    assert store.mark_stale("bob", ["t4"]) == [2]  # only v2 was trained on t4
    assert store.current("bob").version == 1  # a stale adapter is not served
    store.delete("bob", 1)
    assert store.current("bob") is None and store.next_version("bob") == 3
    with pytest.raises(NotFound):
        store.get("bob", 1)
    assert store.versions("nobody") == []


def test_generation_applies_adapters_and_composes_with_activation_memory(base, trainer,
                                                                         tmp_path):
    from memos_cluster.tiers.activation.blocks import Budgets
    from memos_cluster.tiers.activation.engine import ActivationEngine, GenerateRequest
    from memos_cluster.core.tier_types import GenerateStats, SamplingParams
    from memos_cluster.tiers.activation.kvstore import KVStore

    path, _, tokenizer, identity = base
    runner, store = trainer
    for cube in ("bob", "ann"):
        memories = [dataclasses.replace(m, cube_id=cube) for m in TRAINED]
        if cube == "ann":
            memories = memories[::-1]
        assert runner.wait(runner.start(cube, memories, SPEC).job_id, TIMEOUT_S).status == \
            "succeeded"
    model, _ = load_causal_lm(path, "cpu")  # a serving copy, as a KV actor has
    kv = KVStore(identity, "cpu", Budgets(1 << 32, 1 << 32, 1 << 32), tmp_path / "spill")
    engine = ActivationEngine(model, tokenizer, kv, max_prompt_tokens=2048)

    def tokens(adapters, use_cache=True):
        request = GenerateRequest(tuple(TRAINED[:3]), "where is the bicycle?",
                                  sampling=SamplingParams(max_new_tokens=10),
                                  use_cache=use_cache, adapters=adapters)
        *_, stats = engine.generate(request)
        assert isinstance(stats, GenerateStats)
        return stats

    plain = tokens(())
    for cube in ("bob", "ann"):
        record = store.current(cube)
        engine.adapters.load(record.name, store.fetch(record, tmp_path / "fetched"))
    bob, both = tokens(("bob@v1",)), tokens(("bob@v1", "ann@v1"))
    assert len({plain.generated, bob.generated, both.generated}) == 3
    assert tokens(()).generated == plain.generated  # the base is untouched by adapter requests
    # Activation memory under adapters: its own caches, reused exactly.
    again = tokens(("bob@v1",))
    assert again.prefill_tokens_saved > 0 and again.generated == bob.generated
    assert tokens(("bob@v1",), use_cache=False).generated == bob.generated
    assert set(again.caches_used).isdisjoint(tokens(()).caches_used)


def test_a_fresh_store_fetches_what_another_saved(trainer, tmp_path):
    runner, store = trainer
    runner.wait(runner.start("bob", TRAINED[:2], dataclasses.replace(SPEC, steps=2)).job_id,
                TIMEOUT_S)
    reader = AdapterStore(store._root_uri)  # another process's view: nothing opened yet
    local = reader.fetch(reader.current("bob"), tmp_path / "other")
    assert (local / "adapter_model.safetensors").exists()
    fresh = AdapterStore(store._root_uri)
    record = store.current("bob")
    assert fresh.fetch(record, tmp_path / "third").is_dir()


def test_a_saved_adapter_reloads_in_a_fresh_model_with_identical_logits(base, tmp_path):
    from peft import PeftModel

    from memos_cluster.tiers.parametric.training import train_lora

    path, _, tokenizer, _ = base
    model, _ = load_causal_lm(path, "cpu")
    trained = train_lora(model, tokenizer, [m.text for m in TRAINED],
                         dataclasses.replace(SPEC, steps=5), on_step=lambda *_: None,
                         should_stop=lambda: False)
    ids = tokenizer(TRAINED[0].text, return_tensors="pt").input_ids
    with torch.inference_mode():
        want = trained(input_ids=ids).logits
    trained.save_pretrained(str(tmp_path / "adapter"))
    fresh = PeftModel.from_pretrained(load_causal_lm(path, "cpu")[0], str(tmp_path / "adapter"))
    with torch.inference_mode():
        assert torch.equal(fresh.eval()(input_ids=ids).logits, want)
