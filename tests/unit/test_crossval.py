"""Leave-one-conversation-out cross-validation (bench/crossval.py), on made-up lists."""
import pytest

from memos_cluster.bench import crossval as cv
from memos_cluster.bench.evaluation import Question
from locomo_shapes import locomo_sample


def _question(conv: str, evidence: str, bm25: list[str], dense: list[str]) -> cv.QuestionLists:
    scored = lambda keys: [(key, 1.0 - i / 10) for i, key in enumerate(keys)]  # noqa: E731
    return cv.QuestionLists(Question("q", (evidence,), "1", conv),
                            {"bm25/lucene/0": scored(bm25), "dense": scored(dense)})


# Three conversations where dense finds the evidence and one where BM25 does: the recipe best
# on the others is dense-heavy, and the fold holding out the BM25 one cannot know better.
FILLER = [f"f{i}" for i in range(12)]
OTHER = [f"g{i}" for i in range(12)]
QUESTIONS = [_question(c, "e", FILLER, ["e", *OTHER]) for c in "abd"]
QUESTIONS.insert(2, _question("c", "e", ["e", *FILLER], OTHER))
TURNS = {c: cv.Turns([], [], {}) for c in "abcd"}
RECIPES = [cv.Recipe("lucene", 0, (("dense", w),), candidates=40) for w in (0.0, 0.9)]


def test_each_fold_chooses_without_its_conversation():
    scores = {r: cv.score(r, QUESTIONS, TURNS) for r in RECIPES}
    assert scores[RECIPES[1]].recall[10] == [1.0, 1.0, 0.0, 1.0]
    assert scores[RECIPES[0]].recall[10] == [0.0, 0.0, 1.0, 0.0]
    result = cv.cross_validate(RECIPES, scores, QUESTIONS)
    assert {fold.held_out: fold.chosen for fold in result.folds} == dict.fromkeys("abcd",
                                                                                 RECIPES[1])
    assert result.held_out[10] == [1.0, 1.0, 0.0, 1.0]  # c scored by a recipe chosen without it
    summary = cv.summary(result.folds)
    assert summary["10"]["mean"] == pytest.approx(0.75)
    assert summary["10"]["min"] == 0.0
    assert summary["10"]["sd"] == pytest.approx(0.433, abs=1e-3)
    table = cv.category_table(result.held_out, QUESTIONS)
    assert table["all"]["10"] == 0.75


def test_grid_keeps_bm25_a_positive_weight_and_puts_simpler_first():
    recipes = cv.grid(["m", "e"], ["lucene"], [0], [0.0, 0.5, 0.6], [40], [0.0], ["score"])
    assert all(r.bm25_weight > 0 for r in recipes)
    assert (("m", 0.5), ("e", 0.6)) not in [r.dense for r in recipes]
    assert recipes[0].dense == (("m", 0.0), ("e", 0.0))
    assert recipes[0].label() == ("bm25:1 no dense, score, stop lucene, ctx 0, cand 40, nb 0, "
                                  "date 0, when 0, bm25 dates off, entity 0")


def test_candidates_cut_each_list_before_fusion():
    question = _question("a", "e", FILLER, [*OTHER[:5], "e"])
    deep = cv.Recipe("lucene", 0, (("dense", 0.5),), candidates=40)
    shallow = cv.Recipe("lucene", 0, (("dense", 0.5),), candidates=5)
    assert "e" in cv.rank(deep, question, TURNS["a"])
    assert "e" not in cv.rank(shallow, question, TURNS["a"])


def _conversation(sample_id: str, topics: list[str]) -> dict:
    turns = []
    for i, topic in enumerate(topics, 1):
        turns.append({"speaker": "Ann", "dia_id": f"D1:{2 * i - 1}",
                      "text": f"Have you heard about the {topic}?"})
        turns.append({"speaker": "Bo", "dia_id": f"D1:{2 * i}", "text": "Yes, last May!"})
    qa = [{"question": f"When was the {topic}?", "answer": "last May",
           "evidence": [f"D1:{2 * i}"], "category": 2} for i, topic in enumerate(topics, 1)]
    return locomo_sample(sample_id, turns, qa)


def test_lists_come_from_the_engine_and_replies_need_their_neighbour(tmp_path):
    """The real engine's BM25 (milvus-lite, in-process) and MiniLM: each answer is a reply that
    shares no word with its question, so only context or the neighbour spread finds it."""
    from memos_cluster.bench.retrieval_lab import collect
    from memos_cluster.core.config import MemosConfig
    from memos_cluster.embed import make_embedder

    samples = [_conversation("a", ["pottery fair", "jazz night", "chess club", "book swap",
                                   "river cleanup", "robot contest", "bread class", "art walk"]),
               _conversation("b", ["kite festival", "salsa course", "film week", "quiz night",
                                   "yoga retreat", "comic con", "wine tasting", "tango show"])]
    embedder = make_embedder(MemosConfig().embedder, str(tmp_path / "models"))
    named = {"minilm": (embedder.embed, embedder.embed)}
    questions, turns = collect(samples, named, embedder,
                               [("extended", 0, False), ("extended", 0, True)], tmp_path,
                               say=lambda line: None)
    assert len(questions) == 16 and set(questions[0].lists) == \
        {"minilm", "bm25/extended/0", "bm25/extended/0/dates"}
    assert turns["a"].predecessor["D1:2"] == "D1:1" and turns["a"].ids[0] == "D1:1"
    assert questions[0].lists["bm25/extended/0"][0][0] == "D1:1"  # the turn, not its reply
    alone = cv.Recipe("extended", 0, (("minilm", 0.4),), candidates=40)
    spread = cv.Recipe("extended", 0, (("minilm", 0.4),), candidates=40, neighbour=0.5)
    scores = cv.score_all([alone, spread], questions, turns)
    assert scores[spread].recall == cv.score(spread, questions, turns).recall
    assert cv._mean(scores[alone].recall[5]) < cv._mean(scores[spread].recall[5]) == 1.0
    # the reader read every turn: "last May" is resolved, its topics are in the graph
    assert any(t.periods for t in turns["a"].times.values())
    assert turns["a"].graph.find("art walk") in turns["a"].mentions["D1:15"]
    result = cv.cross_validate([alone, spread], scores, questions)
    assert [fold.chosen for fold in result.folds] == [spread, spread]
