"""Every `.remote()` call to a memos-cluster actor goes through these handle classes, which turn
Ray's failure modes into memos errors (`ray_errors`): an exception raised by the core inside an
actor comes back as itself; a dead, restarting or slow actor becomes Unavailable (retryable).
Each actor has a typed handle here, so no caller spells an actor's method names."""
from __future__ import annotations

import asyncio
from typing import Any, Callable, Optional, Sequence

import ray
from ray.exceptions import GetTimeoutError

from memos_cluster.client.ray_transport import ray_errors
from memos_cluster.core import logs
from memos_cluster.core.errors import NotFound, ShardMissing, Unavailable
from actors.names import shard_actor_name

__all__ = ["AuthStoreHandle", "DirectoryHandle", "KVHandle", "NamedActor", "SchedulerHandle",
           "ShardHandle", "TrainerHandle", "call_actor", "ray_errors"]



async def call_actor(actor, what: str, method: str, *args, timeout_s: float,
                     on_dead: Optional[Callable[[], None]] = None):
    """Await actor.method.remote(*args) with a deadline, translating failures (see module doc)."""
    with ray_errors(what, method, on_dead):
        try:
            return await asyncio.wait_for(getattr(actor, method).remote(*args), timeout=timeout_s)
        except (asyncio.TimeoutError, GetTimeoutError) as exc:
            raise Unavailable(f"{what} did not answer within {timeout_s:.0f} s; retry shortly") \
                from exc


class NamedActor:
    """A named actor's handle, looked up once and kept (a named handle stays valid across the
    actor's restarts; it is dropped when the actor is found dead). `create()`, when given, makes
    the actor the first time a call needs it."""

    def __init__(self, name: str, namespace: str, create: Optional[Callable[[], Any]] = None,
                 missing: type[Unavailable] = Unavailable):
        self.name = name
        self._namespace = namespace
        self._create = create
        self._missing = missing  # raised by get() when there is no such actor
        self._handle: Any = None

    def existing(self) -> Any:
        """The handle, or None when no such actor exists (nothing is created)."""
        if self._handle is None:
            try:
                self._handle = ray.get_actor(self.name, namespace=self._namespace)
            except ValueError:
                return None
        return self._handle

    def get(self) -> Any:
        handle = self.existing()
        if handle is None:
            if self._create is None:
                raise self._missing(f"{self.name} does not exist yet; retry shortly")
            handle = self._handle = self._create()
        return handle

    def forget(self) -> None:
        self._handle = None


class ShardHandle:
    """A ShardPort (tiers/plaintext/service.py) over a named PlaintextShardActor: every call goes
    through the actor's `serve`, which carries the request id into its logs."""

    def __init__(self, shard_id: str, namespace: str, timeout_s: float):
        self.shard_id = shard_id
        # No actor for a shard the caller's layout names: the router refreshes and re-routes.
        self._actor = NamedActor(shard_actor_name(shard_id), namespace, missing=ShardMissing)
        self._timeout_s = timeout_s

    async def call(self, method: str, *args: Any) -> Any:
        return await call_actor(self._actor.get(), self.shard_id, "serve", method,
                                logs.request_id.get(), *args,
                                timeout_s=self._timeout_s, on_dead=self._actor.forget)


class KVHandle:
    """A KVPort (memos_cluster.tiers.activation.service) over a named KVCacheActor, created on first
    use (it loads a model); errors translated as for shards."""

    def __init__(self, actor: NamedActor, timeout_s: float):
        self.actor_id = actor.name
        self._actor = actor
        self._timeout_s = timeout_s

    async def _call(self, handle, method: str, *args):
        return await call_actor(handle, self.actor_id, method, *args,
                                timeout_s=self._timeout_s, on_dead=self._actor.forget)

    async def set_block(self, cube_id, memories):
        return await self._call(self._actor.get(), "set_block", cube_id, list(memories))

    async def selection(self, cube_ids):
        """Empty blocks when the actor was never created (nothing was activated)."""
        handle = self._actor.existing()
        if handle is None:
            return {c: [] for c in cube_ids}
        return await self._call(handle, "selection", list(cube_ids))

    async def invalidate(self, cube_id, memory_ids, deleted):
        """0 when the actor was never created: it holds no caches to invalidate."""
        handle = self._actor.existing()
        if handle is None:
            return 0
        return await self._call(handle, "invalidate", cube_id, list(memory_ids), deleted)

    def generate(self, request, adapters=()):
        """Each event as the actor yields it (a Ray streaming generator)."""
        return self._stream("generate", request, list(adapters))

    def chat(self, request):
        """A chat turn's events as the actor yields them."""
        return self._stream("chat", request)

    async def _stream(self, method: str, *args):
        with ray_errors(self.actor_id, method, self._actor.forget):
            stream = getattr(self._actor.get(), method).options(
                num_returns="streaming").remote(*args)
            while True:
                try:
                    ref = await asyncio.wait_for(stream.__anext__(), timeout=self._timeout_s)
                except StopAsyncIteration:
                    return
                except (asyncio.TimeoutError, GetTimeoutError) as exc:
                    raise Unavailable(f"{self.actor_id} produced nothing for "
                                      f"{self._timeout_s:.0f} s; retry shortly") from exc
                yield await ref


