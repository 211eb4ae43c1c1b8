"""SchedulerActor: the one tier scheduler of a cluster (`memos_cluster.scheduler`).

An async actor: gateways send it batches of access events (`record`, fire-and-forget), a loop runs
a cycle every `scheduler.interval_s` and checkpoints every `scheduler.checkpoint_interval_s`; it
can be paused, resumed and asked to run a cycle now. Named and detached with `max_restarts=-1`:
a restarted scheduler restores its last checkpoint (frequencies included).
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Optional, Sequence

import ray

from memos_cluster.core.config import MemosConfig
from memos_cluster.core.logs import configure_json_logging
from memos_cluster.core.tier_types import SchedulerStatus
from memos_cluster.scheduler.frequency import AccessEvent
from memos_cluster.scheduler.policy import MigrationPlan
from memos_cluster.scheduler.scheduler import Scheduler

from actors import metrics
from actors.services import build_services
from actors.names import SCHEDULER_ACTOR_NAME

logger = logging.getLogger(__name__)



class SchedulerActor:
    def __init__(self, config: MemosConfig):
        configure_json_logging("scheduler")
        self._config = config.scheduler
        services = build_services(config)
        self._scheduler = Scheduler(config, services.activation, services.parametric,
                                    config.scheduler_state_path(), memory=services.memory)
        self.restored = self._scheduler.restore()
        self._loop: Optional[asyncio.Task] = None
        self._last_plan = MigrationPlan()
        self._expired_total = 0  # memories expired by this actor's cycles
        self._last_checkpoint_s = time.monotonic()

    def _ensure_loop(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop().create_task(self._run_forever())

    async def _run_forever(self) -> None:
        """Cycles and checkpoints until the actor dies. A failed cycle is logged and the next
        one plans again from fresh state (the scheduler's retry)."""
        while True:
            await asyncio.sleep(self._config.interval_s)
            try:
                self._last_plan = await self._cycle()
            except Exception:  # the edge: keep scheduling; the trace goes to the actor log
                metrics.inc("memos_migrations_total", action="failed")
                logger.exception("scheduler cycle failed")
            if time.monotonic() - self._last_checkpoint_s >= self._config.checkpoint_interval_s:
                await self._checkpoint()

    async def _cycle(self) -> MigrationPlan:
        """One cycle, counted in the migration and tier metrics."""
        plan = await self._scheduler.cycle()
        self._expired_total += len(plan.expired)
        for action, count in (("promote", len(plan.promoted)), ("demote", len(plan.demoted)),
                              ("consolidate", len(plan.consolidate)),
                              ("retire", len(plan.retire)), ("merge", len(plan.merge)),
                              ("expire", len(plan.expired))):
            metrics.inc("memos_migrations_total", count, action=action)
        metrics.set_gauge("memos_tier_memories", self._scheduler.num_tracked, tier="tracked")
        metrics.set_gauge("memos_tier_memories", self._scheduler.num_active, tier="activation")
        return plan

    async def _checkpoint(self) -> None:
        await asyncio.to_thread(self._scheduler.checkpoint)
        self._last_checkpoint_s = time.monotonic()

    async def start(self) -> SchedulerStatus:
        """Who calls it: the gateway after creating (or finding) the actor."""
        self._ensure_loop()
        return await self.status()

    async def record(self, events: Sequence[AccessEvent], num_dropped: int = 0) -> None:
        self._ensure_loop()
        self._scheduler.record(events, num_dropped)

    async def control(self, action: str) -> SchedulerStatus:
        """status | pause | resume | run (a cycle now)."""
        self._ensure_loop()
        if action == "pause":
            self._scheduler.paused = True
        elif action == "resume":
            self._scheduler.paused = False
        elif action == "run":
            self._last_plan = await self._cycle()
        if action in ("pause", "resume", "run"):
            await self._checkpoint()
        return await self.status()

    async def status(self) -> SchedulerStatus:
        plan = self._last_plan
        return SchedulerStatus(self._scheduler.paused, self._scheduler.num_events,
                               self._scheduler.num_dropped, self._scheduler.num_tracked,
                               len(plan.promoted), len(plan.demoted), len(plan.consolidate),
                               len(plan.retire), len(plan.expired), self._expired_total)

    async def tier_status(self, cube_id: str):
        return await self._scheduler.tier_status(cube_id)


def create_scheduler_actor(config: MemosConfig):
    """Get or create the cluster's scheduler. Who calls it: the gateway at start-up."""
    return ray.remote(SchedulerActor).options(
        name=SCHEDULER_ACTOR_NAME, namespace=config.ray.namespace, lifetime="detached",
        get_if_exists=True, max_restarts=-1, max_task_retries=0, num_cpus=0,
    ).remote(config)
