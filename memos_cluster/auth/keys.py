"""API key strings: `memos_<key_id>_<secret>`, where key_id (12 hex digits) finds the stored
record and secret (32 random bytes, URL-safe base64) proves possession.

The bootstrap admin key may be any string an operator chooses (at least MIN_BOOTSTRAP_CHARS):
it is stored under the key id `bootstrap`, and a presented key that is not in the generated form
is checked against it.
"""
from __future__ import annotations

import re
import secrets
from typing import Sequence

from memos_cluster.core.auth_types import AUTH_HEADER
from memos_cluster.core.errors import ConfigError, Unauthenticated

PREFIX = "memos_"
BOOTSTRAP_KEY_ID = "bootstrap"
BOOTSTRAP_USER_ID = "admin"
MIN_BOOTSTRAP_CHARS = 32
_FORM = re.compile(r"^memos_([0-9a-f]{12})_([A-Za-z0-9_\-]{43})$")


def new_key_id() -> str:
    return secrets.token_hex(6)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def new_salt() -> bytes:
    return secrets.token_bytes(16)


def format_key(key_id: str, secret: str) -> str:
    return f"{PREFIX}{key_id}_{secret}"


def split_key(key: str) -> tuple[str, str]:
    """(key_id, secret) of a presented key; anything not in the generated form is a candidate
    for the bootstrap key."""
    match = _FORM.match(key)
    if match:
        return match.group(1), match.group(2)
    return BOOTSTRAP_KEY_ID, key


def check_bootstrap_key(key: str, source: str) -> str:
    key = key.strip()
    if len(key) < MIN_BOOTSTRAP_CHARS:
        raise ConfigError(f"the bootstrap admin key from {source} is shorter than "
                          f"{MIN_BOOTSTRAP_CHARS} characters; make one with "
                          "`openssl rand -base64 32`")
    return key


def bearer_token(metadata: Sequence[tuple[str, str]]) -> str:
    """The key in a call's `authorization: Bearer <key>` metadata; Unauthenticated when there
    is none, or more than one."""
    values = [v for k, v in metadata if k.lower() == AUTH_HEADER]
    if not values:
        # One message for every transport: an HTTP header and a gRPC metadata entry alike.
        raise Unauthenticated("missing API key: send 'authorization: Bearer <key>' (an HTTP "
                              "header, or gRPC call metadata)")
    if len(values) > 1:
        raise Unauthenticated("more than one authorization header")
    scheme, _, token = values[0].strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the authorization value must be 'Bearer <key>'")
    return token.strip()
