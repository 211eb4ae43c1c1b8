"""Every `.remote()` call to a memos-cluster actor goes through these handle classes, which turn
Ray's failure modes into memos errors: an exception raised by the core inside an actor comes back
as itself; a dead, restarting or slow actor becomes Unavailable (retryable)."""
from __future__ import annotations

import asyncio
import logging

import ray
from ray.exceptions import (
    ActorDiedError,
    ActorUnavailableError,
    GetTimeoutError,
    RayActorError,
    RayTaskError,
)

from memos_cluster.errors import InternalError, MemosError, Unavailable
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
