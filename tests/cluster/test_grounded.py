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
