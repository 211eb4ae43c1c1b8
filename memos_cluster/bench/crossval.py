"""Leave-one-conversation-out cross-validation of retrieval recipes. Pure functions.

A recipe is every choice the search makes (stop words, context turns indexed, retrievers and
their weights, fusion, candidates a retriever, neighbour spread). For each fold one conversation
is held out: the recipe with the best mean of recall@5 and recall@10 on the other four is chosen
and scored on the held-out one. The cross-validated figure is the mean (and spread) of the five
held-out scores; the per-category table pools every question scored by a recipe chosen without
its conversation. Who calls it: `bench locomo --cross-validate` (bench/locomo_cv.py).
"""
from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence

from memos_cluster.bench.evaluation import CATEGORY_NAMES, Question, evidence_recall
from memos_cluster.tiers.plaintext.dates import MemoryTimes, TimeMatches, time_matches
from memos_cluster.tiers.plaintext.entity_rank import entity_shares, query_entities
from memos_cluster.tiers.plaintext.fusion import boost, fuse_base
from memos_cluster.tiers.plaintext.graph import CubeGraph

KS = (5, 10)
RRF_K = 60
Scored = list[tuple[str, float]]  # (dia_id, score), best first


@dataclass(frozen=True)
class QuestionLists:
    """One question's candidates: retriever name -> (dia_id, score) best first. Names:
    "bm25/<stop words>/<context turns>" and the dense embedders' names."""

    question: Question
    lists: dict[str, Scored]


@dataclass(frozen=True)
class Turns:
    """A conversation's turns in order: dia_ids, texts, each turn's predecessor in its session
    (what the search reads off a memory's context: see fusion.spread_to_neighbours), what each
    says about time (its session's date and the dates the reader resolved in it) and the time
    its questions are asked (the last session's, for relative dates in a question)."""

    ids: list[str]
    texts: list[str]
    predecessor: dict[str, str]
    times: dict[str, MemoryTimes] = field(default_factory=dict)
    reference_ms: int = 0
    graph: Optional[CubeGraph] = None  # the conversation's entity graph, as a cube builds it
    mentions: dict[str, frozenset[str]] = field(default_factory=dict)  # turn -> entity ids
    _shares: dict[str, dict[str, float]] = field(default_factory=dict)
    _event_only: dict[str, MemoryTimes] = field(default_factory=dict)
    _matches: dict[str, TimeMatches] = field(default_factory=dict)

    def time_matches(self, question: str, month_only: bool) -> TimeMatches:
        """dates.time_matches over every turn (cached per question and mode)."""
        key = f"{int(month_only)}{question}"
        if key not in self._matches:
            times = self.event_times_only if month_only else lambda: self.times
            self._matches[key] = time_matches(times, question, self.reference_ms, month_only)
        return self._matches[key]

    def entity_shares(self, question: str) -> dict[str, float]:
        """Each turn's share of the entities the question names (cached per question)."""
        if question not in self._shares:
            wanted = query_entities(self.graph, question) if self.graph else frozenset()
            self._shares[question] = entity_shares(wanted, self.mentions)
        return self._shares[question]

    def event_times_only(self) -> dict[str, MemoryTimes]:
        """The turns' times without their resolved dates (the month boost before the reader;
        made once)."""
        if not self._event_only and self.times:
            self._event_only.update({k: MemoryTimes(t.event_time_ms)
                                     for k, t in self.times.items()})
        return self._event_only


