"""Who is calling, and may they: authentication against an `AuthState`, and the access rule of
each operation (its `Access` in the operation table, `core/operations.py`). Pure functions over
a snapshot; the gateway calls `authenticate` and `authorize` on every request (gRPC and the Ray
transport alike), after validation and before any audit, routing or storage access.

Permissions on a cube: read < write < admin (the owner has admin). Role `admin` may do
everything. A cube the caller may not use answers PERMISSION_DENIED whether or not it exists, so
its existence does not leak (CreateCube is the exception: cube ids are one namespace).
"""
from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence

from memos_cluster.auth.keys import bearer_token, split_key
from memos_cluster.auth.state import ApiKey, AuthState
from memos_cluster.core.auth_types import Principal, permission_rank
from memos_cluster.core.errors import InvalidArgument, PermissionDenied, Unauthenticated
from memos_cluster.core.operations import ANY, DEFERRED, OPERATIONS, SELF, SYSTEM

INVALID_KEY = "invalid, revoked or expired API key"


_DECOY = ApiKey("", "", "", "00" * 16, "", 0.0)  # hashed against for unknown key ids


def authenticate(state: AuthState, metadata: Sequence[tuple[str, str]],
                 now_s: float) -> Principal:
    key_id, secret = split_key(bearer_token(metadata))
    key = state.keys.get(key_id)
    # Hash whether or not the id is known, so timing does not tell which ids exist.
    matches = (key or _DECOY).matches(secret)
    if key is None or not matches or not key.is_active(now_s):
        raise Unauthenticated(INVALID_KEY)
    user = state.users.get(key.user_id)
    if user is None:
        raise Unauthenticated(INVALID_KEY)
    return Principal(user.user_id, user.role, key_id, key.rate_limit_rps)


def permission_on(state: AuthState, principal: Principal, cube_id: str) -> Optional[str]:
    if principal.is_admin:
        return "admin"
    access = state.cubes.get(cube_id)
    return access.permission_of(principal.user_id) if access is not None else None


def require(state: AuthState, principal: Principal, cube_ids: Iterable[str],
            needed: str) -> None:
    for cube_id in cube_ids:
        have = permission_on(state, principal, cube_id)
        if have is None or permission_rank(have) < permission_rank(needed):
            raise PermissionDenied(f"no {needed} permission on cube {str(cube_id)[:128]!r}",
                                   "cube_id")


def authorize(state: AuthState, principal: Principal, operation: str, args: tuple) -> None:
    """Raise PermissionDenied unless `principal` may call `operation` with `args` (domain
    types, as the gateway's operation table takes them)."""
    op = OPERATIONS.get(operation)
    if op is None:
        raise InvalidArgument(f"{operation!r} is not a memos operation", "method")
    rule = op.access
    if rule.need in (ANY, DEFERRED) or principal.is_admin:
        return
    if rule.need == SYSTEM:
        raise PermissionDenied(f"{operation} needs the admin role")
    try:
        subjects = rule.subjects(state, args)
    except (AttributeError, IndexError, TypeError) as exc:  # a hand-rolled Ray-transport call
        raise InvalidArgument(f"{operation}: malformed arguments ({exc})", "args") from None
    if rule.need == SELF:  # "" names the caller
        if any(s and s != principal.user_id for s in subjects):
            raise PermissionDenied(f"{operation}: only for your own user, or an admin")
        return
    require(state, principal, subjects, rule.need)


def visible_cubes(state: AuthState, principal: Principal, cubes: Sequence[Any]) -> list[Any]:
    """The cubes (anything with .cube_id) of a listing the caller may read."""
    return [c for c in cubes if permission_on(state, principal, c.cube_id) is not None]
