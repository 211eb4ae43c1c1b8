"""Activation-memory bookkeeping without tensors: prefix matching, pins, LRU spill plans."""
import pytest

from memos_cluster.core.errors import FailedPrecondition
from memos_cluster.tiers.activation.blocks import (
    Budgets, CacheEntry, CacheLedger, Location, Move, Segment, SegmentKey)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 1.0
        return self.now


def seg(memory_id, version=1, tokens=10, cube="c"):
    return Segment(SegmentKey(cube, memory_id, version), tokens)


def keys(*segments):
    return [s.key for s in segments]


def ledger(device=100, host=100, disk=100):
    return CacheLedger(Budgets(device, host, disk), clock=Clock())


def test_find_prefers_the_longest_prefix_and_counts_tokens():
    book = ledger()
    book.add(CacheEntry("short", (seg("a", tokens=5),), 10))
    book.add(CacheEntry("long", (seg("a", tokens=5), seg("b", tokens=7), seg("c")), 10))
    match = book.find(keys(seg("a", tokens=5), seg("b", tokens=7), seg("x")))
    assert (match.cache_id, match.num_segments, match.num_tokens) == ("long", 2, 12)
    assert book.find(keys(seg("z"))).cache_id is None
    # A changed version is a different segment: only the prefix before it is reused.
    match = book.find(keys(seg("a", tokens=5), seg("b", version=2)))
    assert match.num_segments == 1 and match.num_tokens == 5
    stats = book.stats()
    assert stats["lookups"] == 3 and stats["hit_rate"] == pytest.approx(2 / 3)


def test_plan_moves_spills_lru_first_and_skips_pinned():
    book = ledger(device=25, host=10, disk=100)
    for name in ("old", "mid", "new"):
        book.add(CacheEntry(name, (seg(name),), 10))
    book.pin("old")  # in use: must not move even though it is least recently used
    moves = book.plan_moves()
    assert moves == [Move("mid", Location.DEVICE, Location.HOST)]
    for move in moves:
        book.apply(move)
    assert book.used_bytes(Location.DEVICE) == 20
    assert book.entries["old"].location is Location.DEVICE


def test_host_overflow_goes_to_disk_and_disk_overflow_is_dropped():
    book = ledger(device=0, host=10, disk=10)
    for name in ("a", "b", "c"):
        book.add(CacheEntry(name, (seg(name),), 10))
    for move in book.plan_moves():
        book.apply(move)
    # newest on the host, the next on disk, the oldest dropped
    assert book.entries["c"].location is Location.HOST
    assert book.entries["b"].location is Location.DISK
    assert "a" not in book.entries


def test_pins_and_removal():
    book = ledger()
    book.add(CacheEntry("x", (seg("a"),), 10))
    book.pin("x")
    with pytest.raises(FailedPrecondition):
        book.remove("x")
    book.unpin("x")
    with pytest.raises(FailedPrecondition):
        book.unpin("x")
    book.remove("x")
    book.add(CacheEntry("y", (seg("a"),), 1))
    with pytest.raises(FailedPrecondition):
        book.add(CacheEntry("y", (seg("a"),), 1))


def test_containing_finds_every_version_of_a_memory():
    book = ledger()
    book.add(CacheEntry("one", (seg("a"), seg("b")), 1))
    book.add(CacheEntry("two", (seg("a", version=2),), 1))
    book.add(CacheEntry("other-cube", (seg("a", cube="d"),), 1))
    assert sorted(book.containing("c", ["a"])) == ["one", "two"]
    assert book.containing("c", ["zzz"]) == []


def test_lookups_see_only_entries_that_start_alike_and_forget_removed_ones():
    book = ledger()
    book.add(CacheEntry("a", (seg("a"),), 10))
    book.add(CacheEntry("ab", (seg("a"), seg("b")), 10))
    book.add(CacheEntry("b", (seg("b"),), 10))
    assert book.exact(keys(seg("a"), seg("b"))) == "ab" and book.exact(keys(seg("c"))) is None
    assert book.find(keys(seg("b"), seg("a"))).cache_id == "b"
    book.remove("ab")
    assert book.find(keys(seg("a"), seg("b"))).cache_id == "a"
    book.pin("a")
    with pytest.raises(FailedPrecondition, match="in use"):
        book.remove("a")
    assert book.find(keys(seg("a"))).cache_id == "a"  # a refused removal keeps it findable
    book.unpin("a")
    book.remove("a")
    assert book.find(keys(seg("a"))).cache_id is None and book.exact(keys(seg("a"))) is None
    with pytest.raises(FailedPrecondition, match="no segments"):
        book.add(CacheEntry("empty", (), 0))


def test_caches_sharing_a_first_segment_are_told_apart_by_the_next():
    book = ledger()  # adapter requests: every cache starts with the same adapter segment
    book.add(CacheEntry("b", (seg("adapters:x"), seg("b")), 10))
    book.add(CacheEntry("a", (seg("adapters:x"), seg("a")), 10))  # the more recent
    match = book.find(keys(seg("adapters:x"), seg("b")))
    assert (match.cache_id, match.num_segments) == ("b", 2)
    match = book.find(keys(seg("adapters:x"), seg("c")))
    assert (match.cache_id, match.num_segments) == ("b", 1)  # b was used last, just now


def test_strict_prefixes_are_the_shorter_caches_on_the_same_path():
    book = ledger()
    a, b, c, x = seg("a"), seg("b"), seg("c"), seg("x")
    for name, segments in (("a", (a,)), ("ab", (a, b)), ("abc", (a, b, c)), ("ax", (a, x))):
        book.add(CacheEntry(name, segments, 1))
    assert sorted(book.strict_prefixes(keys(a, b, c))) == ["a", "ab"]
    assert sorted(book.strict_prefixes(keys(a, b, c, x))) == ["a", "ab", "abc"]
    assert book.strict_prefixes(keys(a)) == []
