"""The benchmarks' Ray-side helpers, over the cluster this process is a driver of:
- what the failure drills break (`memos_cluster.bench.drills.DrillOps`): a shard actor, the
  scheduler actor, a gateway replica, each killed the way a crash would end it; Ray (shards,
  scheduler: max_restarts) or Serve's controller (replicas) brings it back;
- synthetic-vector seeding for the large-cube load scenario: items written straight to their
  shard with random unit vectors instead of embeddings, so a cube of 100k+ items is ready in a
  minute instead of the embedder's ~7 minutes. Searches still embed their queries for real; only
  what the cube holds is synthetic (retrieval quality is not what such a run measures).

Who calls it: `memos-cluster bench drills` and `bench load`, and
tests/integration/test_under_fire.py.
"""
from __future__ import annotations

import asyncio

import numpy as np
import ray

from memos_cluster.bench.drills import DrillOps
from memos_cluster.bench.load_run import WriteEmbedded
from memos_cluster.core.config import MemosConfig
from memos_cluster.core.types import NewMemory
from memos_cluster.embed.base import MINILM_DIM

from actors.names import SCHEDULER_ACTOR_NAME, shard_actor_name
from actors.services import memory_service


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


def synthetic_writer(config: MemosConfig, seed: int = 11) -> WriteEmbedded:
    """A WriteEmbedded over this driver's Ray connection (the cluster must be running)."""
    memory = memory_service(config)
    rng = np.random.default_rng(seed)

    def write(cube_id: str, items: list[NewMemory]) -> None:
        vectors = rng.standard_normal((len(items), MINILM_DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        asyncio.run(memory.add_embedded(cube_id, items, vectors.tolist()))
    return write
