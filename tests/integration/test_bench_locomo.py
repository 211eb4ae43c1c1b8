"""`bench locomo` through the session's gateway, on a small LoCoMo-shaped conversation."""
import json

import pytest

from memos_cluster.bench.locomo import run_locomo_bench
from locomo_shapes import locomo_sample

TOPICS = ["pottery class", "camping trip", "violin lessons", "marathon training",
          "adoption agency", "beach sunrise painting", "book club", "garden tomatoes"]


def sample(sample_id: str) -> dict:
    turns = []
    for i, topic in enumerate(TOPICS, 1):
        turns.append({"speaker": "Ann", "dia_id": f"D1:{2 * i - 1}",
                      "text": f"I started going to {topic} last week"})
        turns.append({"speaker": "Bo", "dia_id": f"D1:{2 * i}", "text": "That sounds great!"})
    qa = [{"question": f"When did Ann start {topic}?", "answer": "last week",
           "evidence": [f"D1:{2 * i - 1}"], "category": 2 if i % 2 else 4}
          for i, topic in enumerate(TOPICS, 1)]
    qa.append({"question": "unlabelled", "answer": "x", "category": 5})
    return locomo_sample(sample_id, turns, qa)


@pytest.mark.parametrize("client", ["grpc"], indirect=True)  # the bench, not the transport
def test_bench_locomo_scores_through_the_gateway(client, tmp_path):
    path = tmp_path / "mini-locomo.json"
    path.write_text(json.dumps([sample("conv-a"), sample("conv-b")]))
    lines = []
    result = run_locomo_bench(client, str(path), conversations=["conv-a"], ks=(1, 5),
                              say=lines.append)
    assert result["n_questions"] == len(TOPICS)  # one conversation, labelled questions only
    assert set(result["recall"]) == {"all", "1", "2", "3", "4", "5"}
    assert result["recall"]["all"]["5"] == 1.0  # every topic is named once: easy to find
    assert result["recall"]["all"]["1"] >= 0.75
    assert set(result["baselines"]) == {"bm25", "dense"}
    assert result["search_ms"]["p50"] > 0 and result["ingest_items_per_s"] > 0
    assert list(result["per_conversation"]) == ["conv-a"]
    assert any(line.startswith("all") for line in lines)
    assert not [c for c in client.list_cubes() if c.cube_id.startswith("bench-locomo-")]
