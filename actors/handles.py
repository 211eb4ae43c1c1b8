"""Every `.remote()` call to a memos-cluster actor goes through these handle classes, which turn
Ray's failure modes into memos errors: an exception raised by the core inside an actor comes back
as itself; a dead, restarting or slow actor becomes Unavailable (retryable)."""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Optional

import ray
from ray.exceptions import (
    ActorDiedError,
    ActorUnavailableError,
    GetTimeoutError,
    RayActorError,
    RayTaskError,
)

from memos_cluster.errors import InternalError, MemosError, NotFound, Unavailable
from memos_cluster.service import DispatchingShard

logger = logging.getLogger(__name__)

DIRECTORY_NAME = "memos-directory"


def shard_actor_name(shard_id: str) -> str:
    return f"memos-{shard_id}"


async def call_actor(actor, what: str, method: str, *args, timeout_s: float):
    """Await actor.method.remote(*args) with a deadline, translating failures (see module doc)."""
    try:
        return await asyncio.wait_for(getattr(actor, method).remote(*args), timeout=timeout_s)
    except RayTaskError as exc:
        cause = exc.cause
        if isinstance(cause, MemosError):
            raise cause from None
        logger.error("%s.%s failed: %s", what, method, exc)
        raise InternalError(f"{what} failed in {method}: {type(cause).__name__}") from None
    except (ActorDiedError, ActorUnavailableError, RayActorError) as exc:
        raise Unavailable(f"{what} is unavailable (restarting?); retry shortly") from exc
    except (asyncio.TimeoutError, GetTimeoutError) as exc:
        raise Unavailable(f"{what} did not answer within {timeout_s:.0f} s; retry shortly") \
            from exc


class ShardHandle(DispatchingShard):
    """A ShardPort over a named PlaintextShardActor. The actor is looked up by name, so the
    handle stays valid across the actor's restarts."""

    def __init__(self, shard_id: str, namespace: str, timeout_s: float):
        self.shard_id = shard_id
        self._namespace = namespace
        self._timeout_s = timeout_s
        self._actor = None

    def _get_actor(self):
        if self._actor is None:
            try:
                self._actor = ray.get_actor(shard_actor_name(self.shard_id),
                                            namespace=self._namespace)
            except ValueError as exc:
                raise Unavailable(f"{self.shard_id} does not exist yet; retry shortly") from exc
        return self._actor

    async def _call(self, name: str, *args):
        return await call_actor(self._get_actor(), self.shard_id, name, *args,
                                timeout_s=self._timeout_s)


class KVHandle:
    """A KVPort (memos_cluster.activation.service) over a named KVCacheActor, looked up by
    name so it survives the actor's restarts; errors translated as for shards."""

    def __init__(self, actor_id: str, namespace: str, timeout_s: float,
                 create: Optional[Callable[[], Any]] = None):
        """`create()` makes the actor when a call needs it and it does not exist yet (KV actors
        load a model, so they are made on first use)."""
        self.actor_id = actor_id
        self._namespace = namespace
        self._timeout_s = timeout_s
        self._create = create

    def _existing(self):
        try:
            return ray.get_actor(f"memos-{self.actor_id}", namespace=self._namespace)
        except ValueError:
            return None

    def _actor(self):
        actor = self._existing()
        if actor is None:
            if self._create is None:
                raise Unavailable(f"{self.actor_id} does not exist yet; retry shortly")
            actor = self._create()
        return actor

    async def _call(self, method: str, *args):
        return await call_actor(self._actor(), self.actor_id, method, *args,
                                timeout_s=self._timeout_s)

    async def set_block(self, cube_id, memories):
        return await self._call("set_block", cube_id, list(memories))

    async def selection(self, cube_ids):
        """Empty blocks when the actor was never created (nothing was activated)."""
        actor = self._existing()
        if actor is None:
            return {c: [] for c in cube_ids}
        return await call_actor(actor, self.actor_id, "selection", list(cube_ids),
                                timeout_s=self._timeout_s)

    async def invalidate(self, cube_id, memory_ids, deleted):
        """0 when the actor was never created: it holds no caches to invalidate."""
        actor = self._existing()
        if actor is None:
            return 0
        return await call_actor(actor, self.actor_id, "invalidate", cube_id, list(memory_ids),
                                deleted, timeout_s=self._timeout_s)

    async def generate(self, request, adapters=()):
        """Each event as the actor yields it (a Ray streaming generator)."""
        stream = self._actor().generate.options(num_returns="streaming").remote(
            request, list(adapters))
        while True:
            try:
                ref = await asyncio.wait_for(stream.__anext__(), timeout=self._timeout_s)
            except StopAsyncIteration:
                return
            except (asyncio.TimeoutError, GetTimeoutError) as exc:
                raise Unavailable(f"{self.actor_id} produced nothing for {self._timeout_s:.0f}"
                                  " s; retry shortly") from exc
            except (ActorDiedError, ActorUnavailableError, RayActorError) as exc:
                raise Unavailable(f"{self.actor_id} is unavailable (restarting?); retry "
                                  "shortly") from exc
            yield await _translated(ref, self.actor_id, "generate")


async def _translated(ref, what: str, method: str):
    try:
        return await ref
    except RayTaskError as exc:
        if isinstance(exc.cause, MemosError):
            raise exc.cause from None
        logger.error("%s.%s failed: %s", what, method, exc)
        raise InternalError(f"{what} failed in {method}: {type(exc.cause).__name__}") from None
    except (ActorDiedError, ActorUnavailableError, RayActorError) as exc:
        raise Unavailable(f"{what} is unavailable (restarting?); retry shortly") from exc


class TrainerHandle:
    """A TrainerPort (memos_cluster.parametric.service) over the named LoRA trainer actor."""

    def __init__(self, namespace: str, timeout_s: float,
                 create: Optional[Callable[[], Any]] = None):
        self._namespace = namespace
        self._timeout_s = timeout_s
        self._create = create  # makes the trainer on the first training run

    async def _call(self, method: str, *args):
        try:
            actor = ray.get_actor("memos-lora", namespace=self._namespace)
        except ValueError as exc:
            if self._create is None or method != "start":
                raise NotFound("no training job here (the trainer has not run one)",
                               "job_id") from exc
            actor = self._create()
        return await call_actor(actor, "lora-trainer", method, *args, timeout_s=self._timeout_s)

    async def start(self, cube_id, memories, spec):
        return await self._call("start", cube_id, list(memories), spec)

    async def job(self, job_id):
        return await self._call("job", job_id)

    async def cancel(self, job_id):
        return await self._call("cancel", job_id)
