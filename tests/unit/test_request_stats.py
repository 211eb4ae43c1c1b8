"""The gateway's in-memory request window (core/request_stats.py) on a hand-driven clock."""
import pytest

from memos_cluster.core.request_stats import RequestStats


class Clock:
    def __init__(self, now_s: float = 1_000_000.0):
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


def test_counts_errors_quantiles_and_rates_over_the_window():
    clock = Clock()
    stats = RequestStats(window_s=60, bucket_s=10, clock=clock)
    for latency in [3] * 90 + [400] * 10:  # p50 in the 5 ms bucket, p95 in the 500 ms one
        stats.record("Search", "http", "OK", latency)
    stats.record("Search", "grpc", "NOT_FOUND", 1.0)
    clock.now_s += 10
    stats.record("Search", "http", "INVALID_ARGUMENT", 7.0)
    snap = stats.snapshot()
    by_key = {(o.rpc, o.transport): o for o in snap.operations}
    http = by_key[("Search", "http")]
    assert (http.requests, http.errors, http.p50_ms, http.p95_ms) == (101, 1, 5.0, 500.0)
    assert by_key[("Search", "grpc")].errors == 1
    assert snap.operations[0] == http  # busiest first
    assert [(e.code, e.transport) for e in snap.errors] == [("INVALID_ARGUMENT", "http"),
                                                            ("NOT_FOUND", "grpc")]
    rates = [(r.transport, r.requests_per_s) for r in snap.rates]
    assert rates == [("grpc", 0.1), ("http", 10.0), ("grpc", 0.0), ("http", 0.1)]


def test_old_buckets_and_errors_leave_the_window():
    clock = Clock()
    stats = RequestStats(window_s=30, bucket_s=10, clock=clock)
    stats.record("Add", "grpc", "UNAVAILABLE", 2.0)
    clock.now_s += 45
    stats.record("Ping", "grpc", "OK", 0.5)
    snap = stats.snapshot()
    assert [o.rpc for o in snap.operations] == ["Ping"] and snap.errors == ()
    assert stats.snapshot().operations[0].p50_ms == 1.0


def test_an_empty_window_and_a_bad_shape():
    assert RequestStats(clock=Clock()).snapshot().operations == ()
    with pytest.raises(ValueError):
        RequestStats(window_s=5, bucket_s=10)
