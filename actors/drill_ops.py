"""What the failure drills break, over Ray (`memos_cluster.bench_drills.DrillOps`): a shard
actor, the scheduler actor, a gateway replica. Each is killed the way a crash would end it; Ray
(shards, scheduler: max_restarts) or Serve's controller (replicas) brings it back.
Who calls it: `memos-cluster bench drills` and tests/integration/test_under_fire.py.
"""
from __future__ import annotations

import ray

from memos_cluster.bench_drills import DrillOps
from memos_cluster.config import MemosConfig

from actors.handles import shard_actor_name
from actors.scheduler import SCHEDULER_ACTOR_NAME


def _kill(name: str, namespace: str, restart: bool) -> str:
    ray.kill(ray.get_actor(name, namespace=namespace), no_restart=not restart)
    return name


def kill_gateway_replica(config: MemosConfig) -> str:
    """One replica of the gateway deployment (Serve starts a replacement)."""
    prefix = f"SERVE_REPLICA::{config.gateway.app_name}#MemoryGateway#"
    replicas = sorted((a["name"], a["namespace"])
                      for a in ray.util.list_named_actors(all_namespaces=True)
                      if a["name"].startswith(prefix))
    if not replicas:
        raise RuntimeError(f"no replica named {prefix}*")
    return _kill(*replicas[0], restart=False)


def drill_ops(config: MemosConfig) -> DrillOps:
    namespace = config.ray.namespace
    return DrillOps(
        kill_shard=lambda shard_id: _kill(shard_actor_name(shard_id), namespace, restart=True),
        kill_scheduler=lambda: _kill(SCHEDULER_ACTOR_NAME, namespace, restart=True),
        kill_gateway_replica=lambda: kill_gateway_replica(config))
