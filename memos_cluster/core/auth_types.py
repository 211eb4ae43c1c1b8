"""Domain types of tenancy: users, what a caller may see of an API key, a cube's owner and grants,
and the authenticated caller of a request. Shared by the auth store, the gateway, the API
conversions and the client."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

# The header a call carries: `authorization: Bearer <key>` (gRPC metadata keys are lower case).
AUTH_HEADER = "authorization"
ROLES = ("admin", "user")
# Ordered: each permission includes the ones before it.
PERMISSIONS = ("read", "write", "admin")


def permission_rank(permission: str) -> int:
    return PERMISSIONS.index(permission)


@dataclass(frozen=True)
class User:
    user_id: str
    role: str  # "admin": every cube and the cluster; "user": own and granted cubes
    created_at_s: float  # Unix epoch seconds


@dataclass(frozen=True)
class KeyInfo:
    """What a caller may see of a key: everything but the salt and the hash."""

    key_id: str
    user_id: str
    name: str
    created_at_s: float  # Unix epoch seconds
    expires_at_s: Optional[float] = None
    revoked_at_s: Optional[float] = None
    rate_limit_rps: float = 0.0  # 0: the gateway's default (auth.rate_limit_rps)


@dataclass(frozen=True)
class CubeAccess:
    """Who may use a cube. `owner` has admin on it ("" for a cube whose owner was deleted or
    that predates auth: then only admins); `grants` maps user ids to a permission."""

    cube_id: str
    owner: str
    grants: Mapping[str, str] = field(default_factory=dict)
    # Claimed by a CreateCube still under way: grants nothing until the cube exists.
    pending: bool = False

    def permission_of(self, user_id: str) -> Optional[str]:
        if self.pending:
            return None
        if user_id and user_id == self.owner:
            return "admin"
        return self.grants.get(user_id)


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