@dataclass(frozen=True)
class Recipe:
    stop_words: str  # BM25 analyzer stop words ("lucene", "extended")
    context_turns: int  # preceding turns indexed with each turn for BM25
    dense: tuple[tuple[str, float], ...]  # (embedder name, weight); BM25 takes 1 - their sum
    fusion: str = "score"  # "score" (min-max) or "rrf"
    candidates: int = 40  # per retriever
    neighbour: float = 0.0  # share of a hit's score given to its session neighbours
    date_boost: float = 0.0  # added to hits in a time the question names (plaintext/dates.py)
    when_boost: float = 0.0  # added to hits holding a resolved date for "when" questions
    bm25_dates: bool = False  # resolved dates appended to the BM25 text
    entity_boost: float = 0.0  # x the share of the question's named entities a turn mentions
    # "reader": the date boost matches a turn's session date or a date it mentions, for any
    # time the question names; "month": only months and session dates (the search before the
    # reader, kept to score the "before" space)
    time_mode: str = "reader"

    @property
    def bm25_weight(self) -> float:
        return round(1.0 - sum(w for _, w in self.dense), 4)

    def label(self) -> str:
        dense = "+".join(f"{n}:{w:g}" for n, w in self.dense if w) or "no dense"
        extra = (f", when {self.when_boost:g}, bm25 dates {'on' if self.bm25_dates else 'off'}"
                 f", entity {self.entity_boost:g}" if self.time_mode == "reader" else "")
        return (f"bm25:{self.bm25_weight:g} {dense}, {self.fusion}, stop {self.stop_words}, "
                f"ctx {self.context_turns}, cand {self.candidates}, nb {self.neighbour:g}, "
                f"date {self.date_boost:g}{extra}")

    @property
    def bm25_list(self) -> str:
        """The name of the BM25 candidate list this recipe reads (retrieval_lab.py)."""
        dates = "/dates" if self.bm25_dates else ""
        return f"bm25/{self.stop_words}/{self.context_turns}{dates}"


def _base(recipe: Recipe, lists: QuestionLists, turns: Turns) -> list[tuple[str, float]]:
    named = [(recipe.bm25_list, recipe.bm25_weight)]
    named += [(name, w) for name, w in recipe.dense if w > 0]
    scored = [lists.lists[name][:recipe.candidates] for name, _ in named]
    return fuse_base(scored, [w for _, w in named], method=recipe.fusion, rrf_k=RRF_K,
                     neighbour_share=recipe.neighbour, predecessor=lambda: turns.predecessor)


def _boosted(recipe: Recipe, base: list[tuple[str, float]], lists: QuestionLists,
             turns: Turns) -> list[str]:
    month = recipe.time_mode == "month"
    question = lists.question.question
    fused = boost(base, date_boost=recipe.date_boost, when_boost=recipe.when_boost,
                  times=lambda: turns.time_matches(question, month),
                  entity_boost=recipe.entity_boost,
                  entity_shares=lambda: turns.entity_shares(question))
    return [key for key, _ in fused]


def rank(recipe: Recipe, lists: QuestionLists, turns: Turns) -> list[str]:
    """The recipe's ranked dia_ids for one question: fusion.fuse_hybrid's two halves."""
    return _boosted(recipe, _base(recipe, lists, turns), lists, turns)


def base_key(recipe: Recipe) -> tuple:
    """What the fused, spread list depends on (recipes equal in it share it)."""
    return (recipe.bm25_list, recipe.dense, recipe.fusion, recipe.candidates, recipe.neighbour)


@dataclass
class Scores:
    """Per-question recalls of one recipe: recall[k][i] for question i."""

    recall: dict[int, list[float]] = field(default_factory=dict)


def score_all(recipes: Sequence[Recipe], questions: Sequence[QuestionLists],
              turns: dict[str, Turns]) -> dict[Recipe, Scores]:
    """Every recipe's scores; the fusion shared by recipes that differ only in their boosts is
    computed once per question (what makes thousands of recipes scoreable)."""
    groups: dict[tuple, list[Recipe]] = {}
    for recipe in recipes:
        groups.setdefault(base_key(recipe), []).append(recipe)
    out = {r: Scores({k: [] for k in KS}) for r in recipes}
    for group in groups.values():
        for lists in questions:
            conversation = turns[lists.question.conversation]
            base = _base(group[0], lists, conversation)
            for recipe in group:
                ranked = [[t] for t in _boosted(recipe, base, lists, conversation)]
                for k in KS:
                    out[recipe].recall[k].append(
                        evidence_recall(ranked, lists.question.evidence, k))
    return out


