"""Bulk ingest on Ray (memos_cluster/bulk.py does the reading, batching and checkpointing): a
pool of embedder actors works ahead on the next batches while this driver writes earlier ones
straight to the shard actors, bypassing the gateway. Runs wherever `ray.address` points (a
`ray job submit` entrypoint on the cluster, or locally); rerun the same command to resume.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Iterable, Iterator, Optional

import numpy as np
import ray
from ray.util import ActorPool

from memos_cluster.core.config import MemosConfig
from memos_cluster.core.errors import AlreadyExists
from memos_cluster.core.types import CubeSpec
from memos_cluster.data.bulk import (
    Checkpoint, IngestReport, check_complete, count_records, read_records, run_ingest)
from memos_cluster.embed import make_embedder

from actors.cluster import connect_ray
from actors.services import memory_service

AHEAD_PER_WORKER = 2  # batches queued per embedder beyond the one it is working on


class EmbedderActor:
    """One embedding model (the shards' own, so vectors match what they would compute)."""

    def __init__(self, config: MemosConfig):
        self._embedder = make_embedder(config.embedder, str(config.model_cache_dir()))

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._embedder.embed(texts), dtype=np.float32)


def _embed_ahead(actors: list, batches: Iterable[list[str]]) -> Iterator[np.ndarray]:
    """Vectors of each batch, in order, keeping every actor busy but never reading more than
    AHEAD_PER_WORKER batches per actor ahead of the writer."""
    pool, in_flight = ActorPool(actors), 0
    for texts in batches:
        if in_flight >= len(actors) * (1 + AHEAD_PER_WORKER):
            yield pool.get_next()
            in_flight -= 1
        pool.submit(lambda actor, batch: actor.embed.remote(batch), texts)
        in_flight += 1
    while pool.has_next():
        yield pool.get_next()


def bulk_ingest(config: MemosConfig, path: str, fmt: str, cube_id: str, workers: int,
                batch_size: int, checkpoint_uri: str, id_prefix: str = "r",
                progress: Optional[Any] = None) -> IngestReport:
    """Who calls it: `memos-cluster ingest --bulk`."""
    connect_ray(config)
    memory = memory_service(config)
    try:
        asyncio.run(memory.create_cube(CubeSpec(cube_id, description=f"bulk ingest of {path}")))
    except AlreadyExists:
        pass  # a resumed run, or a cube that already holds other memories
    checkpoint = Checkpoint(checkpoint_uri, path, cube_id).load()
    if progress is not None:
        progress.reset(total=count_records(path, fmt))
        progress.update(checkpoint.done)
    embedder = ray.remote(EmbedderActor).options(num_cpus=0)
    actors = [embedder.remote(config) for _ in range(workers)]

    def write(items, vectors) -> int:
        return asyncio.run(memory.add_embedded(cube_id, items, vectors)).num_inserted

    try:
        report = run_ingest(read_records(path, fmt, id_prefix, skip=checkpoint.done),
                            lambda batches: _embed_ahead(actors, batches), write, checkpoint,
                            batch_size, config.embedder.include_context,
                            progress.update if progress is not None else None)
    finally:
        for actor in actors:
            ray.kill(actor)
    check_complete(report, asyncio.run(memory.get_cube(cube_id)).num_memories, cube_id)
    return report


JOB_POLL_S = 1.0


def run_as_job(dashboard: str, entrypoint: str, show: Callable[[str], None]) -> tuple[str, str]:
    """Submit `entrypoint` as a Ray job (job SDK) and follow its log until it ends; (job id,
    final status). No runtime_env here: the entrypoint's ray.init sets the project's, and Ray
    refuses a job and its driver both setting one. Who calls it: `ingest --submit`."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(dashboard)
    job_id = client.submit_job(entrypoint=entrypoint)
    show(f"submitted Ray job {job_id} to {dashboard}\n")
    printed = 0
    while True:
        status = client.get_job_status(job_id)
        logs = client.get_job_logs(job_id)
        show(logs[printed:])
        printed = len(logs)
        if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
            return job_id, status.value
        time.sleep(JOB_POLL_S)
