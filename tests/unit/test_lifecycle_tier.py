"""The lifecycle on the plaintext tier, on real milvus-lite with the real reader and embedder (no
Ray): a contradicted fact superseded (in order, out of order, on update), reads seeing active
memories by default and the past with as_of, expiry invisible at once then archived, feedback,
two writers at once, and the lifecycle carried by an archive."""
import threading
from datetime import datetime, timezone

import pytest

from memos_cluster.core.config import MemosConfig, with_overrides
from memos_cluster.core.errors import FailedPrecondition, NotFound
from memos_cluster.core.lifecycle import Feedback
from memos_cluster.core.types import (
    CubeSpec, ListQuery, MemoryUpdate, NewMemory, SearchFilter, SearchQuery)
from memos_cluster.data.archive import CubeArchive, read_archive, renamed, write_archive
from memos_cluster.embed import make_embedder
from memos_cluster.tiers.plaintext.tier import PlaintextTier

from clocks import StepClock


def ms(year, month=1, day=1):
    return int(datetime(year, month, day, 12, tzinfo=timezone.utc).timestamp() * 1000)


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    return make_embedder(MemosConfig().embedder, str(tmp_path_factory.mktemp("models")))


@pytest.fixture(scope="module")
def clock():
    return StepClock()


@pytest.fixture(scope="module")
def shared(tmp_path_factory, embedder, clock):
    """One tier for the module (opening milvus-lite costs seconds); a cube per test."""
    config = with_overrides(MemosConfig(), {"data_dir": str(tmp_path_factory.mktemp("life")),
                                            "reader.own_process": False})
    tier = PlaintextTier(config, "shard-0", embedder, clock=clock)
    tier.open()
    yield tier
    tier.close()


@pytest.fixture
def tier(shared, request):
    cube = request.node.name.removeprefix("test_")[:60]
    shared.create_cube(CubeSpec(cube))
    shared.cube = cube  # the helpers' cube
    return shared


def add(tier, *memories):
    return tier.add(tier.cube, [NewMemory(text, id=i, event_time_ms=t)
                                for i, text, t in memories])


def first(tier, query, **flt):
    hits = tier.search(SearchQuery((tier.cube,), query, 3, filter=SearchFilter(**flt)))
    return hits[0].item.id if hits else None


def test_a_contradicted_fact_is_superseded_and_the_past_is_still_asked(tier):
    add(tier, ("paris", "Alice: I live in Paris.", ms(2020)),
        ("cat", "Alice: I have a cat called Miso.", ms(2020)))
    result = add(tier, ("berlin", "Alice: I moved to Berlin last month.", ms(2023, 6)))
    (decision,) = result.superseded
    assert (decision.old_id, decision.new_id) == ("paris", "berlin")
    assert decision.reason == "alice residence: paris -> berlin (rule)"
    old = tier.get(tier.cube, ["paris"], ("superseded",)).items[0]
    assert old.superseded_by == "berlin" and old.valid_to_ms == ms(2023, 5) - 12 * 3600_000
    assert tier.get(tier.cube, ["berlin"]).items[0].supersedes == ("paris",)
    assert tier.get(tier.cube, ["paris", "cat"]).missing_ids == ("paris",)  # active by default
    assert first(tier, "Where does Alice live?") == "berlin"
    assert first(tier, "Where does Alice live?", as_of_ms=ms(2022)) == "paris"
    assert first(tier, "Where does Alice live?", as_of_ms=ms(2019)) is None
    listed = tier.list_memories(ListQuery(tier.cube))
    assert {m.id for m in listed.items} == {"berlin", "cat"}
    assert [m.state for m in tier.history(tier.cube, "paris")] == ["superseded"]


def test_an_older_fact_written_later_is_stored_superseded_and_same_values_stay(tier):
    add(tier, ("berlin", "Alice moved to Berlin.", ms(2023)))
    assert add(tier, ("paris", "Alice lives in Paris.", ms(2020))).superseded[0].old_id == \
        "paris"
    assert tier.get(tier.cube, ["paris"]).missing_ids == ("paris",)
    again = add(tier, ("berlin2", "Alice: I live in Berlin.", ms(2024)),
                ("bob", "Bob lives in Paris.", ms(2024)))
    assert again.superseded == ()  # the same value, and another subject
    tier.update(MemoryUpdate(tier.cube, "bob", "Bob moved to Rome."))
    assert first(tier, "Where does Bob live?") == "bob"
    updated, decisions = tier.update_settled(MemoryUpdate(tier.cube, "berlin2",
                                                          "Alice: I live in Madrid."))
    assert [d.old_id for d in decisions] == ["berlin"] and updated.state == "active"
    with pytest.raises(FailedPrecondition, match="superseded"):
        tier.update(MemoryUpdate(tier.cube, "berlin", "Alice lives in Oslo."))


