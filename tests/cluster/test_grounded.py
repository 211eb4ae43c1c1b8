"""Generate answers from memory on the default model (SmolLM2-135M-Instruct, real weights), on
the simulated multi-node cluster as deployed (the integration session runs the tiers' mechanics
on tiny-llama): with a LoCoMo conversation in a cube, a question about a fact in it is answered
with that fact when the retrieved memories join the prompt, and not without them. Greedy
decoding on one model build, so the answers are deterministic; over gRPC."""
import pytest

from memos_cluster.cli.common import default_locomo_path
from memos_cluster.client import MemosClient
from memos_cluster.core.tier_types import GenerateStats, TokenEvent
from memos_cluster.data.locomo import load_locomo, locomo_memories
from memos_cluster.tiers.parametric.distill import rewrites

# (question, a word of the answer that only the conversation holds): checked against the
# conversation (conv-26: D4:11 Melanie plays clarinet, D11:12 her dog Luna, D1:17 Caroline
# moved from Sweden); the model without memory invents other answers.
FACTS = [("What instrument does Melanie play?", "clarinet"),
         ("What is Melanie's dog's name?", "luna"),
         ("What country is Caroline from?", "sweden")]


@pytest.fixture(scope="module")
def conversation_cube(sim):
    path = default_locomo_path()
    if path is None:  # CI runs beside ../shared; a checkout without it has no conversation
        pytest.skip("no LoCoMo file (../shared/data/locomo/locomo-dev5.json or $MEMOS_LOCOMO)")
    sample = next(s for s in load_locomo(path) if s["sample_id"] == "conv-26")
    with MemosClient(sim.address, timeout_s=120) as client:
        client.create_cube("grounded-conv-26")
        client.add_many("grounded-conv-26", locomo_memories(sample))
        yield client, "grounded-conv-26"
        client.delete_cube("grounded-conv-26")


def answer(client, cube, question, **kw) -> tuple[str, GenerateStats]:
    events = list(client.generate(cube, question, max_new_tokens=16,
                                  use_activation_memory=False, **kw))
    (stats,) = [e for e in events if isinstance(e, GenerateStats)]
    return "".join(e.text for e in events if isinstance(e, TokenEvent)), stats


@pytest.mark.parametrize("question,fact", FACTS)
def test_retrieved_memories_ground_the_answer(conversation_cube, question, fact):
    client, cube = conversation_cube
    grounded, stats = answer(client, cube, question, use_retrieved_memories=True)
    bare, _ = answer(client, cube, question)
    assert fact in grounded.lower(), grounded
    assert fact not in bare.lower(), bare
    # The answer ends at the model's end of turn or the token budget, never mid-template.
    assert "<|im_" not in grounded and stats.num_generated <= 16


def auto(client, cube, question) -> tuple[str, GenerateStats]:
    events = list(client.generate(cube, question, max_new_tokens=16, memory_mode="auto"))
    (stats,) = [e for e in events if isinstance(e, GenerateStats)]
    return "".join(e.text for e in events if isinstance(e, TokenEvent)), stats


def test_a_question_adapter_answers_its_questions_and_only_those(conversation_cube):
    """TrainAdapter with questions distils the model's answers with their retrieved memories
    into an adapter; memory_mode auto then answers the texts it learnt with the adapter alone,
    no retrieval, and any other question by retrieval with the adapter off. (Two questions
    learnt this briefly do not generalise to the held-out rewrites, so the rejection of a
    worse later version is not exercised here.)"""
    client, cube = conversation_cube
    learnt = [FACTS[0][0], FACTS[1][0]]
    job = client.wait_for_training(client.train_adapter(
        cube, [], steps=60, questions=learnt).job_id, timeout_s=900)
    assert job.status == "succeeded", job.error
    listing = client.adapters(cube)
    current = next(r for r in listing.adapters if r.version == listing.current_version)
    # It serves only the texts whose whole teacher answer it reproduces: some of the
    # questions and their trained rewrites.
    assert current.questions and not current.rejected
    assert set(current.questions) <= {v for q in learnt for v in [q] + rewrites(q)[:-1]}
    assert current.metrics["trained_agreement"] > current.metrics["base_trained_agreement"]

    _, stats = auto(client, cube, current.questions[0])
    assert stats.adapters_used == (f"{cube}@v{current.version}",) and not stats.memories
    assert stats.prompt_tokens < 80  # the question alone, no memories
    other, other_stats = auto(client, cube, FACTS[2][0])
    assert not other_stats.adapters_used and len(other_stats.memories) > 0
    assert FACTS[2][1] in other.lower(), other
