"""The auth actor (one per cluster, detached, restartable): the single writer of users, keys and
grants (`memos_cluster.auth.registry`), persisted under data_dir/auth/. Gateways keep a copy of
its state and refresh it (`AuthGate`), so a request never waits on this actor except when it
changes who may do what.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Optional, Sequence

import ray

from memos_cluster.auth.access import (
    UNAUTHENTICATED_ADMIN, Principal, authenticate, authorize)
from memos_cluster.auth.audit import AuditLog
from memos_cluster.auth.bootstrap import read_bootstrap_key
from memos_cluster.auth.ratelimit import RateLimiter
from memos_cluster.auth.registry import AuthRegistry
from memos_cluster.auth.state import AuthState
from memos_cluster.config import MemosConfig

from actors.handles import call_actor

AUTH_ACTOR_NAME = "memos-auth"
# What the gateway may ask the registry to do (its methods, by name).
REGISTRY_CALLS = frozenset({"create_user", "delete_user", "issue_key", "revoke_key",
                            "claim_cube", "confirm_cube",
                            "release_cube", "share", "revoke", "record"})


class AuthActor:
    def __init__(self, config: MemosConfig):
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

    def snapshot(self, since_epoch: int) -> Optional[AuthState]:
        """The state if it changed since `since_epoch` (None otherwise). Who calls it: every
        gateway replica, every auth.refresh_s."""
        state = self._ready().state
        return None if state.epoch == since_epoch else state

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
        self._actor = get_or_create_auth_actor(config) if self.enabled else None
        self._limiter = RateLimiter(config.auth.rate_limit_rps, config.auth.rate_limit_burst)
        self._timeout_s = config.cluster.call_timeout_s
        self.state: Optional[AuthState] = None
        self._refreshed_at = float("-inf")
        self._lock = asyncio.Lock()

    async def _current(self) -> AuthState:
        if time.monotonic() - self._refreshed_at >= self._config.auth.refresh_s:
            async with self._lock:
                if time.monotonic() - self._refreshed_at >= self._config.auth.refresh_s:
                    epoch = self.state.epoch if self.state is not None else -1
                    newer = await call_actor(self._actor, "the auth store", "snapshot", epoch,
                                             timeout_s=self._timeout_s)
                    self._apply(newer)
                    self._refreshed_at = time.monotonic()
        return self.state

    def _apply(self, state: Optional[AuthState]) -> None:
        if state is not None and (self.state is None or state.epoch > self.state.epoch):
            self.state = state

    async def check(self, metadata: Sequence[tuple[str, str]], operation: str,
                    args: tuple) -> Principal:
        """Who calls it: the gateway, first thing on every request. Unauthenticated,
        ResourceExhausted (rate) or PermissionDenied, else the caller."""
        if not self.enabled:
            return UNAUTHENTICATED_ADMIN
        state = await self._current()
        principal = authenticate(state, metadata, time.time())
        self._limiter.admit(principal.key_id, principal.rate_limit_rps)
        authorize(state, principal, operation, args)
        return principal

    async def change(self, method: str, *args: Any) -> Any:
        """A registry change (see REGISTRY_CALLS); its result."""
        result, state = await call_actor(self._actor, "the auth store", "call", method, *args,
                                         timeout_s=self._timeout_s)
        self._apply(state)
        return result

    async def audit(self, principal: Principal, action: str, target: str,
                    detail: str = "") -> None:
        """Log an admin action done by the gateway (no-op with auth disabled)."""
        if self.enabled:
            await self.change("record", principal.user_id, action, target, detail)
