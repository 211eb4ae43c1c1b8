"""The names of the cluster's named actors (in the configured Ray namespace), in one place: every
module that creates, finds or stops an actor by name takes it from here, so stopping a cluster
or killing an actor in a drill does not import the actor's code."""
from __future__ import annotations

DIRECTORY_NAME = "memos-directory"
AUTH_ACTOR_NAME = "memos-auth"
LORA_ACTOR_NAME = "memos-lora"
SCHEDULER_ACTOR_NAME = "memos-scheduler"


def shard_actor_name(shard_id: str) -> str:
    return f"memos-{shard_id}"


def kv_actor_name(actor_id: str) -> str:
    return f"memos-{actor_id}"


def kv_actor_ids(num_actors: int) -> list[str]:
    return [f"kv-{i}" for i in range(num_actors)]
