"""Bookkeeping of activation memory, with no tensors: which KV caches exist, what prefix of
memories each holds, where its bytes are, and what must move to respect the byte budgets.

A cache holds the keys and values of one prefill of a *block*: an ordered sequence of memory
segments (cube, memory id, version, token count). Caches are found by longest common prefix, as
radix-tree prefix caches do: a block that extends a cached one reuses it whole and prefills only
the new segments; a block whose k-th segment changed reuses the first k-1 segments. In segments
composition every cache is a block of one memory, looked up by its single key.

Who uses it: `memos_cluster.tiers.activation.kvstore.KVStore`, which owns the tensors and asks this
ledger what to reuse and what to spill or evict.
"""
from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional, Sequence

from memos_cluster.core.errors import FailedPrecondition


@dataclass(frozen=True)
class SegmentKey:
    """One memory's place in a block: a stale version never matches the current one."""

    cube_id: str
    memory_id: str
    version: int


@dataclass(frozen=True)
class Segment:
    key: SegmentKey
    num_tokens: int  # tokens this memory contributes to the block


class Location(enum.Enum):
    DEVICE = "device"  # on the model's device (GPU memory where there is one)
    HOST = "host"  # host RAM
    DISK = "disk"  # a safetensors file under the spill directory


@dataclass
class CacheEntry:
    cache_id: str
    segments: tuple[Segment, ...]
    num_bytes: int
    location: Location = Location.DEVICE
    last_used_s: float = 0.0
    num_pins: int = 0  # requests using it now; pinned entries are never moved or dropped

    @property
    def num_tokens(self) -> int:
        return sum(s.num_tokens for s in self.segments)

    @property
    def keys(self) -> tuple[SegmentKey, ...]:
        return tuple(s.key for s in self.segments)


@dataclass(frozen=True)
class PrefixMatch:
    """The best cached prefix for a wanted block."""

    cache_id: Optional[str]  # None: nothing reusable
    num_segments: int  # segments of the wanted block the cache covers
    num_tokens: int  # their tokens (the cache is cropped to this many if it holds more)


@dataclass(frozen=True)
class Move:
    cache_id: str
    source: Location
    target: Optional[Location]  # None: drop (a disk entry past the disk budget)


@dataclass
class Budgets:
    device_bytes: int  # bytes of caches allowed on the model's device
    host_bytes: int  # bytes allowed in host RAM (spilled from the device)
    disk_bytes: int  # bytes allowed on disk; beyond it the least recently used are dropped


@dataclass
class _Node:
    children: dict[SegmentKey, "_Node"] = field(default_factory=dict)
    through: set[str] = field(default_factory=set)  # caches whose segments pass this node


class PrefixTree:
    """A radix tree of the caches' segment sequences: a lookup walks the wanted segments as far
    as any cache goes and costs that depth plus the caches sharing it, not every cache. A node
    exists only while some cache passes through it."""

    def __init__(self) -> None:
        self._root = _Node()

    def add(self, cache_id: str, keys: Sequence[SegmentKey]) -> None:
        node = self._root
        for key in keys:
            node = node.children.setdefault(key, _Node())
            node.through.add(cache_id)

    def remove(self, cache_id: str, keys: Sequence[SegmentKey]) -> None:
        node, path = self._root, []
        for key in keys:
            child = node.children[key]
            child.through.discard(cache_id)
            path.append((node, key, child))
            node = child
        for parent, key, child in reversed(path):
            if not child.through:
                del parent.children[key]

    def along(self, wanted: Sequence[SegmentKey]) -> list[tuple[int, set[str]]]:
        """(n, the caches sharing the first n wanted segments) for n = 1, 2, ... as far as
        any cache goes."""
        node, out = self._root, []
        for depth, key in enumerate(wanted, start=1):
            node = node.children.get(key)
            if node is None:
                break
            out.append((depth, node.through))
        return out

    def deepest(self, wanted: Sequence[SegmentKey]) -> tuple[int, set[str]]:
        """(n, the caches sharing the first n wanted segments) for the largest such n."""
        node, depth = self._root, 0
        for key in wanted:
            child = node.children.get(key)
            if child is None:
                break
            node, depth = child, depth + 1
        return depth, (node.through if depth else set())


