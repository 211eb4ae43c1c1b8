"""Memories that change, through the gateway: a contradicted fact superseded and out of every
read by default, the past asked with as_of, feedback with its errors, over gRPC, Ray and HTTP;
then, over gRPC, a superseded memory leaving activation memory and the adapter trained on it,
the decision in the audit log, and an expired memory archived by the scheduler's cycle."""
import time

import pytest

from memos_cluster.auth.audit import AuditLog
from memos_cluster.core.errors import FailedPrecondition, InvalidArgument, NotFound
from memos_cluster.core.tier_types import GenerateStats
from memos_cluster.core.types import NewMemory, SearchFilter

YEAR_MS = 365 * 86_400_000
Y2020, Y2023 = 1_577_880_000_000, 1_672_574_400_000  # 1 Jan 2020 and 1 Jan 2023, noon UTC


def test_a_contradicted_fact_is_superseded_and_feedback_judges(client, cube):
    client.add(cube, [NewMemory("Alice: I live in Paris.", id="paris", event_time_ms=Y2020),
                      NewMemory("Alice: I keep bees on the roof.", id="bees")])
    added = client.add(cube, [NewMemory("Alice: I moved to Berlin.", id="berlin",
                                        event_time_ms=Y2023)])
    (decision,) = added.superseded
    assert (decision.old_id, decision.new_id, decision.valid_to_ms) == ("paris", "berlin", Y2023)
    assert client.search(cube, "Where does Alice live?", top_k=1)[0].item.id == "berlin"
    past = client.search(cube, "Where does Alice live?", top_k=1,
                         filter=SearchFilter(as_of_ms=Y2020 + YEAR_MS))
    assert past[0].item.id == "paris" and past[0].item.state == "superseded"
    assert client.get(cube, ["paris"]).missing_ids == ("paris",)
    (old,) = client.get(cube, ["paris"], ["superseded"]).items
    assert old.superseded_by == "berlin" and old.valid_to_ms == Y2023
    assert client.get(cube, ["berlin"]).items[0].supersedes == ("paris",)

    judged = client.feedback(cube, "bees", "wrong", "never had bees")
    assert judged.memory.state == "archived" and judged.successor is None
    assert client.list_memories(cube).total == 1  # berlin: the only active memory
    with pytest.raises(FailedPrecondition, match="superseded"):
        client.feedback(cube, "paris", "outdated")
    with pytest.raises(InvalidArgument, match="kind must be one of"):
        client.feedback(cube, "berlin", "meh")
    with pytest.raises(NotFound):
        client.feedback(cube, "nope", "useful")
    with pytest.raises(InvalidArgument, match="in the past"):
        client.add(cube, [NewMemory("old news", expires_at_ms=Y2020)])


@pytest.mark.parametrize("client", ["grpc"], indirect=True)
def test_no_tier_serves_a_superseded_memory_and_expiry_is_swept(client, cube, config):
    client.add(cube, [NewMemory("Nora works at Google.", id="google", event_time_ms=Y2020),
                      NewMemory("Nora keeps bees on the roof.", id="bees")])
    client.activate(cube, ["google", "bees"])
    job = client.train_adapter(cube, ["google", "bees"], rank=4, steps=4)
    assert client.wait_for_training(job.job_id, timeout_s=300).status == "succeeded"

    def stats(adapter):
        # (An adapter changes keys and values: caches serve requests without one.)
        *_, last = client.generate(cube, "Where does Nora work?", max_new_tokens=4,
                                   use_retrieved_memories=True, use_parametric_memory=adapter)
        assert isinstance(last, GenerateStats)
        return last

    assert stats(True).adapters_used == (f"{cube}@v1",)
    assert ("google", "activation") in {(m.memory_id, m.tier) for m in stats(False).memories}
    client.add(cube, [NewMemory("Nora works at Microsoft now.", id="msft",
                                event_time_ms=Y2023)])
    # Even before the invalidation lands, nothing built on google serves.
    assert stats(True).adapters_used == ()
    assert "google" not in {m.memory_id for m in stats(False).memories}
    for _ in range(100):
        if client.adapters(cube).current_version == 0:
            break
        time.sleep(0.1)
    assert client.adapters(cube).adapters[0].stale
    records = list(AuditLog(config.auth_dir() / "audit.jsonl").read())
    assert any(r.action == "supersede" and r.target == f"{cube}/google" for r in records)

    soon = int(time.time() * 1000) + 1500
    client.add(cube, [NewMemory("The door code is 4512.", id="code", expires_at_ms=soon)])
    time.sleep(2.0)
    assert client.get(cube, ["code"]).missing_ids == ("code",)
    assert client.scheduler("run").expired >= 1
    (archived,) = client.get(cube, ["code"], ["archived"]).items
    assert archived.state_reason == "expired"
