"""The scheduler: access events in, decayed frequencies kept, plans made (policy.py) and executed
through the tier services, every cycle.

Execution is idempotent: an activation block is *set* (not appended), a training run is started
only when none runs for the cube, retiring a missing version is done already. A step that fails
(a shard restarting, a memory deleted meanwhile) is logged in the migration log and the next
cycle plans again from fresh state: that is the retry. Memories are never deleted or rewritten
by the scheduler, so none can be lost or duplicated by it.

State (frequencies, activation times, last trainings, the migration log, paused) is
checkpointed as JSON, written atomically, and restored on start.

Who uses it: the scheduler actor (`actors/scheduler.py`) owns one; tests drive one in-process
with an injected clock.
"""
from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable, Optional, Sequence

from memos_cluster.core.config import MemosConfig
from memos_cluster.core.errors import MemosError, NotFound
from memos_cluster.core.fileutil import write_atomically
from memos_cluster.core.tier_types import MemoryTier, Migration, TierStatus, current_of
from memos_cluster.scheduler.questions import QuestionLog
from memos_cluster.scheduler.frequency import AccessEvent, FrequencyTable
from memos_cluster.scheduler.policy import (
    CubeState, MemoryState, MigrationPlan, Snapshot, plan)
from memos_cluster.tiers.activation.service import ActivationService
from memos_cluster.tiers.parametric.service import ParametricService
from memos_cluster.tiers.plaintext.service import MemoryService


