"""Parametric memory through the gateway (over gRPC: the other transports carry the same
operations, which test_crud and test_errors run over all three; training on the default model
costs ~40 s a run on 2 cores): train a cube's adapter in the
background, list and inspect it, serve it in Generate beside activation memory, mark it stale
when a memory it holds is deleted, cancel a run, delete a version."""
import time

import pytest

from memos_cluster.core.errors import FailedPrecondition, InvalidArgument, NotFound
from memos_cluster.core.tier_types import GenerateStats
from memos_cluster.core.types import NewMemory

FACTS = [NewMemory(text, id=f"f{i}") for i, text in enumerate([
    "Nora keeps bees on the roof of the old cinema",
    "Nora's brother Elias restores wooden sailing boats",
    "Every winter Nora knits scarves for the choir",
    "Nora learned Portuguese while working in Porto",
])]
pytestmark = pytest.mark.parametrize("client", ["grpc"], indirect=True)
TRAIN_TIMEOUT_S = 300
STEPS = 8


def stats_of(client, cube, **kw):
    *_, stats = client.generate(cube, "what does Nora keep?", max_new_tokens=6, **kw)
    assert isinstance(stats, GenerateStats)
    return stats


def test_train_list_serve_and_retire_an_adapter(client, cube, config):
    client.add(cube, FACTS)
    # Few steps: the default model (SmolLM2-135M) takes ~1 s a step on 2 CPU cores.
    job = client.train_adapter(cube, [f.id for f in FACTS], rank=4, steps=STEPS)
    assert job.status in ("queued", "running") and job.cube_id == cube
    done = client.wait_for_training(job.job_id, timeout_s=TRAIN_TIMEOUT_S)
    assert done.status == "succeeded", done.error
    assert done.step == done.steps == STEPS and done.version == 1

    listing = client.adapters(cube)
    assert listing.current_version == 1
    (record,) = listing.adapters
    assert record.memories == tuple((f.id, 1) for f in FACTS)
    assert record.metrics["adapter_loss"] < record.metrics["base_loss"]
    assert record.base["model_id"] == config.activation.model

    # Search marks memories the current adapter holds (after the index's TTL at most).
    hits = client.search(cube, "bees on the roof", top_k=1)
    assert (hits[0].item.id, hits[0].adapter_version) == ("f0", 1)

    plain = stats_of(client, cube)
    adapted = stats_of(client, cube, use_parametric_memory=True)
    assert adapted.adapters_used == (f"{cube}@v1",) and plain.adapters_used == ()
    client.activate(cube, ["f0", "f1"])
    both = stats_of(client, cube, use_parametric_memory=True)
    again = stats_of(client, cube, use_parametric_memory=True)
    assert both.adapters_used == again.adapters_used == (f"{cube}@v1",)
    assert again.prefill_tokens_saved > 0  # activation memory under the adapter, reused

    client.delete(cube, ["f2"])  # the adapter holds f2: it stops being served
    for _ in range(100):  # marked off the request path: allow it a moment
        listing = client.adapters(cube)
        if listing.current_version == 0:
            break
        time.sleep(0.1)
    assert listing.current_version == 0 and listing.adapters[0].stale
    assert stats_of(client, cube, use_parametric_memory=True).adapters_used == ()

    client.delete_adapter(cube, 1)
    assert client.adapters(cube).adapters == ()
    with pytest.raises(NotFound):
        client.delete_adapter(cube, 1)


def test_cancel_and_errors(client, cube):
    client.add(cube, FACTS)
    job = client.train_adapter(cube, ["f0", "f1"], rank=4, steps=50_000)
    with pytest.raises(FailedPrecondition):  # one run per cube at a time
        client.train_adapter(cube, ["f0"], rank=4, steps=5)
    cancelled = client.cancel_training(job.job_id)
    assert cancelled.job_id == job.job_id
    final = client.wait_for_training(job.job_id, timeout_s=TRAIN_TIMEOUT_S)
    assert final.status == "cancelled"
    assert client.adapters(cube).adapters == ()  # nothing written
    with pytest.raises(NotFound):
        client.train_adapter(cube, ["no-such-memory"])
    with pytest.raises(NotFound):
        client.training_job("no-such-job")
    with pytest.raises(InvalidArgument):
        client.train_adapter(cube, ["f0"], rank=10_000)
    with pytest.raises(NotFound):
        client.adapters("no-such-cube-for-adapters")
