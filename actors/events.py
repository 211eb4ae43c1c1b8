"""Access events from a gateway to the scheduler actor: recorded without waiting (a bounded
buffer that drops and counts when full), shipped in batches by a background task.

Who uses it: `actors.gateway.MemoryGateway`, one per replica.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Optional

from ray.exceptions import RayError

from memos_cluster.core.config import MemosConfig
from memos_cluster.core.errors import MemosError
from memos_cluster.scheduler.frequency import AccessEvent, EventBuffer

from actors import metrics
from actors.handles import SchedulerHandle

logger = logging.getLogger(__name__)


class AccessShipper:
    def __init__(self, config: MemosConfig, scheduler: Optional[SchedulerHandle]):
        """`scheduler`: the scheduler actor's handle, or None when it is disabled."""
        self._config = config.scheduler
        self._scheduler = scheduler
        self._events = EventBuffer(config.scheduler.event_buffer)
        self._task: Optional[asyncio.Task] = None

    def note(self, used: list[tuple[str, str, int]], kind: str, query: str = "") -> None:
        """Record accesses (cube, memory id, version) of one request, and the query that
        made them (Search, Generate); never waits."""
        if self._scheduler is None or not used:
            return
        now = time.time()
        self._events.add(AccessEvent(c, m, v, kind, now, query) for c, m, v in used)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._ship())

    async def _ship(self) -> None:
        """Every `scheduler.flush_interval_s`, send buffered events in batches. A batch the
        scheduler does not take (restarting, gone) is dropped and counted, not retried."""
        reported = counted = 0
        while True:
            await asyncio.sleep(self._config.flush_interval_s)
            metrics.set_gauge("memos_access_events_queued", len(self._events))
            metrics.inc("memos_access_events_dropped_total", self._events.num_dropped - counted)
            counted = self._events.num_dropped
            while len(self._events):
                batch = self._events.drain(self._config.event_batch)
                dropped, reported = self._events.num_dropped - reported, self._events.num_dropped
                try:
                    await self._scheduler.record(batch, dropped)
                except (MemosError, RayError) as exc:
                    self._events.num_dropped += len(batch)
                    logger.warning("%d access events dropped: scheduler unavailable (%s)",
                                   len(batch), type(exc).__name__)
                    break
