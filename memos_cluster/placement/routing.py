"""Gateway-side routing of cubes to shard ports by the layout (layout.py).

A shard refuses a cube it does not own (`WrongShard`, nothing done): the router then refreshes its
layout from the directory and re-routes; likewise when the layout names a shard that has no
actor (`ShardMissing`: a reshard removed it after this router last refreshed). A write to a cube
being moved is refused too (`CubeMoving`, nothing done): the router waits and retries, with
backoff, until the move is over or `move_wait_s` has passed. The refusals happen before a shard
does anything, so a retried write is never applied twice.

Who calls it: `MemoryService`, for every request; the gateway and the scheduler build one.
"""
from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable, Mapping, Optional, Sequence, TypeVar, Union

from memos_cluster.core.errors import CubeMoving, ShardMissing, WrongShard
from memos_cluster.placement.layout import Layout
from memos_cluster.placement.shardmap import HashRing

T = TypeVar("T")
FIRST_BACKOFF_S = 0.05
MAX_BACKOFF_S = 1.0


class Router:
    def __init__(self, layout: Union[Layout, HashRing], ports: Union[Mapping, Callable],
                 refresh: Optional[Callable[[], Awaitable[Layout]]] = None,
                 move_wait_s: float = 30.0, clock: Callable[[], float] = time.monotonic):
        if isinstance(layout, HashRing):
            layout = Layout(layout.shard_ids, layout.virtual_nodes)
        self._layout = layout
        if callable(ports):
            self._port_for, self._ports = ports, {}
        else:
            missing = set(layout.live_shards()) - set(ports)
            if missing:
                raise ValueError(f"the layout names shards without a port: {sorted(missing)}")
            self._port_for, self._ports = None, dict(ports)
        self._refresh = refresh
        self._move_wait_s = move_wait_s
        self._clock = clock

    @property
    def layout(self) -> Layout:
        return self._layout

    def port(self, shard_id: str):
        if shard_id not in self._ports:
            if self._port_for is None:
                raise KeyError(f"no port for shard {shard_id!r}")
            self._ports[shard_id] = self._port_for(shard_id)
        return self._ports[shard_id]

    def live_ports(self) -> dict[str, object]:
        return {s: self.port(s) for s in self._layout.live_shards()}

    async def refresh(self) -> Layout:
        """Fetch the directory's layout (newer epochs only replace the one held)."""
        if self._refresh is not None:
            fresh = await self._refresh()
            if fresh.epoch >= self._layout.epoch:
                self._layout = fresh
        return self._layout

    async def call(self, cube_id: str, op: Callable[[object], Awaitable[T]]) -> T:
        """op(port of the cube's shard), re-routed and retried as the module says."""
        results = await self.call_many([cube_id], lambda port, _: _as_list(op(port)))
        return results[0]

    async def call_many(self, cube_ids: Sequence[str],
                        op: Callable[[object, list[str]], Awaitable[list]]) -> list:
        """op(port, cubes of that shard) once per owning shard, concurrently; their results
        concatenated. A shard that refuses has its cubes regrouped by a fresher layout."""
        deadline = self._clock() + self._move_wait_s

        async def group(shard_id: str, cubes: list[str]) -> list:
            backoff = FIRST_BACKOFF_S
            while True:
                try:
                    return await op(self.port(shard_id), cubes)
                except (WrongShard, ShardMissing, CubeMoving):
                    if self._refresh is None or self._clock() > deadline:
                        raise
                before = self._layout.epoch
                layout = await self.refresh()
                if layout.epoch == before:  # nothing new yet: the move is still running
                    await asyncio.sleep(backoff)
                    backoff = min(2 * backoff, MAX_BACKOFF_S)
                regrouped = layout.group_by_shard(cubes)
                if list(regrouped) != [shard_id]:
                    parts = await asyncio.gather(*(group(s, c) for s, c in regrouped.items()))
                    return [r for part in parts for r in part]

        parts = await asyncio.gather(*(group(s, c) for s, c in
                                       self._layout.group_by_shard(cube_ids).items()))
        return [r for part in parts for r in part]


async def _as_list(awaitable: Awaitable[T]) -> list[T]:
    return [await awaitable]
