import pytest

from memos_cluster.bench.evaluation import Question, RecallTable, evidence_recall, locomo_questions


def test_recall_counts_evidence_within_the_turn_budget():
    ranked = [["D1:1"], ["D1:2"], ["D1:3"]]
    assert evidence_recall(ranked, ["D1:2", "D1:3"], budget=2) == 0.5
    assert evidence_recall(ranked, ["D1:2", "D1:3"], budget=3) == 1.0
    assert evidence_recall(ranked, ["D9:9"], budget=3) == 0.0


def test_an_item_covering_several_turns_spends_several():
    ranked = [["D1:1", "D1:2", "D1:3"], ["D2:1"]]
    assert evidence_recall(ranked, ["D2:1"], budget=3) == 0.0  # the window used the budget
    assert evidence_recall(ranked, ["D2:1", "D1:3"], budget=4) == 1.0


def test_questions_without_evidence_cannot_be_scored():
    with pytest.raises(ValueError):
        evidence_recall([["D1:1"]], [], budget=5)


def test_table_groups_by_category_and_conversation():
    table = RecallTable((1, 2))
    table.add(Question("q1", ("D1:1",), "4", "conv-a"), [["D1:1"]])
    table.add(Question("q2", ("D1:2",), "2", "conv-b"), [["D1:1"], ["D1:2"]])
    assert table.recall("all") == {"1": 0.5, "2": 1.0}
    assert table.recall("4") == {"1": 1.0, "2": 1.0}
    assert table.recall("conv-b") == {"1": 0.0, "2": 1.0}
    assert table.groups("conv") == ["conv-a", "conv-b"]


def test_locomo_questions_skip_unlabelled_and_split_joined_labels():
    sample = {"sample_id": "conv-x", "qa": [
        {"question": "a", "evidence": ["D1:1"], "category": 4},
        {"question": "b", "evidence": [], "category": 5},
        {"question": "c", "evidence": ["D8:6; D9:17"], "category": 1}]}
    questions = locomo_questions(sample)
    assert [q.question for q in questions] == ["a", "c"]
    assert questions[1].evidence == ("D8:6", "D9:17")
