"""The gateway's implementation of each operation of the table (`memos_cluster.core.operations`),
on domain types, one method per operation name, shared by the gRPC RPCs and the Ray transport.
Each takes the authenticated caller first: by the time one runs, its arguments were validated,
`AuthGate.check` applied its access rule and its audit line was written; the few whose check
needs more than the arguments (training jobs, listings, key owners) finish it here.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Callable, Optional

from memos_cluster.auth.access import require, visible_cubes
from memos_cluster.core.auth_types import ROLES, CubeAccess, KeyInfo, Principal
from memos_cluster.core.config import MemosConfig
from memos_cluster.core.lifecycle import ACTIVE, USEFUL, USEFUL_ACCESSES
from memos_cluster.core.errors import (
    AlreadyExists, FailedPrecondition, NotFound, PermissionDenied)
from memos_cluster.core.tier_types import AdapterListing, current_of

from actors import metrics
from actors.auth import AuthGate
from actors.handles import DirectoryHandle, SchedulerHandle

logger = logging.getLogger("memos_cluster.gateway")


class Operations:
    def __init__(self, config: MemosConfig, services, directory: DirectoryHandle,
                 scheduler: Optional[SchedulerHandle], gate: AuthGate,
                 note: Callable[[list, str], None]):
        self._config = config
        self._service = services.memory
        self.activation = services.activation
        self._parametric = services.parametric
        self._directory = directory
        self._scheduler = scheduler
        self._gate = gate
        self._note = note
        self._background: set[asyncio.Task] = set()

    # ---- cubes and memories -----------------------------------------------------------------
    async def create_cube(self, who: Principal, spec):
        """Claims the id for the caller first (pending, so it grants nothing yet), then creates
        the cube, then confirms. A claim this call made is released when the create fails (an
        id that existed without an owner stays admin-only); a retry that finds the cube its
        earlier attempt made confirms it."""
        if not self._gate.enabled:
            return await self._service.create_cube(spec)
        is_new = await self._gate.change("claim_cube", who.user_id, spec.cube_id)
        try:
            created = await self._service.create_cube(spec)
        except AlreadyExists:
            if is_new:
                await self._gate.change("release_cube", who.user_id, spec.cube_id)
            else:
                await self._gate.change("confirm_cube", who.user_id, spec.cube_id)
            raise
        except Exception:  # not made: free a claim this call made, then the error goes on
            if is_new:
                await self._gate.change("release_cube", who.user_id, spec.cube_id)
            raise
        await self._gate.change("confirm_cube", who.user_id, spec.cube_id)
        return created

    async def delete_cube(self, who: Principal, cube_id):
        """The id stays with its owner (who may create it again; nobody else can): what the
        deleted cube leaves behind (adapters, jobs, scheduler history) never reaches another
        tenant through a reused id."""
        return await self._service.delete_cube(cube_id)

    async def list_cubes(self, who: Principal):
        cubes = await self._service.list_cubes()
        return visible_cubes(self._gate.state, who, cubes) if self._gate.enabled else cubes

    async def get_cube(self, who: Principal, cube_id):
        return await self._service.get_cube(cube_id)

    async def add(self, who: Principal, cube_id, items):
        result = await self._service.add(cube_id, items)
        await self._superseded(who, result.superseded)
        return result

    async def _superseded(self, who: Principal, decisions) -> None:
        """Memories a write superseded: each decision in the audit log (who wrote, which
        memory, by which, why), and the derived tiers told as for a delete: KV caches dropped,
        adapters trained on them marked stale (docs/lifecycle.md)."""
        by_cube: dict[str, list[str]] = {}
        for d in decisions:
            await self._gate.audit(who, "supersede", f"{d.cube_id}/{d.old_id}",
                                   f"by {d.new_id}: {d.reason}")
            by_cube.setdefault(d.cube_id, []).append(d.old_id)
        for cube_id, ids in by_cube.items():
            self.invalidate_later(cube_id, ids, deleted=True)

    async def feedback(self, who: Principal, feedback):
        """wrong and outdated leave the memory inactive (and the tiers are told); useful
        counts as accesses for the scheduler. The audit line (who, when, what) was written
        before the change, by the operation table's rule."""
        result = await self._service.feedback(feedback)
        item = result.memory
        if feedback.kind == USEFUL:
            self._note([(item.cube_id, item.id, item.version)] * USEFUL_ACCESSES, "useful")
        else:
            self.invalidate_later(item.cube_id, [item.id], deleted=True)
        await self._superseded(who, result.superseded)
        return result

    async def search(self, who: Principal, query):
        hits = await self._parametric.annotate(await self._service.search(query))
        self._note([(h.item.cube_id, h.item.id, h.item.version) for h in hits], "search",
                   query.query)
        return hits

    async def get(self, who: Principal, cube_id, ids, states=()):
        result = await self._service.get(cube_id, ids, states)
        self._note([(m.cube_id, m.id, m.version) for m in result.items], "get")
        return result

    async def list_memories(self, who: Principal, query):
        # Not an access event: browsing a table is not using a memory (the scheduler's
        # frequencies count searches, gets and generations).
        return await self._service.list_memories(query)

    async def list_entities(self, who: Principal, query):
        # Not access events either: the entity graph is browsed, its memories are not used.
        return await self._service.list_entities(query)

    async def get_entity(self, who: Principal, cube_id, entity_id):
        return await self._service.get_entity(cube_id, entity_id)

    async def update(self, who: Principal, update):
        item, superseded = await self._service.update(update)
        self.invalidate_later(item.cube_id, [item.id], deleted=item.state != ACTIVE)
        await self._superseded(who, [d for d in superseded if d.old_id != item.id])
        return item

    async def history(self, who: Principal, cube_id, memory_id):
        return await self._service.history(cube_id, memory_id)

    async def delete(self, who: Principal, cube_id, ids):
        result = await self._service.delete(cube_id, ids)
        if result.num_deleted:
            self.invalidate_later(cube_id, list(ids), deleted=True)
        return result

    async def health(self, who: Principal):
        """Shard details (cube counts, errors) are for admins; others see ok or not."""
        shards = await self._service.health()
        return shards if who.is_admin else [replace(s, detail="") for s in shards]

    async def ping(self, who: Principal) -> None:
        """The no-op, the overhead baseline (authentication included, like every call)."""

    def generate(self, who: Principal, call):
        return self.activation.generate(call)

    async def chat(self, who: Principal, call):
        """A chat turn; remembering it (the call's or the configured default) also needs
        write permission on the first cube, checked before anything is generated."""
        remember = self._config.activation.chat_remember if call.remember is None \
            else call.remember
        if remember and self._gate.enabled:
            require(self._gate.state, who, call.cube_ids[:1], "write")
        async for event in self.activation.chat(call):
            yield event

    def invalidate_later(self, cube_id: str, ids: list[str], deleted: bool) -> None:
        """Drop KV caches holding the old versions (and, for deletes, stop serving adapters
        trained on the memories), off the request path: a stale cache can never be used anyway
        (blocks are composed from current versions), so the write does not wait for, or fail
        with, the KV actor."""
        loop = asyncio.get_running_loop()
        work = [self.activation.invalidate(cube_id, ids, deleted)]
        if deleted:
            work.append(self._parametric.mark_stale(cube_id, ids))
        for coroutine in work:
            task = loop.create_task(coroutine)
            self._background.add(task)
            task.add_done_callback(self._log_background)

    def _log_background(self, task: asyncio.Task) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("invalidating after a write failed (stale KV caches stay unusable; "
                           "adapters are marked stale on the next delete): %s",
                           task.exception())

    # ---- activation and parametric memory, the scheduler, the shards --------------------------
    async def activate(self, who: Principal, cube_id, memory_ids, replace=False):
        return await self.activation.activate(cube_id, memory_ids, replace)

    async def train(self, who: Principal, cube_id, memory_ids, rank=0, steps=0,
                    learning_rate=0.0, questions=()):
        parametric = self._parametric
        spec = parametric.spec(rank, steps, learning_rate)
        if questions:
            return await parametric.train_questions(cube_id, questions, spec)
        return await parametric.train(cube_id, memory_ids, spec)

    async def _job_for(self, who: Principal, job_id, needed: str):
        """The job, if the caller may see it; another tenant's job reads as no job at all."""
        job = await self._parametric.job(job_id)
        if self._gate.enabled:
            try:
                require(self._gate.state, who, [job.cube_id], needed)
            except PermissionDenied:
                raise NotFound(f"no training job {job_id!r}", "job_id") from None
        return job

    async def training_job(self, who: Principal, job_id):
        return await self._job_for(who, job_id, "read")

    async def cancel_training(self, who: Principal, job_id):
        await self._job_for(who, job_id, "write")
        return await self._parametric.cancel(job_id)

    async def adapters(self, who: Principal, cube_id) -> AdapterListing:
        records = await self._parametric.list(cube_id)
        current = current_of(records)
        return AdapterListing(tuple(records), current.version if current else 0)

    async def delete_adapter(self, who: Principal, cube_id, version):
        await self._parametric.delete(cube_id, version)

    async def tier_status(self, who: Principal, cube_id):
        await self._service.get_cube(cube_id)  # NotFound for an unknown cube
        return await self._require_scheduler().tier_status(cube_id)

    async def scheduler(self, who: Principal, action):
        return await self._require_scheduler().control(
            action, timeout_s=self._config.gateway.request_timeout_s)

    async def gateway_stats(self, who: Principal):
        """This replica's recent requests (each replica counts its own calls)."""
        return metrics.REQUEST_STATS.snapshot()

    async def shards(self, who: Principal):
        return await self._directory.status(timeout_s=self._config.gateway.request_timeout_s)

    async def reshard(self, who: Principal, shard_ids):
        status = await self._directory.reshard(
            shard_ids, timeout_s=self._config.gateway.request_timeout_s)
        await self._service.router.refresh()
        return status

    def _require_scheduler(self) -> SchedulerHandle:
        if self._scheduler is None:
            raise FailedPrecondition("the scheduler is disabled (scheduler.enabled: false)")
        return self._scheduler

    # ---- users, keys, grants -----------------------------------------------------------------
    def _require_auth(self) -> None:
        if not self._gate.enabled:
            raise FailedPrecondition("auth is disabled (auth.enabled: false)")

    async def whoami(self, who: Principal) -> Principal:
        return who

    async def create_user(self, who: Principal, user_id, role=""):
        self._require_auth()
        return await self._gate.change("create_user", who.user_id, user_id, role or ROLES[1])

    async def list_users(self, who: Principal):
        self._require_auth()
        return sorted(self._gate.state.users.values(), key=lambda u: u.user_id)

    async def delete_user(self, who: Principal, user_id):
        self._require_auth()
        await self._gate.change("delete_user", who.user_id, user_id)

    async def create_key(self, who: Principal, user_id="", name="",
                         expires_in_s: Optional[float] = None,
                         rate_limit_rps: float = 0.0) -> tuple[KeyInfo, str]:
        self._require_auth()
        if rate_limit_rps and not who.is_admin:
            raise PermissionDenied("only admins set a key's rate limit")
        key, secret = await self._gate.change("issue_key", who.user_id, user_id or who.user_id,
                                              name, expires_in_s or None, rate_limit_rps)
        return key.info(), secret

    async def list_keys(self, who: Principal, user_id=""):
        self._require_auth()
        user_id = user_id or who.user_id
        return sorted((k.info() for k in self._gate.state.keys.values()
                       if k.user_id == user_id), key=lambda k: k.created_at_s)

    async def revoke_key(self, who: Principal, key_id):
        self._require_auth()
        return (await self._gate.change("revoke_key", who.user_id, key_id)).info()

    async def share_cube(self, who: Principal, cube_id, user_id, permission):
        self._require_auth()
        await self._service.get_cube(cube_id)  # NotFound (only an admin gets this far for it)
        return await self._gate.change("share", who.user_id, cube_id, user_id, permission)

    async def revoke_cube(self, who: Principal, cube_id, user_id):
        self._require_auth()
        return await self._gate.change("revoke", who.user_id, cube_id, user_id)

    async def cube_access(self, who: Principal, cube_id) -> CubeAccess:
        self._require_auth()
        return self._gate.state.cubes.get(cube_id) or CubeAccess(cube_id, "", {})
