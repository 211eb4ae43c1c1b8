"""What the auth store holds: users, API keys (hashes only), and each cube's owner and grants.

An `AuthState` is immutable: the registry makes a new one (epoch + 1) for every change, persists
it, and gateways hold the latest copy they were sent. Pure data and its JSON form; no I/O.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Mapping, Optional

from memos_cluster.core.auth_types import CubeAccess, KeyInfo, User
from memos_cluster.core.errors import ConfigError

FORMAT_VERSION = 1


@dataclass(frozen=True)
class ApiKey:
    """A key as stored: the secret itself is never kept, only a salted SHA-256 of it (the
    secret is 256 random bits, so a fast hash is enough; see keys.py)."""

    key_id: str
    user_id: str
    name: str  # the holder's label, e.g. "planner-agent"
    salt: str  # hex
    digest: str  # hex SHA-256 of salt + secret
    created_at_s: float
    expires_at_s: Optional[float] = None  # None: never
    revoked_at_s: Optional[float] = None
    rate_limit_rps: float = 0.0  # requests/s for this key per gateway replica; 0: the default

    def info(self) -> "KeyInfo":
        return KeyInfo(self.key_id, self.user_id, self.name, self.created_at_s,
                       self.expires_at_s, self.revoked_at_s, self.rate_limit_rps)

    def is_active(self, now_s: float) -> bool:
        return self.revoked_at_s is None and (self.expires_at_s is None
                                              or now_s < self.expires_at_s)

    def matches(self, secret: str) -> bool:
        computed = hash_secret(bytes.fromhex(self.salt), secret)
        return hmac.compare_digest(computed, self.digest)


def hash_secret(salt: bytes, secret: str) -> str:
    return hashlib.sha256(salt + secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AuthState:
    epoch: int = 0  # +1 per change
    incarnation: str = ""  # new each time the store is loaded (not persisted); see is_newer_than
    users: Mapping[str, User] = field(default_factory=dict)
    keys: Mapping[str, ApiKey] = field(default_factory=dict)
    cubes: Mapping[str, CubeAccess] = field(default_factory=dict)

    def __post_init__(self) -> None:  # read-only views: a snapshot is shared, never edited
        for name in ("users", "keys", "cubes"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    def changed(self, **parts: Mapping[str, Any]) -> "AuthState":
        return replace(self, epoch=self.epoch + 1, **parts)

    @property
    def version(self) -> tuple[str, int]:
        return self.incarnation, self.epoch

    def is_newer_than(self, other: Optional["AuthState"]) -> bool:
        """Whether a gateway holding `other` should take this state: a later epoch of the same
        incarnation, or any epoch of another (the store was restarted, maybe from a backup)."""
        return other is None or self.incarnation != other.incarnation or \
            self.epoch > other.epoch

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT_VERSION, "epoch": self.epoch,
                "users": [vars(u) for u in self.users.values()],
                "keys": [vars(k) for k in self.keys.values()],
                "cubes": [{"cube_id": c.cube_id, "owner": c.owner, "grants": dict(c.grants),
                           "pending": c.pending} for c in self.cubes.values()]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "AuthState":
        if data.get("format") != FORMAT_VERSION:
            raise ConfigError(f"auth state format {data.get('format')!r} is not "
                              f"{FORMAT_VERSION}")
        try:
            users = {u["user_id"]: User(**u) for u in data["users"]}
            keys = {k["key_id"]: ApiKey(**k) for k in data["keys"]}
            cubes = {c["cube_id"]: CubeAccess(c["cube_id"], c["owner"], dict(c["grants"]),
                                              bool(c.get("pending", False)))
                     for c in data["cubes"]}
            epoch = int(data["epoch"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"auth state is malformed: {exc!r}") from exc
        return cls(epoch, "", users, keys, cubes)
