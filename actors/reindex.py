"""`memos-cluster reindex` on Ray: the memory reader run again over a cube's stored memories
(cubes stored before the reader existed, or by an older one), a batch at a time through
`MemoryService.reindex` on the cube's shard actor, as bulk ingest reaches the shards: this
driver builds the service over the cluster's shard actors, bypassing the gateway. Runs wherever
`ray.address` points (a `ray job submit` entrypoint on the cluster, or a driver here).

Resuming: the shard reads memories in id order after a cursor and returns the next one; the
cursor is checkpointed (one small JSON file under the data dir, written atomically) after every
acknowledged batch. A killed run, rerun, goes on from the checkpoint; a batch acknowledged after
the last checkpoint is read again, which is safe: reindexing a memory whose structure is
already current changes nothing. A finished pass is recorded as complete; the next run has
nothing to do until `restart` starts a new pass from the first memory.
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Awaitable, Callable, Optional

from memos_cluster.core.config import MemosConfig
from memos_cluster.core.errors import FailedPrecondition, InvalidArgument
from memos_cluster.core.fileutil import write_atomically
from memos_cluster.core.structure import ReindexStep

from actors.cluster import connect_ray
from actors.services import cache_invalidator, memory_service

Step = Callable[[str, int], Awaitable[ReindexStep]]  # (after_id, batch_size) -> one batch
OnStep = Callable[[ReindexStep, "ReindexState"], None]  # after each checkpointed batch


def checkpoint_path(config: MemosConfig, cube_id: str) -> Path:
    """The cube's reindex checkpoint: data_dir/reindex/CUBE.checkpoint.json."""
    return config.data_root() / "reindex" / f"{cube_id}.checkpoint.json"


@dataclass
class ReindexState:
    """One reindex pass over a cube, as checkpointed: where it is and what it did so far (over
    every run of the pass). Rewritten whole after every batch."""

    cube_id: str
    after_id: str = ""  # the last memory id acknowledged; "" before the first batch
    complete: bool = False  # the pass reached the cube's last memory
    num_read: int = 0
    num_changed: int = 0
    seconds: float = 0.0  # time spent in the pass's runs
    total: int = 0  # the cube's current memories at the last batch

    @classmethod
    def load(cls, path: Path, cube_id: str) -> "ReindexState":
        """The checkpoint at `path`, or a fresh pass when there is none."""
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            return cls(cube_id)
        except json.JSONDecodeError as exc:
            raise InvalidArgument(f"reindex checkpoint {path} is not JSON ({exc}); delete it or "
                                  "run with --restart", "checkpoint") from exc
        if data.get("cube_id") != cube_id:
            raise InvalidArgument(f"reindex checkpoint {path} is for cube "
                                  f"{data.get('cube_id')!r}, not {cube_id!r}", "checkpoint")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, path: Path) -> None:
        write_atomically(path, json.dumps(asdict(self), indent=1).encode())


@dataclass(frozen=True)
class ReindexReport:
    """What one run did, and the pass's state after it. Who reads it: `memos-cluster reindex`
    (the summary line) and the tests."""

    state: ReindexState
    read: int  # memories read by this run
    changed: int  # of them, rewritten
    earlier_read: int  # read by earlier runs of the same pass (from the checkpoint)
    seconds: float  # this run
    already_complete: bool  # the pass was complete before this run: it did nothing


async def run_reindex(step: Step, state: ReindexState, path: Path, batch_size: int,
                      max_batches: Optional[int] = None,
                      on_step: Optional[OnStep] = None) -> ReindexReport:
    """Call `step` batch after batch from the state's cursor, checkpointing after each, until
    the cube is done or `max_batches` batches ran (a test's interruption). Independent of Ray:
    `reindex_cube` gives it MemoryService.reindex. A complete state returns at once."""
    if batch_size < 1:
        raise InvalidArgument("--batch-size must be at least 1", "batch_size")
    earlier, already = state.num_read, state.complete
    started = since = time.monotonic()
    read, changed, batches = 0, 0, 0
    while not state.complete and (max_batches is None or batches < max_batches):
        result = await step(state.after_id, batch_size)
        _check_progress(state.after_id, result)
        now = time.monotonic()
        read, changed, batches = read + result.num_read, changed + result.num_changed, batches + 1
        state.num_read += result.num_read
        state.num_changed += result.num_changed
        state.seconds = round(state.seconds + now - since, 3)
        state.total, since = result.total, now
        state.complete = result.next_after is None
        state.after_id = result.next_after if result.next_after is not None else state.after_id
        state.save(path)
        if on_step is not None:
            on_step(result, state)
    return ReindexReport(state, read, changed, earlier, round(time.monotonic() - started, 3),
                         already)


def _check_progress(after_id: str, result: ReindexStep) -> None:
    """A step that is not done must move the cursor forward, or the loop would never end. (It
    may read none: memories deleted between the shard listing their ids and reading them.)"""
    if result.next_after is not None and result.next_after <= after_id:
        raise FailedPrecondition(f"reindex did not advance past {after_id!r} (next "
                                 f"{result.next_after!r})")


def reindex_cube(config: MemosConfig, cube_id: str, batch_size: int, restart: bool = False,
                 max_batches: Optional[int] = None,
                 on_step: Optional[OnStep] = None) -> ReindexReport:
    """Who calls it: `memos-cluster reindex` (here or as a Ray job's entrypoint) and
    tests/integration/test_reindex.py. Joins Ray (`connect_ray`), checks the cube exists, then
    runs the pass from its checkpoint (from the first memory with `restart`)."""
    connect_ray(config)
    memory = memory_service(config)
    invalidate = cache_invalidator(config)
    path = checkpoint_path(config, cube_id)
    state = ReindexState(cube_id) if restart else ReindexState.load(path, cube_id)

    async def step(after_id: str, size: int) -> ReindexStep:
        result = await memory.reindex(cube_id, after_id, size)
        if result.changed_ids:  # their prompts changed: caches built on them must go
            await invalidate(cube_id, list(result.changed_ids))
        return result

    async def run() -> ReindexReport:
        await memory.get_cube(cube_id)  # NotFound before a checkpoint is written
        if restart:
            state.save(path)
        return await run_reindex(step, state, path, batch_size, max_batches, on_step)

    return asyncio.run(run())
