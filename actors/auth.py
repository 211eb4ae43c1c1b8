"""The auth actor (one per cluster, detached, restartable): the single writer of users, keys and
grants (`memos_cluster.auth.registry`), persisted under data_dir/auth/. Gateways keep a copy of
its state and refresh it (`AuthGate`), so a request never waits on this actor except when it
changes who may do what.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Optional, Sequence

import ray

from memos_cluster.auth.access import authenticate, authorize
from memos_cluster.auth.audit import AuditLog
from memos_cluster.auth.bootstrap import read_bootstrap_key
from memos_cluster.auth.ratelimit import RateLimiter
from memos_cluster.auth.registry import AuthRegistry
from memos_cluster.auth.state import AuthState
from memos_cluster.core.auth_types import UNAUTHENTICATED_ADMIN, Principal
from memos_cluster.core.config import MemosConfig
from memos_cluster.core.errors import Unavailable
from memos_cluster.core.logs import configure_json_logging

from actors.handles import AuthStoreHandle
from actors.names import AUTH_ACTOR_NAME

logger = logging.getLogger("memos_cluster.auth")

# While the auth actor restarts, a gateway keeps deciding on its last copy for up to this long
# (seconds), then answers UNAVAILABLE: a revocation made meanwhile waits for the actor anyway,
# and a restart takes a few seconds.
MAX_STALE_S = 30.0
SNAPSHOT_TIMEOUT_S = 5.0  # a reload that takes longer counts as the store not answering
# What the gateway may ask the registry to do (its methods, by name).
REGISTRY_CALLS = frozenset({"create_user", "delete_user", "issue_key", "revoke_key",
                            "claim_cube", "confirm_cube",
                            "release_cube", "share", "revoke", "record"})


class AuthActor:
    def __init__(self, config: MemosConfig):
        configure_json_logging("auth")
        auth_dir = config.auth_dir()
        self._config = config
        self._registry = AuthRegistry(auth_dir / "state.json", AuditLog(auth_dir / "audit.jsonl"))
        self._loaded = False

    def _ready(self) -> AuthRegistry:
        if not self._loaded:
            self._registry.load()
            self._registry.ensure_bootstrap(read_bootstrap_key(self._config))
            self._loaded = True
        return self._registry

    def snapshot(self, since: tuple[str, int]) -> Optional[AuthState]:
        """The state unless its (incarnation, epoch) is `since` (then None). Who calls it:
        every gateway replica, every auth.refresh_s."""
        state = self._ready().state
        return None if state.version == tuple(since) else state

    def call(self, method: str, *args: Any) -> tuple[Any, AuthState]:
        """Run one registry change; returns its result and the new state, so the calling gateway
        applies the change at once (others within auth.refresh_s)."""
        if method not in REGISTRY_CALLS:
            raise ValueError(f"{method!r} is not an auth registry call")
        registry = self._ready()
        return getattr(registry, method)(*args), registry.state


def get_or_create_auth_actor(config: MemosConfig):
    return ray.remote(AuthActor).options(
        name=AUTH_ACTOR_NAME, namespace=config.ray.namespace, lifetime="detached",
        get_if_exists=True, max_restarts=-1, num_cpus=0).remote(config)


class AuthGate:
    """A gateway replica's view of the auth store: authenticates and authorizes each request
    against its copy, refreshed every auth.refresh_s (awaited inline, one small actor call a
    second at most), and applies changes made through this replica at once."""

    def __init__(self, config: MemosConfig):
        self._config = config
        self.enabled = config.auth.enabled
        self._store = (AuthStoreHandle(get_or_create_auth_actor(config),
                                       config.cluster.call_timeout_s) if self.enabled else None)
        self._limiter = RateLimiter(config.auth.rate_limit_rps, config.auth.rate_limit_burst)
        self.state: Optional[AuthState] = None
        self._refreshed_at = time.monotonic()  # last successful reload (monotonic seconds)
        self._tried_at = float("-inf")  # last attempt
        self._lock = asyncio.Lock()

    async def _current(self) -> AuthState:
        """The copy to decide on: reloaded every auth.refresh_s (requests meanwhile wait for a
        first load); UNAVAILABLE once the store has not answered for MAX_STALE_S."""
        if self._reload_due():
            async with self._lock:
                if self._reload_due():  # not done meanwhile by the request holding the lock
                    await self._reload()
        stale_s = time.monotonic() - self._refreshed_at
        if stale_s > MAX_STALE_S:
            raise Unavailable(f"the auth store has not answered for {stale_s:.0f} s; "
                              "retry shortly")
        return self.state

    def _reload_due(self) -> bool:
        return self.state is None or \
            time.monotonic() - self._tried_at >= self._config.auth.refresh_s

    async def _reload(self) -> None:
        self._tried_at = time.monotonic()
        since = self.state.version if self.state is not None else ("", -1)
        try:
            newer = await self._store.snapshot(since, timeout_s=SNAPSHOT_TIMEOUT_S)
        except Unavailable:
            if self.state is None:
                raise
            logger.warning("the auth store did not answer; deciding on a copy %.1f s old",
                           time.monotonic() - self._refreshed_at)
            return
        self._apply(newer)
        self._refreshed_at = time.monotonic()

    def _apply(self, state: Optional[AuthState]) -> None:
        if state is not None and state.is_newer_than(self.state):
            self.state = state

    async def check(self, metadata: Sequence[tuple[str, str]], operation: str,
                    args: tuple) -> Principal:
        """Who calls it: the gateway, first thing on every request. Unauthenticated,
        ResourceExhausted (rate) or PermissionDenied, else the caller."""
        if not self.enabled:
            return UNAUTHENTICATED_ADMIN
        state = await self._current()
        principal = authenticate(state, metadata, time.time())
        # A key with its own rate has its own bucket; a user's other keys share one, so
        # minting keys does not multiply the default rate.
        bucket = principal.key_id if principal.rate_limit_rps else f"user:{principal.user_id}"
        self._limiter.admit(bucket, principal.rate_limit_rps)
        authorize(state, principal, operation, args)
        return principal

    async def change(self, method: str, *args: Any) -> Any:
        """A registry change (see REGISTRY_CALLS); its result."""
        result, state = await self._store.change(method, *args)
        self._apply(state)
        return result

    async def audit(self, principal: Principal, action: str, target: str,
                    detail: str = "") -> None:
        """Log an admin action done by the gateway (no-op with auth disabled)."""
        if self.enabled:
            await self.change("record", principal.user_id, action, target, detail)