def score(recipe: Recipe, questions: Sequence[QuestionLists],
          turns: dict[str, Turns]) -> Scores:
    out = Scores({k: [] for k in KS})
    for lists in questions:
        ranked = [[t] for t in rank(recipe, lists, turns[lists.question.conversation])]
        for k in KS:
            out.recall[k].append(evidence_recall(ranked, lists.question.evidence, k))
    return out


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


@dataclass(frozen=True)
class Fold:
    held_out: str
    chosen: Recipe
    train_objective: float  # mean of R@5 and R@10 on the four training conversations
    held_out_recall: dict[int, float]


@dataclass(frozen=True)
class CrossValidation:
    folds: list[Fold]
    held_out: dict[int, list[float]]  # k -> each question's recall under its fold's recipe


def cross_validate(recipes: Sequence[Recipe], scores: dict[Recipe, Scores],
                   questions: Sequence[QuestionLists]) -> CrossValidation:
    """One fold per conversation: the recipe best on the others, scored on it."""
    conversations = sorted({q.question.conversation for q in questions})
    folds, held_out = [], {k: [0.0] * len(questions) for k in KS}
    for held in conversations:
        train = [i for i, q in enumerate(questions) if q.question.conversation != held]
        test = [i for i, q in enumerate(questions) if q.question.conversation == held]

        def objective(recipe: Recipe) -> float:
            return _mean(_mean(scores[recipe].recall[k][i] for i in train) for k in KS)
        # Ties go to the earlier recipe: grid order puts the simpler settings first.
        chosen = max(recipes, key=objective)
        folds.append(Fold(held, chosen, objective(chosen),
                          {k: _mean(scores[chosen].recall[k][i] for i in test) for k in KS}))
        for i in test:
            for k in KS:
                held_out[k][i] = scores[chosen].recall[k][i]
    return CrossValidation(folds, held_out)


def category_table(per_question: dict[int, Sequence[float]],
                   questions: Sequence[QuestionLists]) -> dict:
    """{"all"|category: {k: recall}} from per-question recalls (k -> recall of question i)."""
    groups = {"all": list(range(len(questions)))}
    for c in CATEGORY_NAMES:
        groups[c] = [i for i, q in enumerate(questions) if q.question.category == c]
    return {g: {str(k): round(_mean(per_question[k][i] for i in idx), 4) for k in KS}
            for g, idx in groups.items()}


def summary(folds: Sequence[Fold]) -> dict:
    """Mean, population standard deviation, min and max of the held-out recalls."""
    out = {}
    for k in KS:
        values = [f.held_out_recall[k] for f in folds]
        out[str(k)] = {"mean": round(_mean(values), 4), "sd": round(statistics.pstdev(values), 4),
                       "min": round(min(values), 4), "max": round(max(values), 4)}
    return out


def grid(dense_names: Sequence[str], stop_words: Sequence[str], context_turns: Sequence[int],
         dense_weights: Sequence[float], candidates: Sequence[int],
         neighbours: Sequence[float], fusions: Sequence[str],
         date_boosts: Sequence[float] = (0.0,), when_boosts: Sequence[float] = (0.0,),
         bm25_dates: Sequence[bool] = (False,), time_mode: str = "reader",
         entity_boosts: Sequence[float] = (0.0,)) -> list[Recipe]:
    """Every combination; each dense embedder takes a weight from dense_weights (0 = off), the
    dense weights summing below 1 (BM25 keeps the rest)."""
    out = []
    for stop, ctx, fusion, cand, nb, date, when, dates, entity in itertools.product(
            stop_words, context_turns, fusions, candidates, neighbours, date_boosts,
            when_boosts, bm25_dates, entity_boosts):
        for weights in itertools.product(dense_weights, repeat=len(dense_names)):
            if sum(weights) >= 1.0 - 1e-9:
                continue
            out.append(Recipe(stop, ctx, tuple(zip(dense_names, weights)), fusion, cand, nb,
                              date, when, dates, entity, time_mode))
    return out
