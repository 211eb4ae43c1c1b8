"""The pure scheduler pieces: decayed frequencies, the bounded event buffer, and every rule and
budget edge of `plan`."""
import dataclasses

import pytest

from memos_cluster.core.config import SchedulerConfig
from memos_cluster.scheduler.frequency import AccessEvent, EventBuffer, FrequencyTable
from memos_cluster.scheduler.policy import CubeState, MemoryState, Snapshot, plan

CONFIG = SchedulerConfig(promote_frequency=3, demote_frequency=1, min_residency_s=100,
                         max_block_memories=2, max_active_memories=3, consolidate_frequency=6,
                         consolidate_min_age_s=1000, stable_s=500, min_retrain_interval_s=2000,
                         max_concurrent_trainings=1)
NOW = 10_000.0


def mem(memory_id, frequency, cube="c", active_since=0.0, in_adapter=False, age=2000.0,
        stable=1000.0):
    return MemoryState(cube, memory_id, 1, frequency, first_seen_s=NOW - age,
                       version_since_s=NOW - stable, activated_at_s=active_since,
                       in_adapter=in_adapter)


def snap(*memories, cubes=None, trainings=0):
    cubes = cubes or {}
    for m in memories:
        cube = cubes.setdefault(m.cube_id, CubeState(m.cube_id))
        if m.in_activation and m.memory_id not in cube.active_ids:
            cubes[m.cube_id] = dataclasses.replace(cube, active_ids=cube.active_ids + (
                m.memory_id,))
    return Snapshot(tuple(memories), cubes, trainings)


def test_frequency_decays_by_half_life_and_survives_a_checkpoint():
    table = FrequencyTable(half_life_s=100)
    for t in (0, 0, 100):
        table.record(AccessEvent("c", "m", 1, "search", float(t)))
    assert table.frequency(("c", "m"), 100) == pytest.approx(2.0)  # 2 * 0.5 + 1
    assert table.frequency(("c", "m"), 200) == pytest.approx(1.0)
    table.record(AccessEvent("c", "m", 2, "get", 150.0))
    restored = FrequencyTable.from_json(table.to_json())
    assert restored.frequency(("c", "m"), 300) == pytest.approx(table.frequency(("c", "m"), 300))
    assert restored.stats[("c", "m")].version == 2
    assert restored.stats[("c", "m")].version_since_s == 150.0
    assert restored.prune(10_000, floor=0.01) == 1 and not restored.stats


def test_event_buffer_drops_and_counts_when_full():
    buffer = EventBuffer(capacity=3)
    buffer.add(AccessEvent("c", str(i), 1, "search", 0.0) for i in range(5))
    assert len(buffer) == 3 and buffer.num_dropped == 2
    assert [e.memory_id for e in buffer.drain(2)] == ["0", "1"] and len(buffer) == 1


def test_promotes_hottest_first_within_per_cube_and_global_budgets():
    result = plan(snap(mem("a", 9), mem("b", 8), mem("c", 7), mem("x", 5, cube="d"),
                       mem("y", 4, cube="d"), mem("cold", 1)), NOW, CONFIG)
    # per cube at most 2, overall at most 3: a, b from "c"; x from "d"
    assert result.promoted == (("c", "a"), ("c", "b"), ("d", "x"))
    assert result.activation == {"c": ("a", "b"), "d": ("x",)}


def test_hysteresis_and_minimum_residency():
    # Between the thresholds: neither promoted nor demoted.
    assert plan(snap(mem("warm", 2)), NOW, CONFIG).is_empty
    assert plan(snap(mem("warm", 2, active_since=NOW - 500)), NOW, CONFIG).is_empty
    # Cold but promoted only 50 s ago: stays (minimum residency).
    assert plan(snap(mem("new", 0.5, active_since=NOW - 50)), NOW, CONFIG).is_empty
    cooled = plan(snap(mem("old", 0.5, active_since=NOW - 500), mem("keep", 5,
                                                                    active_since=NOW - 500)),
                  NOW, CONFIG)
    assert cooled.demoted == (("c", "old"),) and cooled.activation == {"c": ("keep",)}


