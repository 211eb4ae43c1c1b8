"""Failure drills under write and read load on the session cluster (last in the session: it
kills the only gateway replica): the scheduler killed, then the gateway replica killed. Each
ends with every acknowledged write stored exactly once and no writer giving up. (A shard actor
killed: test_recovery and tests/cluster; the KV-budget drill needs small budgets: `bench
drills`.)"""
from memos_cluster.bench.drills import run_drills
from memos_cluster.bench.ray_ops import drill_ops


def test_scheduler_and_replica_kills_lose_no_acknowledged_write(running, config, grpc_address):
    lines = []
    result = run_drills(grpc_address, drill_ops(config),
                        drills=("scheduler_kill", "replica_kill"), say=lines.append)
    for name, drill in result["drills"].items():
        assert drill["missing"] == 0 and drill["unexpected"] == 0, (name, drill)
        assert drill["failed_writers"] == 0, (name, drill)
        assert drill["acknowledged"] > 60, (name, drill)  # the seeds and then some
        assert drill["searches"] > 0
    assert result["drills"]["replica_kill"]["broke"].startswith("SERVE_REPLICA::")
    assert result["drills"]["scheduler_kill"]["broke"] == "memos-scheduler"
    assert len(lines) == 2