def test_expired_memories_vanish_at_once_and_the_cycle_archives_them(tier, clock):
    now = int(clock.now_s * 1000)
    tier.add(tier.cube, [NewMemory("The door code is 4512 this week.", id="code",
                                expires_at_ms=now + 30_000),
                      NewMemory("The wifi password is hunter2.", id="wifi")])
    assert tier.get(tier.cube, ["code"]).items  # not expired yet
    clock.now_s += 60
    assert tier.get(tier.cube, ["code"]).missing_ids == ("code",)
    assert tier.get(tier.cube, ["code"], ("expired",)).items[0].id == "code"
    assert first(tier, "door code") != "code"
    assert tier.expire(tier.cube) == ["code"] and tier.expire(tier.cube) == []
    archived = tier.get(tier.cube, ["code"], ("archived",)).items[0]
    assert archived.state_reason == "expired"
    ttl = tier.create_cube(CubeSpec("ttl", default_ttl_ms=60_000))
    tier.add("ttl", [NewMemory("Remember the milk.", id="milk")])
    milk = tier.get("ttl", ["milk"]).items[0]
    assert ttl.default_ttl_ms == 60_000 and milk.expires_at_ms == milk.created_at_ms + 60_000


def test_feedback_archives_supersedes_and_refuses_twice(tier):
    add(tier, ("job", "Alice works at Google.", ms(2021)), ("tea", "Alice likes green tea.",
                                                             ms(2021)))
    wrong = tier.feedback(Feedback(tier.cube, "tea", "wrong", "she never said so"))
    assert wrong.memory.state == "archived" and "never said" in wrong.memory.state_reason
    out = tier.feedback(Feedback(tier.cube, "job", "outdated", "Alice works at Microsoft."))
    assert out.memory.state == "superseded" and out.memory.superseded_by == out.successor.id
    assert first(tier, "Where does Alice work?") == out.successor.id
    assert tier.get(tier.cube, [out.successor.id]).items[0].supersedes == ("job",)
    with pytest.raises(FailedPrecondition, match="superseded"):
        tier.feedback(Feedback(tier.cube, "job", "outdated"))
    with pytest.raises(NotFound):
        tier.feedback(Feedback(tier.cube, "nope", "useful"))
    assert tier.feedback(Feedback(tier.cube, out.successor.id, "useful")).memory.state == "active"


def test_two_writers_superseding_the_same_memory_leave_one_winner(tier):
    add(tier, ("home", "Carol lives in Paris.", ms(2020)))
    errors, barrier = [], threading.Barrier(2)

    def judge(text):
        barrier.wait()
        try:
            tier.feedback(Feedback(tier.cube, "home", "outdated", text))
        except FailedPrecondition as exc:
            errors.append(exc)

    threads = [threading.Thread(target=judge, args=(t,)) for t in
               ("Carol lives in Madrid.", "Carol lives in Rome.")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    home = tier.get(tier.cube, ["home"], ("superseded",)).items[0]
    active = [m for m in tier.list_memories(ListQuery(tier.cube)).items if "Carol" in m.text]
    # One wins; the other is told the memory is superseded before it stores anything.
    assert len(active) == 1 and home.superseded_by == active[0].id
    assert len(errors) == 1 and "superseded" in errors[0].message


def test_an_archive_carries_states_and_links(tier, tmp_path):
    add(tier, ("a", "Dan works at Google.", ms(2020)))
    assert add(tier, ("b", "Dan works at Microsoft.", ms(2022))).superseded
    export = tier.transfer.export_cube(tier.cube)
    write_archive(CubeArchive(renamed(export, tier.cube + "-copy"), []), str(tmp_path / "arch"))
    tier.transfer.import_cube(read_archive(str(tmp_path / "arch")).export, must_be_new=True)
    copied = tier.get(tier.cube + "-copy", ["a", "b"], ("active", "superseded")).items
    assert [(m.id, m.state, m.superseded_by) for m in copied] == [
        ("a", "superseded", "b"), ("b", "active", "")]