class Scheduler:
    def __init__(self, config: MemosConfig, activation: ActivationService,
                 parametric: ParametricService, state_path: Path,
                 clock: Callable[[], float] = time.time,
                 memory: Optional[MemoryService] = None):
        """`memory` (the plaintext service) enables near-duplicate merging."""
        self._memory = memory
        self._config = config.scheduler
        self._lifecycle = config.lifecycle
        self._activation = activation
        self._parametric = parametric
        self._state_path = state_path
        self._clock = clock
        self._table = FrequencyTable(config.scheduler.half_life_s)
        self._questions = QuestionLog(config.scheduler.half_life_s,
                                      config.scheduler.max_questions_per_cube)
        self._activated_at: dict[tuple[str, str], float] = {}
        self._last_trained: dict[str, float] = {}
        self._jobs: dict[str, str] = {}  # cube -> training job started by the scheduler
        self._log: deque[Migration] = deque(maxlen=config.scheduler.max_migration_log)
        self.paused = False
        self.num_events = 0
        self.num_dropped = 0  # events dropped by senders' full buffers, as they report

    # ---- events ----------------------------------------------------------------------------
    def record(self, events: Sequence[AccessEvent], num_dropped: int = 0) -> None:
        asked = set()  # a request's events share its query and time: one question each
        for event in events:
            self._table.record(event)
            if event.query and event.kind != "get":
                asked.add((event.cube_id, event.query, event.time_s))
        for cube_id, query, time_s in sorted(asked, key=lambda x: x[2]):
            self._questions.record(cube_id, query, time_s)
        self.num_events += len(events)
        self.num_dropped += num_dropped

    @property
    def num_tracked(self) -> int:
        return len(self._table.stats)

    @property
    def num_active(self) -> int:
        """Memories in activation memory as of the last cycle."""
        return len(self._activated_at)

    def frequency(self, cube_id: str, memory_id: str) -> float:
        return self._table.frequency((cube_id, memory_id), self._clock())

    # ---- a cycle ---------------------------------------------------------------------------
    async def cycle(self) -> MigrationPlan:
        """Plan and execute once (skipped while paused). Who calls it: the actor's loop every
        `scheduler.interval_s`, and RunSchedulerCycle."""
        if self.paused:
            return MigrationPlan()
        now = self._clock()
        expired = await self._expire(now)
        await self._forget_inactive()
        result = replace(plan(await self._snapshot(now), now, self._config), expired=expired)
        await self._execute(result, now)
        self._table.prune(now, self._config.prune_frequency, keep=self._activated_at.keys())
        return result

    async def _expire(self, now: float) -> tuple[tuple[str, str], ...]:
        """Archive or delete (lifecycle.expire_action) the memories past their expiry, on
        every shard; their caches are dropped and the adapters trained on them marked stale
        (reads stopped seeing them the moment they expired)."""
        if self._memory is None:
            return ()
        expired = await self._memory.expire_due()
        for cube_id, ids in sorted(expired.items()):
            await self._activation.invalidate(cube_id, ids, deleted=True)
            await self._parametric.mark_stale(cube_id, ids)
            for memory_id in ids:
                self._table.forget((cube_id, memory_id))
                self._log.append(Migration(now, cube_id, memory_id, "expire",
                                           self._lifecycle.expire_action))
        return tuple((c, m) for c, ids in sorted(expired.items()) for m in ids)

    async def _forget_inactive(self) -> None:
        """Stop tracking memories no longer active (superseded, archived, expired, deleted):
        they must not be planned into activation memory or an adapter again."""
        if self._memory is None:
            return
        by_cube: dict[str, list[str]] = {}
        for cube_id, memory_id in self._table.stats:
            by_cube.setdefault(cube_id, []).append(memory_id)
        for cube_id, ids in sorted(by_cube.items()):
            try:
                found = await self._memory.active_ids(cube_id, ids)
            except NotFound:  # the cube is gone
                found = set()
            for memory_id in set(ids) - found:
                self._table.forget((cube_id, memory_id))

    async def _is_training(self, cube_id: str, now: float) -> bool:
        """Whether the run this scheduler started for the cube is still going; a finished one
        is logged and forgotten."""
        job_id = self._jobs.get(cube_id)
        if job_id is None:
            return False
        try:
            job = await self._parametric.job(job_id)
        except NotFound:  # the trainer restarted and forgot it: the run is gone
            del self._jobs[cube_id]
            return False
        if job.status in ("queued", "running"):
            return True
        del self._jobs[cube_id]
        self._log.append(Migration(now, cube_id, "", "consolidated" if job.status ==
                                   "succeeded" else "failed", f"job {job_id} "
                                   f"{job.status} v{job.version} {job.error}".strip()))
        return False

    async def _snapshot(self, now: float) -> Snapshot:
        cube_ids = sorted({c for c, _ in self._table.stats})
        blocks = await self._activation.selections(cube_ids)
        cubes, held = {}, {}
        for cube_id in cube_ids:
            records = await self._parametric.versions(cube_id)  # one listing a cube
            current = current_of(records)
            held[cube_id] = set(current.memories) if current else set()
            cubes[cube_id] = CubeState(
                cube_id, tuple(blocks.get(cube_id, [])), current.version if current else 0,
                tuple(r.version for r in records if r.stale),
                self._last_trained.get(cube_id, 0.0), await self._is_training(cube_id, now))
        for cube_id, block in blocks.items():  # blocks changed elsewhere: adopt them
            for memory_id in block:
                self._activated_at.setdefault((cube_id, memory_id), now)
        for key in [k for k in self._activated_at if k[1] not in blocks.get(k[0], [])]:
            del self._activated_at[key]
        memories = tuple(
            MemoryState(c, m, s.version, self._table.frequency((c, m), now), s.first_seen_s,
                        s.version_since_s, self._activated_at.get((c, m), 0.0),
                        (m, s.version) in held[c])
            for (c, m), s in sorted(self._table.stats.items()))
        return Snapshot(memories, cubes, num_trainings=len(self._jobs),
                        duplicates=await self._duplicates(memories))

    async def _duplicates(self, memories: Sequence[MemoryState]) -> tuple:
        """Near-duplicates of the hottest tracked memories (a bounded number of searches)."""
        if self._memory is None:
            return ()
        hottest = sorted(memories, key=lambda m: -m.frequency)[:self._config.merge_checks_per_cycle]
        found = []
        for m in hottest:
            try:
                dups = await self._memory.near_duplicates(m.cube_id, m.memory_id,
                                                          self._config.merge_similarity)
            except NotFound:  # deleted since it was accessed
                self._table.forget((m.cube_id, m.memory_id))
                continue
            if dups:
                found.append((m.cube_id, m.memory_id, tuple(i for i, _ in dups)))
        return tuple(found)

    async def _execute(self, result: MigrationPlan, now: float) -> None:
        for cube_id, block in result.activation.items():
            try:
                await self._activation.activate(cube_id, list(block), replace=True)
            except MemosError as exc:  # retried by the next cycle, see module doc
                self._log.append(Migration(now, cube_id, "", "failed", f"activate: {exc}"))
                continue
            for c, m in result.promoted:
                if c == cube_id:
                    self._activated_at[(c, m)] = now
                    self._log.append(Migration(now, c, m, "promote"))
            for c, m in result.demoted:
                if c == cube_id:
                    self._activated_at.pop((c, m), None)
                    self._log.append(Migration(now, c, m, "demote"))
        for cube_id, ids in result.consolidate.items():
            # A cube asked the same questions often gets a question adapter for them (what a
            # small model's adapter can do: docs/parametric.md); else its hot memories'.
            questions = self._questions.frequent(cube_id, now, self._config.question_frequency,
                                                 self._config.max_adapter_questions)
            try:
                if questions:
                    job = await self._parametric.train_questions(cube_id, questions,
                                                                 self._parametric.spec())
                else:
                    job = await self._parametric.train(cube_id, list(ids),
                                                       self._parametric.spec())
            except MemosError as exc:
                self._log.append(Migration(now, cube_id, "", "failed", f"train: {exc}"))
                continue
            self._jobs[cube_id] = job.job_id
            self._last_trained[cube_id] = now
            what = f"{len(questions)} questions" if questions else f"{len(ids)} memories"
            self._log.append(Migration(now, cube_id, "", "consolidate",
                                       f"job {job.job_id} on {what}"))
        for cube_id, keep, merged in result.merge:
            try:
                kept = await self._memory.merge(cube_id, keep, list(merged))
            except MemosError as exc:
                self._log.append(Migration(now, cube_id, keep, "failed", f"merge: {exc}"))
                continue
            await self._activation.invalidate(cube_id, list(merged), deleted=True)
            await self._activation.invalidate(cube_id, [keep], deleted=False)
            for memory_id in merged:
                self._table.forget((cube_id, memory_id))
                self._log.append(Migration(now, cube_id, memory_id, "merge",
                                           f"into {keep} (now v{kept.version})"))
        for cube_id, version in result.retire:
            try:
                await self._parametric.delete(cube_id, version)
            except NotFound:
                pass  # already gone: retiring is idempotent
            self._log.append(Migration(now, cube_id, "", "retire", f"v{version}"))

    # ---- visibility ------------------------------------------------------------------------
    async def tier_status(self, cube_id: str) -> TierStatus:
        now = self._clock()
        block = (await self._activation.selections([cube_id])).get(cube_id, [])
        current = current_of(await self._parametric.versions(cube_id))
        held = set(current.memories) if current else set()
        rows = []
        for (c, m), s in sorted(self._table.stats.items()):
            if c != cube_id:
                continue
            tiers = ("plaintext",) + (("activation",) if m in block else ()) + (
                ("parametric",) if (m, s.version) in held else ())
            rows.append(MemoryTier(m, s.version, round(self._table.frequency((c, m), now), 4),
                                   tiers))
        return TierStatus(tuple(rows), tuple(x for x in self._log if x.cube_id == cube_id))

    # ---- checkpoint ------------------------------------------------------------------------
    def checkpoint(self) -> None:
        state = {"table": self._table.to_json(), "questions": self._questions.to_json(),
                 "activated_at": [[c, m, t] for (c, m), t in self._activated_at.items()],
                 "last_trained": self._last_trained, "jobs": self._jobs,
                 "log": [asdict(x) for x in self._log], "paused": self.paused}
        write_atomically(self._state_path, json.dumps(state).encode())

    def restore(self) -> bool:
        """Load the last checkpoint, if any. Who calls it: the actor when it (re)starts."""
        if not self._state_path.exists():
            return False
        state = json.loads(self._state_path.read_text())
        self._table = FrequencyTable.from_json(state["table"], self._config.half_life_s)
        self._questions = QuestionLog.from_json(state.get("questions", {}),
                                                self._config.half_life_s,
                                                self._config.max_questions_per_cube)
        self._activated_at = {(c, m): t for c, m, t in state["activated_at"]}
        self._last_trained = dict(state["last_trained"])
        self._jobs = dict(state["jobs"])
        self._log.extend(Migration(**x) for x in state["log"])
        self.paused = bool(state["paused"])
        return True
