from memos_cluster.tiers.plaintext.flush import FlushPolicy


def test_nothing_pending_is_never_due():
    assert not FlushPolicy().is_due(now_s=1e9)


def test_due_after_an_idle_pause_or_a_large_burst():
    policy = FlushPolicy(max_pending_rows=100, idle_s=1.0)
    policy.note_write(10, now_s=50.0)
    assert not policy.is_due(50.5)
    assert policy.is_due(51.0)
    policy.note_write(95, now_s=51.0)
    assert policy.is_due(51.0)  # 105 pending: past the burst limit, no pause needed


def test_rows_written_during_a_flush_stay_pending():
    policy = FlushPolicy(max_pending_rows=100, idle_s=1.0)
    policy.note_write(10, now_s=0.0)
    flushing = policy.pending_rows
    policy.note_write(5, now_s=0.5)
    policy.note_flushed(flushing)
    assert policy.pending_rows == 5 and policy.is_due(2.0)
