"""Question adapters (tiers/parametric/distill.py, the trainer's question runs) and the gate
that serves them: rewrites, targets, training, acceptance against the previous version; on
the real built-in model (random weights: the mechanics) and pure numpy for the gate."""
import numpy as np
import pytest

from memos_cluster.core.tier_types import AdapterRecord, BlockMemory, current_of
from memos_cluster.tiers.parametric.distill import (
    Lesson, agreement, distill_lora, layout_of, rewrites, teach)
from memos_cluster.tiers.parametric.gate import nearest_question, stack
from memos_cluster.tiers.parametric.store import AdapterStore
from memos_cluster.tiers.parametric.trainer import AdapterTrainer
from memos_cluster.tiers.parametric.training import LoraSpec

MEMORY = BlockMemory("alice", "m1", 1, "Alice: I adopted a cat named Miso yesterday")
LESSONS = [Lesson("What pet did Alice adopt?", (MEMORY,)),
           Lesson("When did Alice adopt a cat?", (MEMORY,))]
TINY = LoraSpec(rank=4, alpha=8, steps=25, learning_rate=1e-2, batch_size=4)


def test_rewrites_are_fixed_distinct_and_keep_the_question_apart():
    question = "When did Caroline go to the LGBTQ support group?"
    assert rewrites(question) == [
        "Quick question: When did Caroline go to the LGBTQ support group?",
        "When did Caroline go to the LGBTQ support group? Please answer briefly.",
        "Caroline go to the LGBTQ support group, when?",
        "when did caroline go to the lgbtq support group?"]
    assert question not in rewrites(question)
    assert rewrites("Is it true?") == ["Quick question: Is it true?",
                                       "Is it true? Please answer briefly.", "is it true?"]


def test_distillation_moves_the_student_to_the_teacher(loaded):
    """The student's cross-entropy against the teacher (the base model with the memories in
    its prompt) falls, and its greedy picks follow the teacher's more than the base model's
    without the memories do. (A random model's teacher distributions are flat, so agreement
    stays low here; tests/unit/test_real_model.py checks it on SmolLM2.)"""
    model, tokenizer, _ = loaded
    layout = layout_of(model, tokenizer)
    targets, dropped = teach(model, layout, LESSONS, max_answer_tokens=6,
                             require_overlap=False)
    assert dropped == 0 and all(0 < len(t.answer) <= 6 for t in targets)
    assert targets[0].top_ids.shape == targets[0].top_logprobs.shape == (
        len(targets[0].answer), 32)
    before = agreement(model, layout, targets, held_out=False)
    losses = []
    student = distill_lora(model, layout, targets, TINY, lambda _, loss: losses.append(loss),
                           lambda: False)
    try:
        after = agreement(student, layout, targets, held_out=False)
    finally:
        student.unload()
    assert len(losses) == TINY.steps and min(losses[-5:]) < 0.8 * losses[0]
    assert after > before


def test_a_question_run_that_agrees_less_than_the_current_one_is_kept_rejected(loaded,
                                                                               tmp_path):
    model, tokenizer, identity = loaded
    store = AdapterStore(str(tmp_path / "adapters"))
    # The cube's current question adapter agreed with its teacher on 101% of held-out
    # rewrites: no run can match it, so the new one must be kept but not served.
    bar = AdapterRecord("alice", 1, identity.as_metadata(), (("m1", 1),), {},
                        {"held_out_agreement": 101.0}, 0, questions=("q?",))
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "adapter_model.safetensors").write_bytes(b"x")
    store.save(bar, tmp_path / "v1")
    trainer = AdapterTrainer(lambda: (model, tokenizer, identity), store)
    try:
        job = trainer.wait(trainer.start_questions("alice", LESSONS, TINY).job_id, 600)
    finally:
        trainer.shutdown()
    # The random model's answers share no word with the memory: nothing to learn, reported.
    assert job.status == "failed" and "answered from its memories" in job.error
    assert current_of(store.versions("alice")).version == 1


def test_the_gate_admits_only_near_questions():
    questions = stack([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    near = np.array([0.96, 0.28, 0.0], dtype=np.float32)
    far = np.array([0.6, 0.6, 0.53], dtype=np.float32)
    assert nearest_question(near, questions, 0.9).admitted
    decision = nearest_question(far, questions, 0.9)
    assert not decision.admitted and decision.similarity == pytest.approx(0.6, abs=1e-3)
    assert not nearest_question(near, stack([]), 0.9).admitted
