"""`memos-cluster whoami | user | key | share | unshare | access | audit`: users, API keys and
cube grants through a running gateway (admins manage users and others' keys; a cube's admins
share it), and the audit log of a local data directory."""
from __future__ import annotations

import time
from typing import Optional

from memos_cluster.auth.audit import AuditLog
from memos_cluster.cli.common import client_for
from memos_cluster.core.auth_types import PERMISSIONS, ROLES
from memos_cluster.core.config import MemosConfig

SECONDS_PER_DAY = 86400


def _when(epoch_s: Optional[float]) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch_s)) if epoch_s else "-"


def add_auth_commands(sub) -> list:
    """The tenancy subcommands; returns those that talk to a gateway (they get --address)."""
    whoami = sub.add_parser("whoami", help="the user and key this machine calls as")
    user = sub.add_parser("user", help="create, list or delete users (admins)")
    user.add_argument("action", choices=["create", "list", "delete"])
    user.add_argument("user_id", nargs="?")
    user.add_argument("--role", choices=ROLES, default="user")
    key = sub.add_parser("key", help="issue, list or revoke API keys")
    key.add_argument("action", choices=["create", "list", "revoke"])
    key.add_argument("key_id", nargs="?", help="revoke: the key id")
    key.add_argument("--user", default="", help="whose keys (default: yours)")
    key.add_argument("--name", default="", help="a label for the key, e.g. the agent using it")
    key.add_argument("--expires-in-days", type=float, help="default: never")
    key.add_argument("--rate-limit", type=float, default=0.0,
                     help="requests/s for this key (admins; default: auth.rate_limit_rps)")
    share = sub.add_parser("share", help="grant a user read, write or admin on a cube")
    share.add_argument("cube")
    share.add_argument("user_id")
    share.add_argument("--permission", choices=PERMISSIONS, default="read")
    unshare = sub.add_parser("unshare", help="revoke a user's grant on a cube")
    unshare.add_argument("cube")
    unshare.add_argument("user_id")
    access = sub.add_parser("access", help="a cube's owner and grants")
    access.add_argument("cube")
    audit = sub.add_parser("audit", help="print the audit log of this data directory")
    audit.add_argument("--tail", type=int, default=50, help="last N records (0: all)")
    return [whoami, user, key, share, unshare, access]


def cmd_whoami(args, config: MemosConfig) -> int:
    me = client_for(args, config).whoami()
    print(f"user {me.user_id} (role {me.role}), key {me.key_id}")
    return 0


def cmd_user(args, config: MemosConfig) -> int:
    client = client_for(args, config)
    if args.action == "list":
        for user in client.list_users():
            print(f"{user.user_id:<32} {user.role:<6} created {_when(user.created_at_s)}")
        return 0
    if not args.user_id:
        print(f"memos-cluster user {args.action}: name the user", flush=True)
        return 2
    if args.action == "create":
        user = client.create_user(args.user_id, args.role)
        print(f"created user {user.user_id} ({user.role}); issue a key with "
              f"`memos-cluster key create --user {user.user_id}`")
    else:
        client.delete_user(args.user_id)
        print(f"deleted user {args.user_id}; their keys are revoked")
    return 0


def cmd_key(args, config: MemosConfig) -> int:
    client = client_for(args, config)
    if args.action == "create":
        expires = args.expires_in_days * SECONDS_PER_DAY if args.expires_in_days else None
        info, secret = client.create_key(args.user, args.name, expires, args.rate_limit)
        print(f"key {info.key_id} for {info.user_id}, expires {_when(info.expires_at_s)}.")
        print("Store it now; it is not shown again:")
        print(secret)
        return 0
    if args.action == "revoke":
        if not args.key_id:
            print("memos-cluster key revoke: name the key id")
            return 2
        info = client.revoke_key(args.key_id)
        print(f"revoked key {info.key_id} of {info.user_id} at {_when(info.revoked_at_s)}")
        return 0
    for info in client.list_keys(args.user):
        state = "revoked" if info.revoked_at_s else "active"
        print(f"{info.key_id}  {info.user_id:<24} {info.name[:24]:<24} {state:<8} "
              f"created {_when(info.created_at_s)} expires {_when(info.expires_at_s)}")
    return 0


def _print_access(access) -> None:
    print(f"cube {access.cube_id}: owner {access.owner or '(none: admins only)'}")
    for user_id, permission in sorted(access.grants.items()):
        print(f"  {user_id:<32} {permission}")


def cmd_share(args, config: MemosConfig) -> int:
    _print_access(client_for(args, config).share_cube(args.cube, args.user_id, args.permission))
    return 0


def cmd_unshare(args, config: MemosConfig) -> int:
    _print_access(client_for(args, config).revoke_cube(args.cube, args.user_id))
    return 0


def cmd_access(args, config: MemosConfig) -> int:
    _print_access(client_for(args, config).cube_access(args.cube))
    return 0


def cmd_audit(args, config: MemosConfig) -> int:
    records = list(AuditLog(config.auth_dir() / "audit.jsonl").read())
    for record in records[-args.tail:] if args.tail else records:
        print(f"{_when(record.time_s)}  {record.actor:<20} {record.action:<16} "
              f"{record.target:<32} {record.detail}")
    return 0


AUTH_COMMANDS = {"whoami": cmd_whoami, "user": cmd_user, "key": cmd_key, "share": cmd_share,
                 "unshare": cmd_unshare, "access": cmd_access, "audit": cmd_audit}