class TrainerHandle:
    """A TrainerPort (memos_cluster.tiers.parametric.service) over the named LoRA trainer actor,
    created by the first training run."""

    def __init__(self, actor: NamedActor, timeout_s: float):
        self._actor = actor
        self._timeout_s = timeout_s

    async def _call(self, method: str, *args):
        handle = self._actor.get() if method.startswith("start") else self._actor.existing()
        if handle is None:
            raise NotFound("no training job here (the trainer has not run one)", "job_id")
        return await call_actor(handle, "lora-trainer", method, *args,
                                timeout_s=self._timeout_s, on_dead=self._actor.forget)

    async def start(self, cube_id, memories, spec):
        return await self._call("start", cube_id, list(memories), spec)

    async def start_questions(self, cube_id, lessons, spec):
        return await self._call("start_questions", cube_id, list(lessons), spec)

    async def job(self, job_id):
        return await self._call("job", job_id)

    async def cancel(self, job_id):
        return await self._call("cancel", job_id)


class SchedulerHandle:
    """The scheduler actor (`actors/scheduler.py`), for gateways."""

    def __init__(self, actor: Any, timeout_s: float):
        self._actor = actor
        self._timeout_s = timeout_s

    async def _call(self, method: str, *args: Any, timeout_s: Optional[float] = None) -> Any:
        return await call_actor(self._actor, "scheduler", method, *args,
                                timeout_s=timeout_s or self._timeout_s)

    def start(self) -> None:
        """Fire and forget: the actor starts its cycle loop."""
        self._actor.start.remote()

    async def record(self, events: Sequence[Any], num_dropped: int) -> None:
        await self._call("record", list(events), num_dropped)

    async def control(self, action: str, timeout_s: float):
        return await self._call("control", action, timeout_s=timeout_s)

    async def tier_status(self, cube_id: str):
        return await self._call("tier_status", cube_id)


class DirectoryHandle:
    """The cube directory actor (`actors/directory.py`), for gateways and drivers."""

    def __init__(self, actor: Any, timeout_s: float):
        self.actor = actor
        self._timeout_s = timeout_s

    async def _call(self, method: str, *args: Any, timeout_s: Optional[float] = None) -> Any:
        return await call_actor(self.actor, "the cube directory", method, *args,
                                timeout_s=timeout_s or self._timeout_s)

    def ensure_shards(self):
        """Blocking: the directory makes every shard exist and opens their storage."""
        return ray.get(self.actor.ensure_shards.remote())

    async def layout(self):
        return await self._call("layout")

    async def status(self, timeout_s: Optional[float] = None):
        return await self._call("status", timeout_s=timeout_s)

    async def reshard(self, shard_ids: Sequence[str], timeout_s: Optional[float] = None):
        return await self._call("reshard", tuple(shard_ids), timeout_s=timeout_s)


class AuthStoreHandle:
    """The auth actor (`actors/auth.py`), for gateway replicas."""

    def __init__(self, actor: Any, timeout_s: float):
        self._actor = actor
        self._timeout_s = timeout_s

    async def snapshot(self, since: tuple[str, int], timeout_s: float):
        return await call_actor(self._actor, "the auth store", "snapshot", since,
                                timeout_s=timeout_s)

    async def change(self, method: str, *args: Any):
        """(result, new state) of one registry change (see `AuthActor.call`)."""
        return await call_actor(self._actor, "the auth store", "call", method, *args,
                                timeout_s=self._timeout_s)