@dataclass
class CacheLedger:
    """Entries, LRU order and budgets. Not thread-safe: the KVStore calls it under its lock."""

    budgets: Budgets
    clock: Callable[[], float] = time.monotonic
    entries: dict[str, CacheEntry] = field(default_factory=dict)
    num_lookups: int = 0
    num_hits: int = 0  # lookups that reused at least one segment
    tokens_reused: int = 0
    # Segments composition keeps a cache per memory and looks up several per request.
    _tree: PrefixTree = field(default_factory=PrefixTree, repr=False)

    def add(self, entry: CacheEntry) -> None:
        if entry.cache_id in self.entries:
            raise FailedPrecondition(f"cache {entry.cache_id} is already recorded")
        if not entry.segments:
            raise FailedPrecondition(f"cache {entry.cache_id} holds no segments")
        entry.last_used_s = self.clock()
        self.entries[entry.cache_id] = entry
        self._tree.add(entry.cache_id, entry.keys)

    def remove(self, cache_id: str) -> CacheEntry:
        entry = self.entries[cache_id]
        if entry.num_pins:
            raise FailedPrecondition(f"cache {cache_id} is in use and cannot be removed")
        del self.entries[cache_id]
        self._tree.remove(cache_id, entry.keys)
        return entry

    def exact(self, keys: Sequence[SegmentKey]) -> Optional[str]:
        """The entry holding exactly these segments, if any (no lookup is counted)."""
        depth, candidates = self._tree.deepest(keys)
        if depth < len(keys) or not keys:
            return None
        return next((c for c in candidates if len(self.entries[c].segments) == depth), None)

    def strict_prefixes(self, keys: Sequence[SegmentKey]) -> list[str]:
        """The entries holding exactly a shorter prefix of `keys`: a cache of `keys` serves
        every lookup they would (cropped), so a growing conversation can drop them."""
        return [c for depth, through in self._tree.along(keys[:-1]) for c in through
                if len(self.entries[c].segments) == depth]

    def find(self, wanted: Sequence[SegmentKey]) -> PrefixMatch:
        """The entry sharing the longest prefix with `wanted` (ties: the most recently used)."""
        best_n, candidates = self._tree.deepest(wanted)
        best = max((self.entries[c] for c in candidates), key=lambda e: e.last_used_s,
                   default=None)
        self.num_lookups += 1
        if best is None:
            return PrefixMatch(None, 0, 0)
        tokens = sum(s.num_tokens for s in best.segments[:best_n])
        self.num_hits += 1
        self.tokens_reused += tokens
        best.last_used_s = self.clock()
        return PrefixMatch(best.cache_id, best_n, tokens)

    def pin(self, cache_id: str) -> None:
        entry = self.entries[cache_id]
        entry.num_pins += 1
        entry.last_used_s = self.clock()

    def unpin(self, cache_id: str) -> None:
        entry = self.entries.get(cache_id)
        if entry is None or entry.num_pins == 0:
            raise FailedPrecondition(f"cache {cache_id} is not pinned")
        entry.num_pins -= 1

    def containing(self, cube_id: str, memory_ids: Iterable[str]) -> list[str]:
        """Caches holding any version of these memories (to invalidate after an update/delete)."""
        ids = set(memory_ids)
        return [e.cache_id for e in self.entries.values()
                if any(s.key.cube_id == cube_id and s.key.memory_id in ids for s in e.segments)]

    def used_bytes(self, location: Location) -> int:
        return sum(e.num_bytes for e in self.entries.values() if e.location is location)

    def plan_moves(self) -> list[Move]:
        """Least recently used first: device -> host -> disk -> dropped, until every tier fits
        its budget. Pinned entries never move; if they alone exceed a budget, the tier stays
        over it until they are unpinned (requests in flight are never broken)."""
        moves: list[Move] = []
        tiers = [(Location.DEVICE, self.budgets.device_bytes, Location.HOST),
                 (Location.HOST, self.budgets.host_bytes, Location.DISK),
                 (Location.DISK, self.budgets.disk_bytes, None)]
        placed = {e.cache_id: e.location for e in self.entries.values()}
        for location, budget, target in tiers:
            resident = sorted((e for e in self.entries.values() if placed[e.cache_id] is location),
                              key=lambda e: e.last_used_s)
            used = sum(e.num_bytes for e in resident)
            for entry in resident:
                if used <= budget:
                    break
                if entry.num_pins:
                    continue
                moves.append(Move(entry.cache_id, location, target))
                placed[entry.cache_id] = target
                used -= entry.num_bytes
        return moves

    def apply(self, move: Move) -> None:
        if move.target is None:
            self.remove(move.cache_id)
        else:
            self.entries[move.cache_id].location = move.target

    def stats(self) -> dict[str, float]:
        return {"entries": len(self.entries), "lookups": self.num_lookups,
                "hits": self.num_hits,
                "hit_rate": self.num_hits / self.num_lookups if self.num_lookups else 0.0,
                "tokens_reused": self.tokens_reused,
                **{f"{loc.value}_bytes": self.used_bytes(loc) for loc in Location}}
