"""Shard layouts, ownership guards and the router: the pure parts of rebalancing."""
import asyncio
import threading
import time

import pytest

from memos_cluster.core.errors import CubeMoving, ShardMissing, Unavailable, WrongShard
from memos_cluster.placement.layout import Layout, LayoutStore, placement_of
from memos_cluster.placement.ownership import CubeGuard
from memos_cluster.placement.routing import Router
from memos_cluster.placement.shardmap import shard_names

CUBES = [f"cube-{i}" for i in range(400)]


def test_adding_a_shard_pins_exactly_the_cubes_whose_owner_changes():
    old = Layout(shard_names(2), 32)
    placement = {c: old.owner(c) for c in CUBES}
    new = old.resharded(shard_names(3), placement)
    assert new.epoch == old.epoch + 1
    moving = {m.cube_id for m in new.moves()}
    assert moving == {c for c in CUBES if new.ring.shard_for(c) != old.owner(c)}
    assert all(new.ring.shard_for(c) == "shard-2" for c in moving)  # only to the new shard
    assert 0.2 < len(moving) / len(CUBES) < 0.5  # about a third moves
    # Until moved, every cube is routed where it is.
    assert all(new.owner(c) == old.owner(c) for c in CUBES)
    done = new
    for move in new.moves():
        done = done.begin_move(move.cube_id)
        assert move.cube_id in done.moving
        done = done.moved(move.cube_id)
    assert not done.pins and not done.moving
    assert all(done.owner(c) == done.ring.shard_for(c) for c in CUBES)


def test_removing_a_shard_keeps_it_live_until_its_cubes_left():
    old = Layout(shard_names(3), 32)
    new = old.resharded(("shard-0", "shard-1"), {c: old.owner(c) for c in CUBES})
    assert {m.source for m in new.moves()} == {"shard-2"}
    assert new.live_shards() == ("shard-0", "shard-1", "shard-2")
    for move in new.moves():
        new = new.moved(move.cube_id)
    assert new.live_shards() == ("shard-0", "shard-1")


def test_layout_round_trips_and_a_store_replaces_it_whole(tmp_path):
    layout = Layout(("a", "b"), 8, {"x": "a"}, epoch=7).begin_move("x")
    assert Layout.from_json(layout.to_json()) == layout
    store = LayoutStore(tmp_path / "dir" / "layout.json")
    assert store.load() is None
    store.save(layout)
    store.save(layout.moved("x"))
    assert store.load() == layout.moved("x")
    assert [p.name for p in (tmp_path / "dir").iterdir()] == ["layout.json"]
    with pytest.raises(ValueError):
        Layout(("a",), 8, {}, moving=("x",))  # moving without a pin
    with pytest.raises(ValueError):
        layout.resharded(("a",), {})  # not while a move runs


def test_placement_prefers_the_owner_and_reports_stale_copies():
    layout = Layout(shard_names(2), 32)
    cube = CUBES[0]
    owner = layout.owner(cube)
    other = next(s for s in layout.shard_ids if s != owner)
    placement, stale = placement_of(layout, {owner: [cube], other: [cube, "lonely"]})
    assert placement == {cube: owner, "lonely": other}
    assert stale == [(other, cube)]


def test_guard_refuses_foreign_cubes_and_writes_to_moving_ones():
    layout = Layout(shard_names(2), 32)
    mine = next(c for c in CUBES if layout.owner(c) == "shard-0")
    theirs = next(c for c in CUBES if layout.owner(c) == "shard-1")
    guard = CubeGuard("shard-0", layout)
    guard.check([mine])
    with pytest.raises(WrongShard):
        guard.check([mine, theirs])
    moving = Layout(("shard-1",), 32, {mine: "shard-0"}, epoch=3).begin_move(mine)
    guard.set_layout(moving)
    guard.check([mine])  # reads go on
    with pytest.raises(CubeMoving):
        with guard.writing(mine):
            pass
    guard.set_layout(layout)  # an older epoch is ignored
    assert guard.layout == moving


