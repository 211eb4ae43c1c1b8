"""The bytes of activation memory: per-layer key/value tensors of the caches `CacheLedger`
records, moved between the model's device, host RAM and disk (safetensors) as the ledger plans.

Stored tensors are never modified: a request gets a fresh `DynamicCache` whose layers *view* the
stored tensors (cropped to the reused prefix by slicing), and transformers' DynamicLayer.update
appends with torch.cat into new tensors, so what a request adds stays in its own cache object.

Who uses it: `ActivationEngine` (lookup / put / release) and the KV-cache actor (invalidate,
stats). Thread-safe: one lock around the ledger and the tensor maps.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from memos_cluster.tiers.activation.blocks import (
    Budgets, CacheEntry, CacheLedger, Location, Move, PrefixMatch, Segment, SegmentKey)
from memos_cluster.tiers.llm.model import ModelIdentity

Layers = list[tuple[Any, Any]]  # per layer (keys, values), each [1, kv_heads, tokens, head_dim]


def layers_nbytes(layers: Layers) -> int:
    return sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in layers)


def cache_view(layers: Layers, num_tokens: int, config: Any):
    """A DynamicCache over the first `num_tokens` positions of stored layers, without copying."""
    from transformers import DynamicCache

    cache = DynamicCache(config=config)
    for layer, (keys, values) in zip(cache.layers, layers):
        layer.lazy_initialization(keys, values)
        layer.keys, layer.values = keys[..., :num_tokens, :], values[..., :num_tokens, :]
    return cache


def cache_layers(cache: Any) -> Layers:
    return [(layer.keys, layer.values) for layer in cache.layers]


class KVStore:
    def __init__(self, identity: ModelIdentity, device: str, budgets: Budgets, spill_dir: Path,
                 clock: Callable[[], float] = time.monotonic):
        self.identity = identity
        self._device = device
        self._spill_dir = spill_dir
        self._ledger = CacheLedger(budgets, clock)
        self._tensors: dict[str, Layers] = {}  # entries on the device or in host RAM
        self._lock = threading.RLock()
        self.num_spills = self.num_reloads = self.num_drops = self.num_superseded = 0

    # ---- requests --------------------------------------------------------------------------
    def acquire(self, wanted: Sequence[SegmentKey]) -> tuple[PrefixMatch, Optional[Layers]]:
        """The longest cached prefix of `wanted`, pinned and on the device (reloaded if it was
        spilled); the caller must `release` it. (None, no layers) when nothing matches."""
        with self._lock:
            match = self._ledger.find(wanted)
            if match.cache_id is None:
                return match, None
            self._ledger.pin(match.cache_id)
            try:
                return match, self._on_device(match.cache_id)
            except BaseException:
                self._ledger.unpin(match.cache_id)
                raise

    def release(self, cache_id: Optional[str]) -> None:
        if cache_id is not None:
            self.release_all([cache_id])

    def release_all(self, cache_ids: Sequence[str]) -> None:
        """Unpin caches, then move what the budgets ask for once (not once a cache)."""
        if not cache_ids:
            return
        with self._lock:
            for cache_id in cache_ids:
                self._ledger.unpin(cache_id)
            self._enforce()

    def put(self, segments: Sequence[Segment], layers: Layers) -> str:
        """Record a new cache of exactly `segments` (unless one already holds them)."""
        keys = tuple(s.key for s in segments)
        with self._lock:
            existing = self._ledger.exact(keys)
            if existing is not None:
                return existing
            cache_id = uuid.uuid4().hex[:12]
            self._ledger.add(CacheEntry(cache_id, tuple(segments), layers_nbytes(layers)))
            self._tensors[cache_id] = layers
            self._enforce()
            return cache_id

    def drop_prefixes(self, keys: Sequence[SegmentKey]) -> int:
        """Drop the unpinned caches of a shorter prefix of `keys` (a chat's earlier turns,
        once its latest turn is cached: chat.py); how many were dropped."""
        with self._lock:
            gone = [c for c in self._ledger.strict_prefixes(keys)
                    if not self._ledger.entries[c].num_pins]
            for cache_id in gone:
                self._drop(cache_id, superseded=True)
            return len(gone)

    def invalidate(self, cube_id: str, memory_ids: Sequence[str]) -> int:
        """After an update or delete: cut every unpinned cache holding any version of these
        memories back to the prefix before the first of them (dropped if that is empty), so the
        longest still-valid prefix stays reusable. Pinned caches are left to their requests; a
        stale segment never matches a lookup for a current version anyway. Returns how many
        caches were cut or dropped."""
        ids = set(memory_ids)
        with self._lock:
            touched = 0
            for cache_id in self._ledger.containing(cube_id, ids):
                entry = self._ledger.entries[cache_id]
                if entry.num_pins:
                    continue
                keep = next(i for i, s in enumerate(entry.segments)
                            if s.key.cube_id == cube_id and s.key.memory_id in ids)
                # Only a kept prefix needs the tensors (a spilled cache is not reloaded to drop).
                layers = self._on_device(cache_id) if keep else None
                self._drop(cache_id)
                touched += 1
                if layers is not None:
                    prefix = entry.segments[:keep]
                    tokens = sum(s.num_tokens for s in prefix)
                    # Copies, so the dropped suffix's memory is freed.
                    self.put(prefix, [(k[..., :tokens, :].clone(), v[..., :tokens, :].clone())
                                      for k, v in layers])
            return touched

    def lookups(self) -> tuple[int, int]:
        """(lookups, hits) so far, without walking the caches as `stats` does."""
        with self._lock:
            return self._ledger.num_lookups, self._ledger.num_hits

    def stats(self) -> dict[str, Any]:
        with self._lock:
            entries = list(self._ledger.entries.values())
            tokens = sum(e.num_tokens for e in entries)
            total = sum(e.num_bytes for e in entries)
            return {**self._ledger.stats(), "tokens": tokens,
                    "bytes_per_1k_tokens": round(1000 * total / tokens) if tokens else 0,
                    "spills": self.num_spills, "reloads": self.num_reloads,
                    "drops": self.num_drops, "superseded": self.num_superseded}

    # ---- tiers -----------------------------------------------------------------------------
    def _on_device(self, cache_id: str) -> Layers:
        entry = self._ledger.entries[cache_id]
        if entry.location is Location.DISK:
            self._tensors[cache_id] = self._load(cache_id)
            self._spill_path(cache_id).unlink(missing_ok=True)
            self.num_reloads += 1
        if entry.location is not Location.DEVICE:
            self._tensors[cache_id] = [(k.to(self._device), v.to(self._device))
                                       for k, v in self._tensors[cache_id]]
            entry.location = Location.DEVICE
        return self._tensors[cache_id]

    def _enforce(self) -> None:
        for move in self._ledger.plan_moves():
            self._move(move)

    def _move(self, move: Move) -> None:
        cache_id = move.cache_id
        if move.target is Location.HOST:
            self._tensors[cache_id] = [(k.to("cpu"), v.to("cpu"))
                                       for k, v in self._tensors[cache_id]]
        elif move.target is Location.DISK:
            self._save(cache_id, self._tensors.pop(cache_id))
            self.num_spills += 1
        elif move.target is None:
            self._spill_path(cache_id).unlink(missing_ok=True)
            self.num_drops += 1
        self._ledger.apply(move)

    def _drop(self, cache_id: str, superseded: bool = False) -> None:
        """Forget a cache; counted as superseded when a longer cache holds its prefix."""
        self._ledger.remove(cache_id)
        self._tensors.pop(cache_id, None)
        self._spill_path(cache_id).unlink(missing_ok=True)
        if superseded:
            self.num_superseded += 1
        else:
            self.num_drops += 1

    def _spill_path(self, cache_id: str) -> Path:
        return self._spill_dir / f"{cache_id}.safetensors"

    def _save(self, cache_id: str, layers: Layers) -> None:
        from safetensors.torch import save_file

        entry = self._ledger.entries[cache_id]
        tensors = {}
        for i, (keys, values) in enumerate(layers):
            tensors[f"k{i}"], tensors[f"v{i}"] = keys.contiguous(), values.contiguous()
        segments = [[s.key.cube_id, s.key.memory_id, s.key.version, s.num_tokens]
                    for s in entry.segments]
        self._spill_dir.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(self._spill_path(cache_id)),
                  metadata={**self.identity.as_metadata(), "segments": json.dumps(segments)})

    def _load(self, cache_id: str) -> Layers:
        return load_spilled(self._spill_path(cache_id), self.identity, self._device)[1]


def load_spilled(path: Path, identity: ModelIdentity, device: str) -> tuple[list[Segment], Layers]:
    """A spilled cache file's segments and layers, refused unless it was built by `identity`."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt", device=device) as handle:
        metadata = handle.metadata() or {}
        identity.check(metadata, f"KV cache file {path.name}")
        num_layers = len([k for k in handle.keys() if k.startswith("k")])
        layers = [(handle.get_tensor(f"k{i}"), handle.get_tensor(f"v{i}"))
                  for i in range(num_layers)]
    segments = [Segment(SegmentKey(c, m, int(v)), int(n))
                for c, m, v, n in json.loads(metadata["segments"])]
    return segments, layers
