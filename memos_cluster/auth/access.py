"""Who is calling, and may they: authentication against an `AuthState`, and one access rule per
operation. Pure functions over a snapshot; the gateway calls `authenticate` and `authorize` on
every request (gRPC and the Ray transport alike) before any routing or storage access.

Permissions on a cube: read < write < admin (the owner has admin). Role `admin` may do
everything. A cube the caller may not use answers PERMISSION_DENIED whether or not it exists, so
its existence does not leak (CreateCube is the exception: cube ids are one namespace).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

from memos_cluster.auth.keys import bearer_token, split_key
from memos_cluster.auth.state import ApiKey, AuthState, permission_rank
from memos_cluster.errors import InvalidArgument, PermissionDenied, Unauthenticated

INVALID_KEY = "invalid, revoked or expired API key"


@dataclass(frozen=True)
class Principal:
    user_id: str
    role: str  # "admin" or "user"
    key_id: str  # the key the call was made with ("" when auth is disabled)
    rate_limit_rps: float = 0.0  # the key's own limit (requests/s); 0: the gateway default

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


# Everything is allowed when auth.enabled is false (local experiments only).
UNAUTHENTICATED_ADMIN = Principal("", "admin", "")


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


# ---- one rule per operation ------------------------------------------------------------------
ANY = "any"  # any authenticated caller (the operation itself scopes what it returns)
SYSTEM = "system"  # role admin only
SELF = "self"  # the user named (or owning the key named), or an admin
DEFERRED = "deferred"  # checked by the operation once it knows the cube (training jobs)

Extract = Callable[[AuthState, tuple], Sequence[str]]


def _none(state: AuthState, args: tuple) -> Sequence[str]:
    return ()


def _first(state: AuthState, args: tuple) -> Sequence[str]:
    return (args[0],)


def _query_cubes(state: AuthState, args: tuple) -> Sequence[str]:
    return tuple(args[0].cube_ids)  # SearchQuery and GenerateCall


def _update_cube(state: AuthState, args: tuple) -> Sequence[str]:
    return (args[0].cube_id,)


UNKNOWN_OWNER = "\0unknown"  # nobody's user id: an unknown key is refused like another's


def _key_owner(state: AuthState, args: tuple) -> Sequence[str]:
    key = state.keys.get(args[0])
    return (key.user_id if key is not None else UNKNOWN_OWNER,)


@dataclass(frozen=True)
class Rule:
    need: str  # a permission (read | write | admin) on the cubes, or ANY / SYSTEM / SELF
    subjects: Extract = _none  # the cubes (or for SELF the users) the call touches


RULES: Mapping[str, Rule] = {
    "create_cube": Rule(ANY), "list_cubes": Rule(ANY), "health": Rule(ANY),
    "ping": Rule(ANY), "whoami": Rule(ANY),
    "get_cube": Rule("read", _first), "search": Rule("read", _query_cubes),
    "get": Rule("read", _first), "history": Rule("read", _first),
    "generate": Rule("read", _query_cubes), "adapters": Rule("read", _first),
    "tier_status": Rule("read", _first),
    "add": Rule("write", _first), "update": Rule("write", _update_cube),
    "delete": Rule("write", _first), "activate": Rule("write", _first),
    "train": Rule("write", _first),
    "training_job": Rule(DEFERRED), "cancel_training": Rule(DEFERRED),
    "delete_cube": Rule("admin", _first), "delete_adapter": Rule("admin", _first),
    "share_cube": Rule("admin", _first), "revoke_cube": Rule("admin", _first),
    "cube_access": Rule("admin", _first),
    "scheduler": Rule(SYSTEM), "shards": Rule(SYSTEM), "reshard": Rule(SYSTEM),
    "create_user": Rule(SYSTEM), "list_users": Rule(SYSTEM), "delete_user": Rule(SYSTEM),
    "create_key": Rule(SELF, _first), "list_keys": Rule(SELF, _first),
    "revoke_key": Rule(SELF, _key_owner),
}


def authorize(state: AuthState, principal: Principal, operation: str, args: tuple) -> None:
    """Raise PermissionDenied unless `principal` may call `operation` with `args` (domain
    types, as the gateway's operation table takes them)."""
    rule = RULES.get(operation)
    if rule is None:
        raise InvalidArgument(f"{operation!r} is not a memos operation", "method")
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
