"""The migration policy as a pure function: `plan(snapshot, now_s, config) -> MigrationPlan`.

Rules (thresholds in `SchedulerConfig`, frequencies in decayed accesses, see frequency.py):
- demote from activation memory: frequency below `demote_frequency`, after at least
  `min_residency_s` there (hysteresis: promotion needs the higher `promote_frequency`);
- promote into activation memory: frequency at least `promote_frequency`, hottest first, within
  `max_block_memories` per cube and `max_active_memories` overall; into a full block only by
  displacing its coldest memory that has served `min_residency_s`, and only when at least
  `displace_ratio` times hotter than it (hysteresis, so near-equals do not trade places);
- consolidate into the cube's adapter: frequency at least `consolidate_frequency`, seen for at
  least `consolidate_min_age_s`, unchanged for `stable_s`, not all already in the current adapter,
  the cube not trained within `min_retrain_interval_s`, at most `max_concurrent_trainings` runs;
- retire stale adapter versions (trained on a since-deleted memory; no longer served);
- merge near-duplicates (found by the scheduler, `merge_similarity`) into the hottest of each
  group, when none of the group changed within `stable_s`.

No I/O, no clock, no Ray: the scheduler builds the snapshot and executes the plan.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from memos_cluster.core.config import SchedulerConfig


@dataclass(frozen=True)
class MemoryState:
    cube_id: str
    memory_id: str
    version: int
    frequency: float
    first_seen_s: float
    version_since_s: float  # when its current version was first seen
    activated_at_s: float = 0.0  # 0: not in activation memory
    in_adapter: bool = False  # the cube's current adapter holds this version

    @property
    def in_activation(self) -> bool:
        return self.activated_at_s > 0


@dataclass(frozen=True)
class CubeState:
    cube_id: str
    active_ids: tuple[str, ...] = ()  # its activation block, in order
    adapter_version: int = 0  # current (served) adapter; 0: none
    stale_versions: tuple[int, ...] = ()
    last_trained_s: float = 0.0
    is_training: bool = False


@dataclass(frozen=True)
class Snapshot:
    memories: tuple[MemoryState, ...]
    cubes: dict[str, CubeState]
    num_trainings: int = 0  # runs queued or in progress
    # (cube, memory, its near-duplicates) for the memories checked this cycle
    duplicates: tuple[tuple[str, str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class MigrationPlan:
    activation: dict[str, tuple[str, ...]] = field(default_factory=dict)  # cube -> new block
    promoted: tuple[tuple[str, str], ...] = ()  # (cube, memory) entering activation memory
    demoted: tuple[tuple[str, str], ...] = ()
    consolidate: dict[str, tuple[str, ...]] = field(default_factory=dict)  # cube -> train set
    retire: tuple[tuple[str, int], ...] = ()  # (cube, adapter version)
    merge: tuple[tuple[str, str, tuple[str, ...]], ...] = ()  # (cube, kept, merged into it)
    # (cube, memory) archived or deleted this cycle because their expiry passed: done by the
    # scheduler before planning (Scheduler._expire), not planned here.
    expired: tuple[tuple[str, str], ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (self.activation or self.consolidate or self.retire or self.merge)


def _demotions(snapshot: Snapshot, now_s: float, config: SchedulerConfig) -> set[tuple[str, str]]:
    return {(m.cube_id, m.memory_id) for m in snapshot.memories
            if m.in_activation and m.frequency < config.demote_frequency
            and now_s - m.activated_at_s >= config.min_residency_s}


def _promotions(snapshot: Snapshot, now_s: float, demoted: set[tuple[str, str]],
                config: SchedulerConfig) -> list[MemoryState]:
    """Hot memories to promote, hottest first, within the budgets. A candidate for a full block
    displaces the block's coldest memory that has served `min_residency_s` when it is at least
    `displace_ratio` times hotter; the displaced memory is added to `demoted`."""
    active = {(m.cube_id, m.memory_id) for m in snapshot.memories if m.in_activation}
    for cube in snapshot.cubes.values():
        active |= {(cube.cube_id, i) for i in cube.active_ids}
    active -= demoted
    per_cube: dict[str, int] = {}
    for cube_id, _ in active:
        per_cube[cube_id] = per_cube.get(cube_id, 0) + 1
    # Residents that may be displaced, coldest last (popped first).
    settled: dict[str, list[MemoryState]] = {}
    for m in sorted(snapshot.memories, key=lambda m: (-m.frequency, m.memory_id)):
        if ((m.cube_id, m.memory_id) in active
                and now_s - m.activated_at_s >= config.min_residency_s):
            settled.setdefault(m.cube_id, []).append(m)
    total = len(active)
    chosen = []
    hot = sorted((m for m in snapshot.memories if (m.cube_id, m.memory_id) not in active
                  and m.frequency >= config.promote_frequency),
                 key=lambda m: (-m.frequency, m.cube_id, m.memory_id))
    for memory in hot:
        if per_cube.get(memory.cube_id, 0) >= config.max_block_memories:
            residents = settled.get(memory.cube_id, [])
            if not residents or memory.frequency < config.displace_ratio * residents[-1].frequency:
                continue
            coldest = residents.pop()
            demoted.add((coldest.cube_id, coldest.memory_id))
        elif total >= config.max_active_memories:
            break
        else:
            per_cube[memory.cube_id] = per_cube.get(memory.cube_id, 0) + 1
            total += 1
        chosen.append(memory)
    return chosen


def _blocks(snapshot: Snapshot, demoted: set, promoted: list[MemoryState]) -> dict:
    """New activation blocks of the cubes that change: kept order, promoted appended (so the
    cached prefix stays valid and only new memories are prefilled)."""
    blocks = {}
    changed = {c for c, _ in demoted} | {m.cube_id for m in promoted}
    for cube_id in sorted(changed):
        cube = snapshot.cubes.get(cube_id, CubeState(cube_id))
        kept = [i for i in cube.active_ids if (cube_id, i) not in demoted]
        kept += [m.memory_id for m in promoted if m.cube_id == cube_id]
        blocks[cube_id] = tuple(kept)
    return blocks


def _consolidations(snapshot: Snapshot, now_s: float, config: SchedulerConfig) -> dict:
    ready: dict[str, list[MemoryState]] = {}
    for m in snapshot.memories:
        if (m.frequency >= config.consolidate_frequency
                and now_s - m.first_seen_s >= config.consolidate_min_age_s
                and now_s - m.version_since_s >= config.stable_s):
            ready.setdefault(m.cube_id, []).append(m)
    slots = config.max_concurrent_trainings - snapshot.num_trainings
    plans = {}
    by_heat = sorted(ready.items(), key=lambda kv: -sum(m.frequency for m in kv[1]))
    for cube_id, hot in by_heat:
        cube = snapshot.cubes.get(cube_id, CubeState(cube_id))
        if slots <= 0:
            break
        if cube.is_training or now_s - cube.last_trained_s < config.min_retrain_interval_s:
            continue
        if all(m.in_adapter for m in hot):
            continue  # the current adapter already holds every hot memory
        held = [m.memory_id for m in snapshot.memories if m.cube_id == cube_id and m.in_adapter]
        plans[cube_id] = tuple(sorted(set(held) | {m.memory_id for m in hot}))
        slots -= 1
    return plans


def _merges(snapshot: Snapshot, now_s: float, config: SchedulerConfig) -> tuple:
    known = {(m.cube_id, m.memory_id): m for m in snapshot.memories}
    taken: set[tuple[str, str]] = set()
    merges = []
    for cube_id, memory_id, dups in snapshot.duplicates:
        group = [i for i in (memory_id, *dups) if (cube_id, i) not in taken]
        if len(group) < 2:
            continue
        states = [known.get((cube_id, i)) for i in group]
        if any(s is not None and now_s - s.version_since_s < config.stable_s for s in states):
            continue  # something in the group is being edited: wait
        heat = {i: (s.frequency if s else 0.0) for i, s in zip(group, states)}
        keep = max(group, key=lambda i: (heat[i], i == memory_id, i))
        merged = tuple(sorted(i for i in group if i != keep))
        merges.append((cube_id, keep, merged))
        taken |= {(cube_id, i) for i in group}
    return tuple(merges)


def plan(snapshot: Snapshot, now_s: float, config: SchedulerConfig) -> MigrationPlan:
    """Who calls it: `Scheduler.cycle`, every `scheduler.interval_s` or when asked."""
    demoted = _demotions(snapshot, now_s, config)
    promoted = _promotions(snapshot, now_s, demoted, config)  # adds displaced memories
    retire = tuple((c.cube_id, v) for c in snapshot.cubes.values() for v in c.stale_versions)
    return MigrationPlan(activation=_blocks(snapshot, demoted, promoted),
                         promoted=tuple((m.cube_id, m.memory_id) for m in promoted),
                         demoted=tuple(sorted(demoted)),
                         consolidate=_consolidations(snapshot, now_s, config),
                         retire=retire, merge=_merges(snapshot, now_s, config))