def test_demotion_frees_room_for_a_promotion_and_keeps_block_order():
    result = plan(snap(mem("first", 5, active_since=1.0), mem("cold", 0.2, active_since=1.0),
                       mem("hot", 9)), NOW, CONFIG)
    assert result.activation == {"c": ("first", "hot")}
    assert result.promoted == (("c", "hot"),) and result.demoted == (("c", "cold"),)


def test_a_full_block_swaps_its_coldest_settled_memory_only_for_a_much_hotter_one():
    settled = NOW - 500
    full = (mem("warm", 4, active_since=settled), mem("mild", 3, active_since=settled))
    # 7 >= 2 x 3: "mild" (the coldest) makes room; the block keeps its order otherwise.
    swapped = plan(snap(*full, mem("hot", 7)), NOW, CONFIG)
    assert swapped.promoted == (("c", "hot"),) and swapped.demoted == (("c", "mild"),)
    assert swapped.activation == {"c": ("warm", "hot")}
    # 5 < 2 x 3: hysteresis, nothing moves.
    assert plan(snap(*full, mem("hotter", 5)), NOW, CONFIG).is_empty
    # The coldest arrived 50 s ago (minimum residency): the next coldest settled one goes.
    fresh = (mem("warm", 4, active_since=settled), mem("mild", 1.5, active_since=NOW - 50))
    result = plan(snap(*fresh, mem("hot", 9)), NOW, CONFIG)
    assert result.demoted == (("c", "warm"),) and result.activation == {"c": ("mild", "hot")}
    # Nothing settled: the candidate waits.
    young = (mem("a", 1.5, active_since=NOW - 10), mem("b", 1.5, active_since=NOW - 10))
    assert plan(snap(*young, mem("hot", 5)), NOW, CONFIG).is_empty


def test_consolidation_needs_heat_age_stability_and_respects_training_limits():
    hot = mem("h", 7)
    assert plan(snap(hot), NOW, CONFIG).consolidate == {"c": ("h",)}
    assert not plan(snap(mem("h", 7, age=100)), NOW, CONFIG).consolidate  # too new
    assert not plan(snap(mem("h", 7, stable=100)), NOW, CONFIG).consolidate  # just changed
    assert not plan(snap(mem("h", 5)), NOW, CONFIG).consolidate  # not hot enough
    assert not plan(snap(mem("h", 7, in_adapter=True)), NOW, CONFIG).consolidate  # held
    assert not plan(snap(hot, trainings=1), NOW, CONFIG).consolidate  # no training slot
    recent = {"c": CubeState("c", last_trained_s=NOW - 100)}
    assert not plan(snap(hot, cubes=recent), NOW, CONFIG).consolidate  # retrained recently
    busy = {"c": CubeState("c", is_training=True)}
    assert not plan(snap(hot, cubes=busy), NOW, CONFIG).consolidate
    # A new hot memory retrains on it plus what the current adapter already holds.
    again = plan(snap(mem("h", 7), mem("old", 0.1, in_adapter=True)), NOW, CONFIG)
    assert again.consolidate == {"c": ("h", "old")}


def test_one_training_slot_goes_to_the_hottest_cube():
    result = plan(snap(mem("a", 7, cube="mild"), mem("b", 20, cube="fierce")), NOW, CONFIG)
    assert list(result.consolidate) == ["fierce"]


def test_stale_adapters_are_retired():
    cubes = {"c": CubeState("c", adapter_version=1, stale_versions=(2, 3))}
    assert plan(snap(cubes=cubes), NOW, CONFIG).retire == (("c", 2), ("c", 3))


def test_near_duplicates_merge_into_the_hottest_when_stable():
    hot, cold = mem("a", 5), mem("b", 1)
    snapshot = dataclasses.replace(snap(hot, cold), duplicates=(("c", "b", ("a", "z")),))
    assert plan(snapshot, NOW, CONFIG).merge == (("c", "a", ("b", "z")),)
    editing = dataclasses.replace(snap(hot, mem("b", 1, stable=10)),
                                  duplicates=(("c", "a", ("b",)),))
    assert plan(editing, NOW, CONFIG).merge == ()  # b changed 10 s ago: wait
    # Each memory is merged at most once a cycle.
    twice = dataclasses.replace(snap(hot, cold), duplicates=(("c", "a", ("b",)),
                                                             ("c", "b", ("a",))))
    assert plan(twice, NOW, CONFIG).merge == (("c", "a", ("b",)),)
