"""`memos-cluster demo`: a scripted end-to-end run against a real local cluster on a fresh
temporary data directory. Every step checks what it got; the run exits 0 only if all behaved."""
from __future__ import annotations

from typing import Callable

from memos_cluster.client import MemosClient
from memos_cluster.core.errors import InvalidArgument, NotFound
from memos_cluster.core.types import NewMemory, SearchFilter

FACTS = [
    NewMemory("Caroline went to an LGBTQ support group on 7 May 2023", id="support-group",
              metadata={"person": "Caroline"}),
    NewMemory("Melanie painted a sunrise over the lake last year", id="sunrise",
              metadata={"person": "Melanie"}, event_time_ms=1_683_554_160_000),  # 8 May 2023
    NewMemory("Caroline wants to study psychology and become a counselor", id="career",
              metadata={"person": "Caroline"}),
    NewMemory("Melanie ran a charity race for mental health", id="race",
              metadata={"person": "Melanie"}),
]


class DemoFailure(AssertionError):
    pass


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise DemoFailure(what)


def run_steps(client: MemosClient, say: Callable[[str], None]) -> None:
    """The scripted steps; raises DemoFailure at the first step that misbehaves."""
    cube = "demo-cube"
    client.create_cube(cube, description="memos-cluster demo")
    say(f"created cube {cube}")
    added = client.add(cube, FACTS)
    expect(added.num_inserted == len(FACTS), f"add inserted {added.num_inserted}")
    again = client.add(cube, FACTS)
    expect(again.num_inserted == 0 and again.num_unchanged == len(FACTS),
           "re-adding the same ids must be idempotent")
    say(f"added {added.num_inserted} memories (re-adding them changed nothing)")

    hits = client.search(cube, "Who painted a picture of the sunrise?", top_k=2)
    expect(bool(hits) and hits[0].item.id == "sunrise", f"search found {hits[:1]}")
    say(f"search 'Who painted a picture of the sunrise?' -> {hits[0].item.text!r}")
    hits = client.search(cube, "Caroline", top_k=5,
                         filter=SearchFilter(metadata_equals=(("person", "Melanie"),)))
    expect(bool(hits) and all(h.item.metadata["person"] == "Melanie" for h in hits),
           "a metadata filter must keep only matching memories")
    say(f"filtered search kept {len(hits)} of Melanie's memories")

    [sunrise] = client.get(cube, ["sunrise"]).items
    dates = [(t.span, t.label()) for t in sunrise.structure.times]
    expect(dates == [("last year", "2022")], f"'last year' in May 2023 must be 2022: {dates}")
    names = {e.name for e in client.list_entities(cube).entities}
    expect({"Caroline", "Melanie"} <= names, f"the entity graph holds {sorted(names)}")
    say(f"the reader: 'last year' -> 2022; entities in the cube's graph: {sorted(names)}")

    updated = client.update(cube, "sunrise", "Melanie painted a sunrise and a sunset in 2022")
    expect(updated.version == 2, f"update gave version {updated.version}")
    history = client.history(cube, "sunrise")
    expect([m.version for m in history] == [1, 2], "history must hold both versions")
    say(f"updated 'sunrise' to version 2; history: {[m.text for m in history]}")

    deleted = client.delete(cube, ["race"])
    expect(deleted.num_deleted == 1, "delete must remove one memory")
    expect(client.get(cube, ["race"]).missing_ids == ("race",), "deleted memory still readable")
    stats = client.get_cube(cube)
    expect(stats.num_memories == len(FACTS) - 1, f"cube holds {stats.num_memories}")
    say(f"deleted 'race'; cube now holds {stats.num_memories} memories on {stats.shard_id}")

    try:
        client.add(cube, [NewMemory("")])
        raise DemoFailure("an empty text was accepted")
    except InvalidArgument as exc:
        say(f"empty text refused: INVALID_ARGUMENT ({exc.message})")
    client.delete_cube(cube)
    try:
        client.get_cube(cube)
        raise DemoFailure("a deleted cube is still there")
    except NotFound:
        say("deleted the cube")


def main_demo(config, say: Callable[[str], None] = print) -> int:
    """Who calls it: `memos-cluster demo`, with the loaded config (its data dir and ports are
    replaced by a temporary directory and free ports)."""
    from actors.cluster import temporary_cluster

    say("starting a local cluster on a temporary data dir ...")
    with temporary_cluster(config, prefix="memos-demo-") as client:
        say(f"gateway ready at {client.address}")
        try:
            run_steps(client, say)
        except DemoFailure as exc:
            say(f"DEMO FAILED: {exc}")
            return 1
    say("demo passed: every step behaved")
    return 0