def test_fence_waits_for_writes_in_flight_and_times_out():
    guard = CubeGuard("s")
    entered, release = threading.Event(), threading.Event()

    def write():
        with guard.writing("c"):
            entered.set()
            release.wait(5)

    writer = threading.Thread(target=write)
    writer.start()
    entered.wait(5)
    with pytest.raises(Unavailable):
        guard.fence("c", timeout_s=0.1)
    assert guard.fenced() == ()  # a fence that timed out is lifted
    threading.Timer(0.2, release.set).start()
    started = time.monotonic()
    guard.fence("c", timeout_s=5)
    assert time.monotonic() - started >= 0.15 and guard.fenced() == ("c",)
    writer.join()
    with pytest.raises(CubeMoving):
        with guard.writing("c"):
            pass
    guard.unfence("c")
    guard.freeze_creates(True)
    with pytest.raises(CubeMoving):
        with guard.writing("new", creates=True):
            pass
    with guard.writing("c"):  # existing cubes still take writes
        pass


class Port:
    """An in-memory shard for routing tests: records calls, refuses like a guard would."""

    def __init__(self, shard_id, guard):
        self.shard_id, self.guard, self.calls = shard_id, guard, []

    async def echo(self, cubes):
        for cube in cubes:
            with self.guard.writing(cube):
                pass
        self.calls.append(tuple(cubes))
        return [(self.shard_id, c) for c in cubes]


def test_router_reroutes_after_a_move_and_waits_out_a_copy():
    old = Layout(shard_names(2), 32)
    cube = next(c for c in CUBES if old.owner(c) == "shard-0")
    other = next(c for c in CUBES if old.owner(c) == "shard-1")
    # The directory's view: cube moved to shard-1 (a new ring of one shard).
    moved = Layout(("shard-1",), 32, {}, epoch=5)
    guards = {s: CubeGuard(s, moved) for s in shard_names(2)}
    ports = {s: Port(s, g) for s, g in guards.items()}
    directory = {"layout": moved}

    async def refresh():
        return directory["layout"]

    router = Router(old, ports, refresh, move_wait_s=5)
    result = asyncio.run(router.call_many([cube, other], lambda p, cubes: p.echo(cubes)))
    assert sorted(result) == [("shard-1", cube), ("shard-1", other)]
    assert ports["shard-0"].calls == [] and router.layout.epoch == 5
    # A cube being copied: writes wait until the directory unpins it.
    copying = Layout(("shard-1",), 32, {cube: "shard-0"}, epoch=6).begin_move(cube)
    directory["layout"] = copying
    for guard in guards.values():
        guard.set_layout(copying)

    async def finish_later():
        await asyncio.sleep(0.3)
        done = copying.moved(cube)
        directory["layout"] = done
        for guard in guards.values():
            guard.set_layout(done)

    async def both():
        router2 = Router(copying, ports, refresh, move_wait_s=5)
        _, got = await asyncio.gather(finish_later(), router2.call(cube, lambda p: p.echo([cube])))
        return got

    assert asyncio.run(both()) == [("shard-1", cube)]
    # Without a directory to ask, the refusal reaches the caller.
    stuck = {s: Port(s, CubeGuard(s, copying)) for s in shard_names(2)}
    with pytest.raises(CubeMoving):
        asyncio.run(Router(copying, stuck).call(cube, lambda p: p.echo([cube])))


class GonePort:
    """A shard a reshard removed: its actor no longer exists (actors/handles.py's ShardHandle)."""

    async def echo(self, cubes):
        raise ShardMissing("memos-shard-2 does not exist yet; retry shortly")


def test_router_reroutes_when_its_layout_names_a_removed_shard():
    three = Layout(shard_names(3), 32, epoch=3)
    cube = next(c for c in CUBES if three.owner(c) == "shard-2")
    two = Layout(shard_names(2), 32, epoch=4)  # the directory's: shard-2 removed
    ports = {s: Port(s, CubeGuard(s, two)) for s in shard_names(2)} | {"shard-2": GonePort()}

    async def refresh():
        return two

    router = Router(three, ports, refresh, move_wait_s=5)
    assert asyncio.run(router.call(cube, lambda p: p.echo([cube]))) == [(two.owner(cube), cube)]
    assert router.layout.epoch == 4
    with pytest.raises(ShardMissing):  # nothing to refresh from: the caller sees it
        asyncio.run(Router(three, ports).call(cube, lambda p: p.echo([cube])))
