"""Protobuf <-> domain types for the tenancy RPCs (users, API keys, cube grants). Times are
epoch seconds (float) in the domain and epoch milliseconds (int, 0 = none) on the wire."""
from __future__ import annotations

from typing import Optional

from memos_cluster.api.memos.v1 import memos_pb2 as pb
from memos_cluster.core.auth_types import CubeAccess, KeyInfo, Principal, User


def _ms(seconds: Optional[float]) -> int:
    return 0 if seconds is None else int(round(seconds * 1000))


def _s(ms: int) -> Optional[float]:
    return ms / 1000.0 if ms else None


def principal_to_pb(principal: Principal) -> pb.WhoAmIResponse:
    return pb.WhoAmIResponse(user_id=principal.user_id, role=principal.role,
                             key_id=principal.key_id)


def principal_from_pb(message: pb.WhoAmIResponse) -> Principal:
    return Principal(message.user_id, message.role, message.key_id)


def user_to_pb(user: User) -> pb.User:
    return pb.User(user_id=user.user_id, role=user.role, created_at_ms=_ms(user.created_at_s))


def user_from_pb(message: pb.User) -> User:
    return User(message.user_id, message.role, message.created_at_ms / 1000.0)


def key_to_pb(key: KeyInfo) -> pb.ApiKeyInfo:
    return pb.ApiKeyInfo(key_id=key.key_id, user_id=key.user_id, name=key.name,
                         created_at_ms=_ms(key.created_at_s), expires_at_ms=_ms(key.expires_at_s),
                         revoked_at_ms=_ms(key.revoked_at_s),
                         rate_limit_rps=key.rate_limit_rps)


def key_from_pb(message: pb.ApiKeyInfo) -> KeyInfo:
    return KeyInfo(message.key_id, message.user_id, message.name, message.created_at_ms / 1000.0,
                   _s(message.expires_at_ms), _s(message.revoked_at_ms),
                   message.rate_limit_rps)


def access_to_pb(access: CubeAccess) -> pb.CubeAccess:
    return pb.CubeAccess(cube_id=access.cube_id, owner=access.owner, grants=[
        pb.CubeGrant(user_id=u, permission=p) for u, p in sorted(access.grants.items())])


def access_from_pb(message: pb.CubeAccess) -> CubeAccess:
    return CubeAccess(message.cube_id, message.owner,
                      {g.user_id: g.permission for g in message.grants})
