"""Consistent hashing of cube ids onto shards, with virtual nodes. Pure bookkeeping.

The ring is a deterministic function of (shard ids, virtual_nodes): any process that builds it
from the same inputs routes every cube identically, which is what lets gateways cache it.
"""
from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass, field


def _point(key: str) -> int:
    """A stable 64-bit position on the ring (blake2b, not Python's salted hash())."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big")


@dataclass(frozen=True)
class HashRing:
    shard_ids: tuple[str, ...]
    virtual_nodes: int = 64  # points per shard; more points, more even spread
    _points: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _owners: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.shard_ids:
            raise ValueError("a hash ring needs at least one shard")
        if len(set(self.shard_ids)) != len(self.shard_ids):
            raise ValueError(f"duplicate shard ids in {self.shard_ids}")
        if self.virtual_nodes < 1:
            raise ValueError("virtual_nodes must be >= 1")
        pairs = sorted(
            (_point(f"{shard}#{i}"), shard)
            for shard in self.shard_ids
            for i in range(self.virtual_nodes)
        )
        object.__setattr__(self, "_points", tuple(p for p, _ in pairs))
        object.__setattr__(self, "_owners", tuple(s for _, s in pairs))

    def shard_for(self, cube_id: str) -> str:
        """The shard owning cube_id: the first ring point clockwise of the cube's hash."""
        index = bisect.bisect_right(self._points, _point(cube_id)) % len(self._points)
        return self._owners[index]

    def group_by_shard(self, cube_ids: tuple[str, ...] | list[str]) -> dict[str, list[str]]:
        """Cube ids grouped by owning shard, preserving first-seen order within a shard."""
        groups: dict[str, list[str]] = {}
        for cube_id in cube_ids:
            groups.setdefault(self.shard_for(cube_id), []).append(cube_id)
        return groups

    def with_shards(self, shard_ids: tuple[str, ...]) -> "HashRing":
        return HashRing(shard_ids=shard_ids, virtual_nodes=self.virtual_nodes)


def shard_names(num_shards: int) -> tuple[str, ...]:
    """The default shard ids for a cluster of num_shards: shard-0 .. shard-(n-1)."""
    if num_shards < 1:
        raise ValueError("num_shards must be >= 1")
    return tuple(f"shard-{i}" for i in range(num_shards))
