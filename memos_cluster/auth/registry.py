"""The one writer of users, keys and grants: every change makes a new `AuthState` (epoch + 1),
appends an audit record, writes the state atomically to `state.json`, and only then returns.

Who calls it: `actors.auth.AuthActor` (one per cluster, so there is one writer). Who may do what
is checked before, in the gateway (`access.py`); this class keeps the store consistent (no grant
to an unknown user, no second owner, no key for a deleted user). Clock injectable.
"""
from __future__ import annotations

import json
import secrets
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional

from memos_cluster.auth import keys as keyfmt
from memos_cluster.auth.audit import AuditLog, AuditRecord
from memos_cluster.auth.state import ApiKey, AuthState, hash_secret
from memos_cluster.core.auth_types import PERMISSIONS, ROLES, CubeAccess, User
from memos_cluster.core.errors import (
    AlreadyExists, ConfigError, FailedPrecondition, InvalidArgument, NotFound)
from memos_cluster.core.fileutil import write_atomically
from memos_cluster.core.validation import ID_PATTERN, check_key_settings



class AuthRegistry:
    def __init__(self, state_path: Path, audit: AuditLog,
                 clock: Callable[[], float] = time.time):
        self._path = Path(state_path)
        self._audit = audit
        self._clock = clock
        self.state = AuthState()

    def load(self) -> AuthState:
        """Read state.json if there is one. Who calls it: the auth actor when it starts."""
        if self._path.exists():
            try:
                self.state = AuthState.from_json(json.loads(self._path.read_text()))
            except ValueError as exc:
                raise ConfigError(f"{self._path} is not valid JSON: {exc}") from exc
        # Gateways take a state from a new incarnation whatever its epoch: a file restored from
        # a backup (a lower epoch) is still the truth after a restart.
        self.state = replace(self.state, incarnation=secrets.token_hex(8))
        return self.state

    def _commit(self, state: AuthState, actor: str, action: str, target: str,
                detail: str = "") -> None:
        """Audit first, then the state: a crash in between leaves a logged change that did not
        happen (retried by the caller), never a change that is not in the log."""
        self._audit.append(AuditRecord(self._clock(), actor, action, target, detail))
        write_atomically(self._path, json.dumps(state.to_json(), sort_keys=True).encode())
        self.state = state

    def record(self, actor: str, action: str, target: str, detail: str = "") -> None:
        """An admin action done elsewhere (deleting a cube, resharding), for the audit log."""
        self._audit.append(AuditRecord(self._clock(), actor, action, target, detail))

    # ---- the bootstrap admin -----------------------------------------------------------------
    def ensure_bootstrap(self, secret: Optional[str]) -> None:
        """Make `secret` the bootstrap admin's key (user `admin`, key id `bootstrap`), replacing
        an older one; without a secret, insist that some admin can still log in."""
        state, now = self.state, self._clock()
        if secret is None:
            admins = {u.user_id for u in state.users.values() if u.role == "admin"}
            if not any(k.user_id in admins and k.is_active(now) for k in state.keys.values()):
                raise ConfigError("auth is enabled but there is no admin key: set the bootstrap "
                                  "key's environment variable (auth.admin_key_env) or "
                                  "auth.admin_key_file")
            return
        old = state.keys.get(keyfmt.BOOTSTRAP_KEY_ID)
        if old is not None and old.is_active(now) and old.matches(secret):
            return
        users = dict(state.users)
        users.setdefault(keyfmt.BOOTSTRAP_USER_ID, User(keyfmt.BOOTSTRAP_USER_ID, "admin", now))
        if users[keyfmt.BOOTSTRAP_USER_ID].role != "admin":
            raise ConfigError(f"user {keyfmt.BOOTSTRAP_USER_ID!r} exists and is not an admin")
        salt = keyfmt.new_salt()
        key = ApiKey(keyfmt.BOOTSTRAP_KEY_ID, keyfmt.BOOTSTRAP_USER_ID, "bootstrap", salt.hex(),
                     hash_secret(salt, secret), now)
        keys = {**state.keys, key.key_id: key}
        self._commit(state.changed(users=users, keys=keys), "system", "bootstrap_key",
                     keyfmt.BOOTSTRAP_KEY_ID, "replaced" if old else "created")

    # ---- users and keys ------------------------------------------------------------------------
    def create_user(self, actor: str, user_id: str, role: str) -> User:
        if not ID_PATTERN.match(user_id) or len(user_id) > 128:
            raise InvalidArgument(f"user_id {user_id[:40]!r} is malformed", "user_id")
        if role not in ROLES:
            raise InvalidArgument(f"role must be one of {ROLES}", "role")
        if user_id in self.state.users:
            raise AlreadyExists(f"user {user_id!r} exists", "user_id")
        user = User(user_id, role, self._clock())
        self._commit(self.state.changed(users={**self.state.users, user_id: user}), actor,
                     "create_user", user_id, f"role={role}")
        return user

    def delete_user(self, actor: str, user_id: str) -> None:
        """Removes the user, revokes their keys and drops their grants. Cubes they owned keep
        their data and other grants; only admins can reach them until shared again."""
        state = self.state
        self._user(user_id)
        if user_id == actor:
            raise FailedPrecondition("a user cannot delete themselves", "user_id")
        now = self._clock()
        users = {k: v for k, v in state.users.items() if k != user_id}
        keys = {k: (v if v.user_id != user_id or v.revoked_at_s is not None
                    else replace(v, revoked_at_s=now))
                for k, v in state.keys.items()}
        cubes = {c: replace(a, owner="" if a.owner == user_id else a.owner,
                            grants={u: p for u, p in a.grants.items() if u != user_id})
                 for c, a in state.cubes.items()}
        self._commit(state.changed(users=users, keys=keys, cubes=cubes), actor, "delete_user",
                     user_id)

    def issue_key(self, actor: str, user_id: str, name: str = "",
                  expires_in_s: Optional[float] = None,
                  rate_limit_rps: float = 0.0) -> tuple[ApiKey, str]:
        """A new key for `user_id`: (its record, the key string). The string is returned this
        once and never stored. rate_limit_rps 0 takes the gateways' default."""
        self._user(user_id)
        check_key_settings(name, expires_in_s, rate_limit_rps)
        now = self._clock()
        key_id, secret, salt = keyfmt.new_key_id(), keyfmt.new_secret(), keyfmt.new_salt()
        while key_id in self.state.keys:
            key_id = keyfmt.new_key_id()
        key = ApiKey(key_id, user_id, name, salt.hex(), hash_secret(salt, secret), now,
                     None if expires_in_s is None else now + expires_in_s, None,
                     rate_limit_rps)
        self._commit(self.state.changed(keys={**self.state.keys, key_id: key}), actor,
                     "issue_key", key_id, f"user={user_id}")
        return key, keyfmt.format_key(key_id, secret)

    def revoke_key(self, actor: str, key_id: str) -> ApiKey:
        key = self.state.keys.get(key_id)
        if key is None:
            raise NotFound(f"API key {key_id!r} not found", "key_id")
        if key.revoked_at_s is None:
            key = replace(key, revoked_at_s=self._clock())
            self._commit(self.state.changed(keys={**self.state.keys, key_id: key}), actor,
                         "revoke_key", key_id, f"user={key.user_id}")
        return key

    def _user(self, user_id: str) -> User:
        user = self.state.users.get(user_id)
        if user is None:
            raise NotFound(f"user {user_id!r} not found", "user_id")
        return user

    # ---- cubes -------------------------------------------------------------------------------
    def claim_cube(self, actor: str, cube_id: str) -> bool:
        """Reserve a cube id for `actor` before the cube is created: a pending record that
        grants nothing yet. True if this call made the claim; False if `actor` already holds it
        (a retried create); AlreadyExists if anyone else does."""
        access = self.state.cubes.get(cube_id)
        if access is not None:
            if access.owner != actor:
                raise AlreadyExists(f"cube {cube_id!r} exists", "cube_id")
            return False
        self._put(CubeAccess(cube_id, actor, {}, pending=True), actor, "claim_cube")
        return True

    def confirm_cube(self, actor: str, cube_id: str) -> CubeAccess:
        """The cube now exists: its owner has admin on it."""
        access = self.state.cubes.get(cube_id)
        if access is None or access.owner != actor:
            raise FailedPrecondition(f"cube {cube_id!r} is not claimed by {actor!r}")
        if access.pending:
            access = replace(access, pending=False)
            self._put(access, actor, "create_cube")
        return access

    def release_cube(self, actor: str, cube_id: str) -> None:
        """Forget a pending claim after a create that failed. A confirmed cube keeps its
        record even when deleted: the id stays its owner's."""
        access = self.state.cubes.get(cube_id)
        if access is not None and access.pending:
            cubes = {k: v for k, v in self.state.cubes.items() if k != cube_id}
            self._commit(self.state.changed(cubes=cubes), actor, "release_cube", cube_id,
                         "unfinished create")

    def _put(self, access: CubeAccess, actor: str, action: str, detail: str = "") -> None:
        self._commit(self.state.changed(cubes={**self.state.cubes, access.cube_id: access}),
                     actor, action, access.cube_id, detail)

    def share(self, actor: str, cube_id: str, user_id: str, permission: str) -> CubeAccess:
        if permission not in PERMISSIONS:
            raise InvalidArgument(f"permission must be one of {PERMISSIONS}", "permission")
        self._user(user_id)
        access = self.state.cubes.get(cube_id) or CubeAccess(cube_id, "", {})
        if user_id == access.owner:
            raise FailedPrecondition(f"{user_id!r} owns cube {cube_id!r}", "user_id")
        access = replace(access, grants={**access.grants, user_id: permission})
        self._put(access, actor, "share_cube", f"user={user_id} permission={permission}")
        return access

    def revoke(self, actor: str, cube_id: str, user_id: str) -> CubeAccess:
        access = self.state.cubes.get(cube_id) or CubeAccess(cube_id, "", {})
        if user_id == access.owner:
            raise FailedPrecondition(f"{user_id!r} owns cube {cube_id!r}; the owner's access "
                                     "cannot be revoked", "user_id")
        if user_id in access.grants:
            access = replace(access, grants={u: p for u, p in access.grants.items()
                                             if u != user_id})
            self._put(access, actor, "revoke_cube", f"user={user_id}")
        return access
