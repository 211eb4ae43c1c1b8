"""CubeDirectoryActor: the named actor that owns the shard layout.

It builds the consistent-hash ring from configuration (a pure function of the shard ids and the
virtual-node count, so a restarted directory routes exactly as before), makes sure every shard
actor exists, and hands the ring to gateways, which cache it and route without a hop through here.
"""
from __future__ import annotations

import ray

from memos_cluster.config import MemosConfig
from memos_cluster.shardmap import HashRing, shard_names

from actors.handles import DIRECTORY_NAME
from actors.shard import create_shard_actor


class CubeDirectoryActor:
    def __init__(self, config: MemosConfig):
        self._config = config
        self._ring = HashRing(shard_names(config.cluster.num_shards),
                              config.cluster.virtual_nodes)

    def ensure_shards(self) -> tuple[str, ...]:
        """Create missing shard actors and wait until each has opened its storage.
        Who calls it: every gateway replica at start-up; idempotent."""
        actors = [create_shard_actor(self._config, shard_id) for shard_id in self._ring.shard_ids]
        return tuple(ray.get([actor.ready.remote() for actor in actors]))

    def ring(self) -> HashRing:
        return self._ring


def get_or_create_directory(config: MemosConfig):
    return ray.remote(CubeDirectoryActor).options(
        name=DIRECTORY_NAME,
        namespace=config.ray.namespace,
        lifetime="detached",
        get_if_exists=True,
        max_restarts=-1,
        num_cpus=0,
    ).remote(config)
