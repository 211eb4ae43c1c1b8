"""Bulk ingest as a Ray job on the session's cluster (job SDK, as `memos-cluster ingest --submit`
does): a generated 3,000-record JSONL, the job stopped part-way, the same job submitted again,
ending with exactly 3,000 memories (no duplicates) and the checkpoint at the end. (Larger runs
are `memos-cluster ingest --bulk`'s measurement in docs/deployment.md, not a test.)"""
import json
import time
from pathlib import Path

import pytest
from ray.job_submission import JobStatus, JobSubmissionClient

from memos_cluster.cli.ingest import job_entrypoint
from memos_cluster.client import MemosClient

RECORDS = 3_000
DEADLINE_S = 300  # per job; the whole ingest takes about 12 s on 2 cores
STOP_AFTER = 1_000  # records checkpointed before the first job is stopped


@pytest.fixture
def jsonl(tmp_path):
    path = tmp_path / "bulk.jsonl"
    with open(path, "w") as f:
        for i in range(RECORDS):
            f.write(json.dumps({"text": f"bulk note {i}: item {i % 97} of batch {i // 97}",
                                "metadata": {"n": i}}) + "\n")
    return path


def done_so_far(checkpoint: Path) -> int:
    try:
        return json.loads(checkpoint.read_text())["done"]
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


def wait_for(client, job_id, statuses):
    deadline = time.monotonic() + DEADLINE_S
    while (status := client.get_job_status(job_id)) not in statuses:
        assert time.monotonic() < deadline, client.get_job_logs(job_id)[-3000:]
        time.sleep(1)
    return status


def test_a_stopped_bulk_ingest_job_resumes_to_an_exact_count(jsonl, tmp_path, config,
                                                             grpc_address):
    cube, checkpoint = "bulk-3k", tmp_path / "ckpt" / "bulk.json"
    argv = ["--set", f"data_dir={config.data_dir}", "--set", "scheduler.enabled=false",
            "ingest", str(jsonl), "--cube", cube, "--workers", "2", "--batch-size", "500",
            "--checkpoint", str(checkpoint), "--submit"]
    entrypoint = job_entrypoint(argv)
    assert "--submit" not in entrypoint and "--bulk" in entrypoint
    jobs = JobSubmissionClient(f"http://127.0.0.1:{config.ray.dashboard_port}")
    first = jobs.submit_job(entrypoint=entrypoint)
    deadline = time.monotonic() + DEADLINE_S
    while done_so_far(checkpoint) < STOP_AFTER:
        assert jobs.get_job_status(first) in (JobStatus.PENDING, JobStatus.RUNNING), \
            jobs.get_job_logs(first)[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.5)
    jobs.stop_job(first)
    assert wait_for(jobs, first, {JobStatus.STOPPED, JobStatus.FAILED}) != JobStatus.SUCCEEDED
    stopped_at = done_so_far(checkpoint)
    assert STOP_AFTER <= stopped_at < RECORDS
    try:
        second = jobs.submit_job(entrypoint=entrypoint)
        status = wait_for(jobs, second, {JobStatus.SUCCEEDED, JobStatus.FAILED,
                                         JobStatus.STOPPED})
        logs = jobs.get_job_logs(second)
        assert status == JobStatus.SUCCEEDED, logs[-3000:]
        assert f"({stopped_at} done by an earlier run)" in logs
        assert done_so_far(checkpoint) == RECORDS
        with MemosClient(grpc_address, timeout_s=120) as client:
            assert client.get_cube(cube).num_memories == RECORDS  # each record exactly once
            ends = client.get(cube, ["r000000000", f"r{stopped_at:09d}", f"r{RECORDS - 1:09d}"])
            assert ends.missing_ids == ()
            assert ends.items[-1].text.startswith(f"bulk note {RECORDS - 1}:")
            assert client.search(cube, "bulk note 2321", top_k=1)[0].item.id == "r000002321"
    finally:
        with MemosClient(grpc_address, timeout_s=120) as client:
            client.delete_cube(cube)
