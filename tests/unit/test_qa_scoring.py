"""The pure parts of `bench qa` and of the prompt layout: answer scoring, the question sample,
what an adapter trains on, and how a memory and a training example are laid out (with a
character tokenizer, so the token lists read as text)."""
import pytest

from memos_cluster.bench.answers import AnswerTable, contains, token_f1
from memos_cluster.bench.qa import qa_questions
from memos_cluster.tiers.llm.prompt import PromptFormat

MAY_8_2023_MS = 1683547200000  # 2023-05-08 12:00 UTC


def chars(text):
    return [ord(c) for c in text]


def text_of(tokens):
    return "".join(chr(t) for t in tokens)


CHAT = PromptFormat("chat", tuple(chars("<sys>")), frozenset({0}), chars, "{when}{text}\n",
                    "<user>{question}<assistant>", end_id=0)


def test_f1_and_containment_normalize_case_punctuation_and_articles():
    assert token_f1("The clarinet!", "clarinet") == 1.0
    # precision 1/3 (the article dropped), recall 1
    assert token_f1("Melanie plays a clarinet", "clarinet") == pytest.approx(0.5)
    assert token_f1("the beach", "LGBTQ support group") == 0.0
    assert contains("She went to the LGBTQ support group.", "LGBTQ support group")
    assert not contains("support", "LGBTQ support group")
    assert not contains("anything", "")


def test_answer_table_scores_in_percent_overall_and_by_category():
    table = AnswerTable()
    table.add("1", "clarinet", "clarinet")
    table.add("2", "beach", "support group")
    assert table.scores() == {"f1": 50.0, "contains": 50.0, "n": 2}
    assert table.scores("2") == {"f1": 0.0, "contains": 0.0, "n": 1}
    assert table.scores("3")["n"] == 0


def test_the_sample_takes_the_first_questions_of_each_scored_category():
    sample = {"sample_id": "c", "qa": [
        {"question": "q1", "answer": "a", "category": 1},
        {"question": "q2", "answer": "b", "category": 1},
        {"question": "q5", "adversarial_answer": "x", "category": 5},
        {"question": "q3", "answer": 2023, "category": 2}]}
    picked = qa_questions(sample, per_category=1)
    assert [(q["question"], q["answer"], q["category"]) for q in picked] == [
        ("q1", "a", "1"), ("q3", "2023", "2")]
    assert [q["question"] for q in qa_questions(sample)] == ["q1", "q2", "q3"]  # 0: all


def test_a_memory_line_and_its_training_example_show_its_date():
    assert text_of(CHAT.memory("Caroline: hi", MAY_8_2023_MS)) == "(8 May 2023) Caroline: hi\n"
    assert text_of(CHAT.memory("Caroline: hi")) == "Caroline: hi\n"
    prompt, answer = CHAT.recall("Caroline: I went to a support group", ["support"],
                                 MAY_8_2023_MS)
    assert text_of(prompt) == ("<sys><user>What do you remember about Caroline: support?"
                               "<assistant>")
    assert text_of(answer[:-1]) == "(8 May 2023) Caroline: I went to a support group"
    assert answer[-1] == 0  # the end of turn: an answer learns where to stop
    prompt, _ = CHAT.recall("no speaker here")
    assert text_of(prompt).endswith("about that?<assistant>")
