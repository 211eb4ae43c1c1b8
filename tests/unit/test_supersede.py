"""The lifecycle's pure parts: facts from relations, the supersede rule's decisions, the state
filter's expression and the validation of expiries, states and feedback (no Milvus, no spaCy)."""
import pytest

from memos_cluster.core import validation as v
from memos_cluster.core.config import LifecycleConfig, MemosConfig
from memos_cluster.core.errors import InvalidArgument
from memos_cluster.core.lifecycle import Fact, Feedback, effective_state
from memos_cluster.core.structure import EntityMention, MemoryStructure, Relation, TimeMention
from memos_cluster.core.types import NewMemory, SearchFilter
from memos_cluster.tiers.plaintext.filters import build_search_expr
from memos_cluster.tiers.plaintext.supersede import (
    Candidate, FactReader, RuleSupersede, valid_from_of)

READER = FactReader.from_config(LifecycleConfig())


def structure(*relations, entities=()):
    return MemoryStructure(entities=tuple(EntityMention(n, 0, 1, n, label)
                                          for n, label in entities),
                           relations=tuple(Relation(*r) for r in relations))


def test_relations_become_single_valued_facts():
    assert READER.facts(structure(("Alice", "move to", "Berlin"),
                                  entities=[("Berlin", "GPE")])) == (
        Fact("alice", "residence", "berlin"),)
    # A noun phrase is not a place; a name spaCy mislabels still is.
    assert READER.facts(structure(("Alice", "move to", "new flat"))) == ()
    assert READER.facts(structure(("Zoe", "work at", "Spotify"),
                                  entities=[("Spotify", "GPE")]))[0].slot == "employer"
    # Fixed values need no entity; "my favourite X is Y" is a slot of its own.
    assert READER.facts(structure(("Bo", "break up with", "Tom")))[0].value == "single"
    assert READER.facts(structure(("favorite food", "be", "sushi"),
                                  ("Bo", "has", "favorite food"))) == (
        Fact("bo", "favourite food", "sushi"),)
    # Two values for one slot in one memory are not a claim.
    assert READER.facts(structure(("Al", "live in", "Oslo"), ("Al", "live in", "Rome"),
                                  entities=[("Oslo", "GPE"), ("Rome", "GPE")])) == ()


def candidate(memory_id, value, valid_from, is_new=False, recorded=0):
    return Candidate(memory_id, (Fact("alice", "residence", value),), valid_from, recorded,
                     is_new)


def test_the_rule_keeps_the_latest_and_chains_the_rest():
    rule = RuleSupersede()
    decisions = rule.decide("c", [candidate("paris", "paris", 10),
                                  candidate("berlin", "berlin", 30, True)])
    assert [(d.old_id, d.new_id, d.valid_to_ms) for d in decisions] == [("paris", "berlin", 30)]
    # A backfilled older fact is the one superseded; the same value supersedes nothing.
    late = rule.decide("c", [candidate("berlin", "berlin", 30),
                             candidate("paris", "paris", 10, True)])
    assert [(d.old_id, d.new_id) for d in late] == [("paris", "berlin")]
    assert rule.decide("c", [candidate("a", "berlin", 10), candidate("b", "berlin", 30, True)]) \
        == []
    # Stored facts alone are not re-decided; in a batch, each old one once, by its next.
    assert rule.decide("c", [candidate("a", "oslo", 1), candidate("b", "rome", 2)]) == []
    chain = rule.decide("c", [candidate("a", "oslo", 1), candidate("b", "rome", 2, True),
                              candidate("c", "lima", 3, True)])
    assert [(d.old_id, d.new_id) for d in chain] == [("a", "b"), ("b", "c")]


def test_validity_comes_from_the_text_dates_then_the_event_time():
    may = TimeMention("last month", 0, 1, 100, 200, "month")
    future = TimeMention("next year", 0, 1, 900, 1000, "year")
    assert valid_from_of(MemoryStructure(times=(may, future)), None, 500, 0) == 100
    assert valid_from_of(MemoryStructure(times=(future,)), None, 500, 0) == 500
    assert valid_from_of(MemoryStructure(), None, None, 7) == 7
    assert valid_from_of(MemoryStructure(times=(may,)), 42, 500, 0) == 42
    assert effective_state("active", 10, 10) == "expired"
    assert effective_state("superseded", 10, 99) == "superseded"


def test_reads_filter_by_state_and_validity():
    active = build_search_expr(["c"], SearchFilter(), now_ms=5).render()
    assert 'state == "active" and expires_at_ms > 5' in active
    past = build_search_expr(["c"], SearchFilter(as_of_ms=3), now_ms=5).render()
    assert 'state == "superseded"' in past and "valid_from_ms <= 3" in past \
        and "valid_to_ms > 3" in past
    expired = build_search_expr(["c"], SearchFilter(states=("expired",)), now_ms=5).render()
    assert "expires_at_ms <= 5" in expired


def test_bad_lifecycle_input_is_refused_with_its_field():
    limits = MemosConfig().limits
    for memory, field in [(NewMemory("x", expires_at_ms=1), "expires_at_ms"),
                          (NewMemory("x", expires_at_ms=2 ** 61), "expires_at_ms"),
                          (NewMemory("x", valid_from_ms=2 ** 63), "valid_from_ms")]:
        with pytest.raises(InvalidArgument) as caught:
            v.check_new_memories([memory], limits)
        assert caught.value.field.endswith(field)
    with pytest.raises(InvalidArgument, match="unknown state"):
        v.check_filter(SearchFilter(states=("gone",)), limits)
    with pytest.raises(InvalidArgument, match="kind must be one of"):
        v.check_feedback(Feedback("c", "m", "meh"), limits)
    with pytest.raises(InvalidArgument, match="blank"):
        v.check_feedback(Feedback("c", "m", "outdated", "   "), limits)
