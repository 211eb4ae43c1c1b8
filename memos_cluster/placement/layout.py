"""The shard layout: which shard owns each cube. Pure bookkeeping, persisted by the directory.

A layout is the consistent-hash ring (shard ids, virtual nodes) plus *pins*: cubes that stay on
the shard holding them until a rebalance has copied them to their ring owner. Each change bumps
`epoch`. Every gateway and every shard holds a copy: gateways route by it, shards refuse cubes
they do not own under it (`WrongShard`), so a gateway with an old copy learns and re-routes
instead of writing to the wrong place.

Who uses it: the cube directory (owner; persists it with `LayoutStore`), `routing.Router`
(gateways), `ownership.CubeGuard` (shards).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Mapping, Optional

from memos_cluster.core.fileutil import write_atomically
from memos_cluster.placement.shardmap import HashRing


@dataclass(frozen=True)
class Move:
    cube_id: str
    source: str
    target: str


@dataclass(frozen=True)
class Layout:
    shard_ids: tuple[str, ...]  # the ring's shards: where new and moved cubes go
    virtual_nodes: int = 64
    pins: Mapping[str, str] = field(default_factory=dict)  # cube -> shard holding it for now
    epoch: int = 0
    # Pinned cubes being copied right now: their shard refuses writes to them. Persisted, so a
    # shard restarted mid-copy keeps refusing (nothing is written behind the copy's back).
    moving: tuple[str, ...] = ()
    ring: HashRing = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ring", HashRing(tuple(self.shard_ids), self.virtual_nodes))
        object.__setattr__(self, "pins", dict(self.pins))
        object.__setattr__(self, "moving", tuple(sorted(self.moving)))
        stray = set(self.moving) - set(self.pins)
        if stray:
            raise ValueError(f"cubes moving without a pin: {sorted(stray)}")

    def owner(self, cube_id: str) -> str:
        """The shard that serves cube_id now."""
        return self.pins.get(cube_id) or self.ring.shard_for(cube_id)

    def group_by_shard(self, cube_ids: Iterable[str]) -> dict[str, list[str]]:
        """Cube ids grouped by owning shard, preserving first-seen order within a shard."""
        groups: dict[str, list[str]] = {}
        for cube_id in cube_ids:
            groups.setdefault(self.owner(cube_id), []).append(cube_id)
        return groups

    def live_shards(self) -> tuple[str, ...]:
        """Shards that serve something: the ring's, plus those still holding pinned cubes."""
        extra = sorted(set(self.pins.values()) - set(self.shard_ids))
        return tuple(self.shard_ids) + tuple(extra)

    def moves(self) -> list[Move]:
        """Pinned cubes and where the ring wants them, in cube order."""
        return [Move(c, s, self.ring.shard_for(c)) for c, s in sorted(self.pins.items())]

    def resharded(self, shard_ids: tuple[str, ...], placement: Mapping[str, str]) -> "Layout":
        """The layout for a new set of ring shards. `placement` is where every existing cube
        lives now (cube -> shard); cubes whose ring owner changes are pinned where they are, so
        nothing is routed to a shard that does not hold it yet."""
        if not shard_ids:
            raise ValueError("a layout needs at least one shard")
        ring = HashRing(tuple(shard_ids), self.virtual_nodes)
        if self.moving:
            raise ValueError(f"cubes {list(self.moving)} are being moved; reshard afterwards")
        pins = {c: s for c, s in placement.items() if ring.shard_for(c) != s}
        return Layout(tuple(shard_ids), self.virtual_nodes, pins, self.epoch + 1)

    def begin_move(self, cube_id: str) -> "Layout":
        """Writes to cube_id stop (its copy starts)."""
        if cube_id not in self.pins:
            raise KeyError(f"cube {cube_id!r} is not pinned")
        moving = self.moving + (() if cube_id in self.moving else (cube_id,))
        return replace(self, moving=moving, epoch=self.epoch + 1)

    def abort_move(self, cube_id: str) -> "Layout":
        """The copy failed: writes resume where the cube is (it stays pinned, to retry)."""
        moving = tuple(c for c in self.moving if c != cube_id)
        return replace(self, moving=moving, epoch=self.epoch + 1)

    def moved(self, cube_id: str) -> "Layout":
        """The layout once cube_id has been copied to its ring owner (unpinned)."""
        if cube_id not in self.pins:
            raise KeyError(f"cube {cube_id!r} is not pinned")
        pins = {c: s for c, s in self.pins.items() if c != cube_id}
        moving = tuple(c for c in self.moving if c != cube_id)
        return replace(self, pins=pins, moving=moving, epoch=self.epoch + 1)

    def to_json(self) -> str:
        return json.dumps({"epoch": self.epoch, "shard_ids": list(self.shard_ids),
                           "virtual_nodes": self.virtual_nodes, "pins": dict(self.pins),
                           "moving": list(self.moving)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Layout":
        data = json.loads(text)
        return cls(tuple(data["shard_ids"]), int(data["virtual_nodes"]),
                   dict(data.get("pins", {})), int(data["epoch"]), tuple(data.get("moving", ())))


class LayoutStore:
    """The directory's durable copy of the layout: one JSON file, replaced atomically (written
    beside it, fsynced, renamed), so a crash leaves the old or the new layout, never half.
    Shards read it when they start, so a restarted shard enforces ownership at once."""

    def __init__(self, path: Path):
        self._path = Path(path)

    def load(self) -> Optional[Layout]:
        if not self._path.exists():
            return None
        return Layout.from_json(self._path.read_text())

    def save(self, layout: Layout) -> None:
        write_atomically(self._path, layout.to_json().encode())


def placement_of(layout: Layout, holdings: Mapping[str, Iterable[str]]
                 ) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Where each cube lives, from what each shard holds (shard -> cube ids), and the stale
    copies that are safe to drop: (shard, cube) where the cube's owner holds it too (left by a
    move interrupted after its commit). A cube held only away from its owner is placed where
    it is (a rebalance pins it there). Who calls it: the directory, before a rebalance."""
    holders: dict[str, list[str]] = {}
    for shard_id, cubes in holdings.items():
        for cube_id in cubes:
            holders.setdefault(cube_id, []).append(shard_id)
    placement, stale = {}, []
    for cube_id, shards in sorted(holders.items()):
        owner = layout.owner(cube_id)
        if owner in shards:
            placement[cube_id] = owner
            stale += [(s, cube_id) for s in sorted(shards) if s != owner]
        elif len(shards) == 1:
            placement[cube_id] = shards[0]
        else:
            raise ValueError(f"cube {cube_id!r} is on {sorted(shards)}, none its owner {owner}")
    return placement, stale
