"""The core services wired to the cluster's actors: what the gateway and the scheduler actor both
run (one place that knows which handle serves which port)."""
from __future__ import annotations

from dataclasses import dataclass


from memos_cluster.core.config import MemosConfig
from memos_cluster.placement.shardmap import HashRing
from memos_cluster.tiers.activation.service import ActivationService
from memos_cluster.tiers.parametric.service import ParametricService
from memos_cluster.tiers.parametric.store import AdapterStore
from memos_cluster.tiers.plaintext.service import MemoryService

from actors.directory import get_or_create_directory
from actors.handles import DirectoryHandle, KVHandle, NamedActor, ShardHandle, TrainerHandle
from actors.kv_cache import create_kv_actor
from actors.names import LORA_ACTOR_NAME, kv_actor_ids, kv_actor_name
from actors.lora import create_lora_actor


@dataclass
class Services:
    memory: MemoryService
    activation: ActivationService
    parametric: ParametricService


def memory_service(config: MemosConfig) -> MemoryService:
    """The plaintext service over the shard actors (the directory makes sure they exist, which
    blocks until they have opened their storage). Who calls it: build_services, bulk ingest."""
    namespace, timeout_s = config.ray.namespace, config.cluster.call_timeout_s
    directory = DirectoryHandle(get_or_create_directory(config), timeout_s)
    layout = directory.ensure_shards()
    return MemoryService(config, layout, lambda s: ShardHandle(s, namespace, timeout_s),
                         directory.layout)


def build_services(config: MemosConfig) -> Services:
    """Who calls it: MemoryGateway and SchedulerActor constructors (blocks until the shards
    exist). KV actors and the LoRA trainer are created on first use (they load models)."""
    memory = memory_service(config)
    namespace, timeout_s = config.ray.namespace, config.cluster.call_timeout_s
    kv_ids = kv_actor_ids(config.activation.num_actors)
    kv_ports = _kv_ports(config, create=True)
    trainer = NamedActor(LORA_ACTOR_NAME, namespace, create=lambda: create_lora_actor(config))
    parametric = ParametricService(config, memory, AdapterStore(config.adapter_store_uri()),
                                   TrainerHandle(trainer, timeout_s))
    activation = ActivationService(config, memory, HashRing(kv_ids, config.cluster.virtual_nodes),
                                   kv_ports, adapters_for=parametric.current)
    return Services(memory, activation, parametric)


def cache_invalidator(config: MemosConfig):
    """An async (cube_id, memory_ids) -> None that drops the KV caches built on those memories,
    on the KV actors that exist (none is created: no actor, no cache). Who calls it: the
    reindex loop (actors/reindex.py), for memories whose prompt text it changed."""
    ring = HashRing(kv_actor_ids(config.activation.num_actors), config.cluster.virtual_nodes)
    ports = _kv_ports(config, create=False)

    async def invalidate(cube_id: str, memory_ids: list[str]) -> None:
        # KVHandle.invalidate answers 0 for an actor never created (it holds no caches).
        await ports[ring.shard_for(cube_id)].invalidate(cube_id, memory_ids, False)
    return invalidate


def _kv_ports(config: MemosConfig, create: bool) -> dict[str, KVHandle]:
    """A handle per KV actor id; with `create`, the actor is made on first use (it loads the
    model), without, a call to one that does not exist is a no-op or Unavailable."""
    namespace = config.ray.namespace
    return {k: KVHandle(NamedActor(kv_actor_name(k), namespace,
                                   create=(lambda k=k: create_kv_actor(config, k))
                                   if create else None),
                        config.gateway.request_timeout_s) for k in kv_actor_ids(
                            config.activation.num_actors)}
