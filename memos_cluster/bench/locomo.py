"""`memos-cluster bench locomo`: evidence recall@k on LoCoMo through the running service.

Each conversation goes into its own cube through AddMemories (turn text, speaker, session date,
image captions: what a deployment would have), every question with evidence is asked through the
gRPC Search, and recall@k is scored with k as a budget of dialogue turns
(`memos_cluster/evaluation.py`). The server's default search is the system under test; BM25-only
and dense-only modes of the same system run as baselines in the same run.

Recall@k is read off one search of top_k = max(k) per question (the first k turns of it).
Latency is measured in a separate pass of every question at top_k = 10, the common case.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Optional, Sequence

from memos_cluster.bench.evaluation import CATEGORY_NAMES, RecallTable, locomo_questions
from memos_cluster.bench.stats import percentiles_ms
from memos_cluster.client import MemosClient
from memos_cluster.core.types import SearchHit, SearchMode
from memos_cluster.data.locomo import load_locomo, locomo_memories

BASELINES = (SearchMode.BM25, SearchMode.DENSE)


def hit_turns(hit: SearchHit) -> list[str]:
    """The dialogue turns a hit covers: metadata dia_ids (a list) or dia_id."""
    metadata = hit.item.metadata
    if isinstance(metadata.get("dia_ids"), list):
        return [str(t) for t in metadata["dia_ids"]]
    return [str(metadata["dia_id"])] if "dia_id" in metadata else []


def _ingest(client: MemosClient, samples: list[dict], stamp: str) -> tuple[dict, float]:
    cubes, num_items, elapsed_s = {}, 0, 0.0
    for sample in samples:
        cube = f"bench-locomo-{sample['sample_id']}-{stamp}"
        client.create_cube(cube, description="bench locomo")
        cubes[sample["sample_id"]] = cube
        memories = locomo_memories(sample)
        start = time.perf_counter()
        client.add_many(cube, memories, batch_size=64, in_flight=2)
        elapsed_s += time.perf_counter() - start
        num_items += len(memories)
    return cubes, num_items / max(elapsed_s, 1e-9)


LATENCY_TOP_K = 10


def _score(client: MemosClient, samples: list[dict], cubes: dict, ks: Sequence[int],
           mode: Optional[SearchMode]) -> RecallTable:
    table = RecallTable(tuple(ks))
    for sample in samples:
        for question in locomo_questions(sample):
            hits = client.search(cubes[sample["sample_id"]], question.question,
                                 top_k=max(ks), mode=mode)
            table.add(question, [hit_turns(h) for h in hits])
    return table


def _latencies(client: MemosClient, samples: list[dict], cubes: dict) -> list[float]:
    latencies = []
    for sample in samples:
        for question in locomo_questions(sample):
            start = time.perf_counter()
            client.search(cubes[sample["sample_id"]], question.question, top_k=LATENCY_TOP_K)
            latencies.append(time.perf_counter() - start)
    return latencies


def _report(table: RecallTable) -> dict[str, Any]:
    recall = {"all": table.recall("all")}
    recall.update({c: table.recall(c) for c in CATEGORY_NAMES})
    return recall


def run_locomo_bench(client: MemosClient, data_path: str,
                     conversations: Optional[Sequence[str]] = None,
                     ks: Sequence[int] = (5, 10, 25, 50), keep: bool = False,
                     say: Callable[[str], None] = print) -> dict[str, Any]:
    samples = [s for s in load_locomo(data_path)
               if not conversations or s["sample_id"] in conversations]
    if not samples:
        raise SystemExit(f"none of {conversations} is in {data_path}")
    stamp = str(int(time.time()))
    say(f"ingesting {len(samples)} conversations ...")
    cubes, items_per_s = _ingest(client, samples, stamp)
    try:
        say("scoring the default search ...")
        table = _score(client, samples, cubes, ks, None)
        baselines = {}
        for mode in BASELINES:
            say(f"scoring the {mode.value}-only baseline ...")
            baselines[mode.value] = _report(_score(client, samples, cubes, ks, mode))
        say(f"timing the default search at top_k {LATENCY_TOP_K} ...")
        latencies = _latencies(client, samples, cubes)
    finally:
        if not keep:
            for cube in cubes.values():
                client.delete_cube(cube)
    latency = percentiles_ms(latencies)
    result = {
        "recall": _report(table),
        "n_questions": table.counts["all"],
        "search_ms": {"p50": latency["p50"], "p95": latency["p95"], "p99": latency["p99"],
                      "top_k": LATENCY_TOP_K},
        "ingest_items_per_s": round(items_per_s, 1),
        "per_conversation": {s["sample_id"]: table.recall(s["sample_id"]) for s in samples},
        "baselines": baselines,
        "ks": [str(k) for k in ks],
    }
    print_table(result, say)
    return result


def print_table(result: dict[str, Any], say: Callable[[str], None] = print) -> None:
    ks = result["ks"]
    head = f"{'group':<22}" + "".join(f"{'R@' + k:>8}" for k in ks)
    head += "".join(f"{name + '@10':>10}" for name in result["baselines"])
    say(head)
    rows = [("all", result["recall"]["all"], "all")]
    rows += [(f"{c} {CATEGORY_NAMES[c]}", result["recall"][c], c) for c in CATEGORY_NAMES]
    rows += [(conv, recall, None) for conv, recall in result["per_conversation"].items()]
    for label, recall, key in rows:
        line = f"{label:<22}" + "".join(f"{100 * recall[k]:8.1f}" for k in ks)
        if key is not None:
            line += "".join(f"{100 * b[key].get('10', 0.0):10.1f}"
                            for b in result["baselines"].values())
        say(line)
    say(f"questions: {result['n_questions']}; Search p50 {result['search_ms']['p50']} ms, "
        f"p95 {result['search_ms']['p95']} ms; ingest {result['ingest_items_per_s']} items/s")
