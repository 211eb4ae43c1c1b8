"""The auth core without Ray: keys, the registry (persistence, audit, consistency), the access
rules of every operation, and the rate limiter, with injected clocks."""
import json
import os
import stat

import pytest

from memos_cluster.auth import keys as keyfmt
from memos_cluster.auth.access import authenticate, authorize, visible_cubes
from memos_cluster.auth.audit import AuditLog
from memos_cluster.auth.bootstrap import ensure_local_admin_key, read_bootstrap_key
from memos_cluster.auth.ratelimit import RateLimiter
from memos_cluster.auth.registry import AuthRegistry
from memos_cluster.core.auth_types import Principal
from memos_cluster.core.config import MemosConfig, with_overrides
from memos_cluster.core.errors import (
    AlreadyExists, ConfigError, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied,
    ResourceExhausted, Unauthenticated)
from memos_cluster.core.operations import OPERATIONS, UNKNOWN_OWNER, Access
from memos_cluster.core.types import SearchQuery

BOOT = "b" * 40


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def registry(tmp_path, clock):
    reg = AuthRegistry(tmp_path / "state.json", AuditLog(tmp_path / "audit.jsonl"), clock)
    reg.load()
    reg.ensure_bootstrap(BOOT)
    return reg


def bearer(key):
    return [("authorization", f"Bearer {key}")]


def test_keys_are_stored_only_as_salted_hashes(registry, tmp_path):
    registry.create_user("admin", "alice", "user")
    info, secret = registry.issue_key("admin", "alice", "laptop")
    stored = (tmp_path / "state.json").read_text()
    assert secret not in stored and BOOT not in stored
    assert info.digest in stored
    _, other = registry.issue_key("admin", "alice")
    assert registry.state.keys[info.key_id].salt != \
        registry.state.keys[keyfmt.split_key(other)[0]].salt
    assert authenticate(registry.state, bearer(secret), 1000).user_id == "alice"


def test_authentication_refuses_missing_wrong_revoked_and_expired(registry, clock):
    registry.create_user("admin", "alice", "user")
    info, secret = registry.issue_key("admin", "alice", expires_in_s=60)
    state = registry.state
    for metadata in ([], [("authorization", secret)], bearer(""), bearer(secret[:-1] + "x"),
                     bearer("memos_000000000000_" + "A" * 43), bearer("nonsense")):
        with pytest.raises(Unauthenticated):
            authenticate(state, metadata, clock.now)
    assert authenticate(state, bearer(secret), clock.now + 59).key_id == info.key_id
    with pytest.raises(Unauthenticated, match="invalid, revoked or expired"):
        authenticate(state, bearer(secret), clock.now + 60)
    registry.revoke_key("admin", info.key_id)
    with pytest.raises(Unauthenticated, match="invalid, revoked or expired"):
        authenticate(registry.state, bearer(secret), clock.now)
    with pytest.raises(Unauthenticated, match="more than one"):
        authenticate(state, bearer(secret) + bearer(secret), clock.now)


def test_bootstrap_key_any_string_and_rotation(registry, clock):
    admin = authenticate(registry.state, bearer(BOOT), clock.now)
    assert (admin.user_id, admin.role, admin.key_id) == ("admin", "admin", "bootstrap")
    epoch = registry.state.epoch
    registry.ensure_bootstrap(BOOT)  # unchanged: no new epoch
    assert registry.state.epoch == epoch
    registry.ensure_bootstrap("c" * 40)
    with pytest.raises(Unauthenticated):
        authenticate(registry.state, bearer(BOOT), clock.now)
    assert authenticate(registry.state, bearer("c" * 40), clock.now).is_admin


def test_no_admin_key_at_all_is_a_clear_error(tmp_path):
    reg = AuthRegistry(tmp_path / "s.json", AuditLog(tmp_path / "a.jsonl"))
    with pytest.raises(ConfigError, match="no admin key"):
        reg.ensure_bootstrap(None)


def test_a_reloaded_store_is_a_new_incarnation(registry, tmp_path, clock):
    """Gateways take a restarted store's state even when its epoch went back (a restored
    backup); within one incarnation only later epochs."""
    old = registry.state
    registry.create_user("admin", "alice", "user")
    assert registry.state.is_newer_than(old) and not old.is_newer_than(registry.state)
    (tmp_path / "backup.json").write_text((tmp_path / "state.json").read_text())
    registry.create_user("admin", "bob", "user")
    newest = registry.state
    (tmp_path / "state.json").write_text((tmp_path / "backup.json").read_text())
    restored = AuthRegistry(tmp_path / "state.json", AuditLog(tmp_path / "audit.jsonl"),
                            clock).load()
    assert restored.epoch < newest.epoch and restored.is_newer_than(newest)
    assert "bob" not in restored.users


def test_state_survives_a_restart_and_changes_are_audited(registry, tmp_path, clock):
    registry.create_user("admin", "alice", "user")
    registry.claim_cube("alice", "c1")
    registry.confirm_cube("alice", "c1")
    registry.create_user("admin", "bob", "user")
    registry.share("alice", "c1", "bob", "write")
    again = AuthRegistry(tmp_path / "state.json", AuditLog(tmp_path / "audit.jsonl"), clock)
    state = again.load()
    assert state.version != registry.state.version  # a new incarnation, the same contents
    assert (state.users, state.keys, state.cubes) == \
        (registry.state.users, registry.state.keys, registry.state.cubes)
    assert state.cubes["c1"].permission_of("bob") == "write"
    actions = [(r.actor, r.action, r.target) for r in AuditLog(tmp_path / "audit.jsonl").read()]
    assert actions[-3:] == [("alice", "create_cube", "c1"), ("admin", "create_user", "bob"),
                            ("alice", "share_cube", "c1")]
    assert all(r.time_s == clock.now for r in AuditLog(tmp_path / "audit.jsonl").read())


def test_registry_consistency_rules(registry):
    registry.create_user("admin", "alice", "user")
    with pytest.raises(AlreadyExists):
        registry.create_user("admin", "alice", "user")
    for bad in ("", "a b", "x" * 200, "a\x00b", "../etc"):
        with pytest.raises(InvalidArgument):
            registry.create_user("admin", bad, "user")
    with pytest.raises(InvalidArgument):
        registry.create_user("admin", "carol", "root")
    with pytest.raises(NotFound):
        registry.issue_key("admin", "nobody")
    with pytest.raises(NotFound):
        registry.share("admin", "c1", "nobody", "read")
    with pytest.raises(InvalidArgument):
        registry.share("admin", "c1", "alice", "owner")
    with pytest.raises(FailedPrecondition):
        registry.delete_user("alice", "alice")


def test_cube_claims(registry):
    registry.create_user("admin", "alice", "user")
    registry.create_user("admin", "bob", "user")
    assert registry.claim_cube("alice", "c1") is True
    assert registry.state.cubes["c1"].permission_of("alice") is None  # pending: nothing yet
    assert registry.claim_cube("alice", "c1") is False  # a retried create
    with pytest.raises(AlreadyExists):
        registry.claim_cube("bob", "c1")
    registry.confirm_cube("alice", "c1")
    assert registry.state.cubes["c1"].permission_of("alice") == "admin"
    registry.release_cube("alice", "c1")  # confirmed: kept, even after the cube is deleted
    assert "c1" in registry.state.cubes
    with pytest.raises(AlreadyExists):  # the id stays alice's: nobody inherits what it left
        registry.claim_cube("bob", "c1")
    with pytest.raises(FailedPrecondition):
        registry.revoke("alice", "c1", "alice")
    assert registry.claim_cube("bob", "c2") is True
    registry.share("admin", "c2", "alice", "read")  # keeps it pending: grants nothing yet
    assert registry.state.cubes["c2"].pending
    registry.release_cube("bob", "c2")
    assert "c2" not in registry.state.cubes


def test_deleting_a_user_revokes_keys_and_grants(registry, clock):
    registry.create_user("admin", "alice", "user")
    registry.create_user("admin", "bob", "user")
    _, secret = registry.issue_key("admin", "bob")
    registry.claim_cube("bob", "b1")
    registry.confirm_cube("bob", "b1")
    registry.claim_cube("alice", "a1")
    registry.confirm_cube("alice", "a1")
    registry.share("alice", "a1", "bob", "read")
    registry.delete_user("admin", "bob")
    state = registry.state
    with pytest.raises(Unauthenticated):
        authenticate(state, bearer(secret), clock.now)
    assert state.cubes["b1"].owner == "" and "bob" not in state.cubes["a1"].grants


def _setup(registry):
    registry.create_user("admin", "alice", "user")
    registry.create_user("admin", "bob", "user")
    for owner, cube in (("alice", "a1"), ("alice", "a2"), ("bob", "b1")):
        registry.claim_cube(owner, cube)
        registry.confirm_cube(owner, cube)
    registry.share("alice", "a2", "bob", "read")
    return (Principal("alice", "user", "k1"), Principal("bob", "user", "k2"),
            Principal("admin", "admin", "bootstrap"))


def test_every_operation_the_client_calls_has_a_rule():
    from test_operations import client_operations

    assert client_operations() == set(OPERATIONS)
    assert all(isinstance(op.access, Access) for op in OPERATIONS.values())


def test_permissions_by_level(registry):
    alice, bob, admin = _setup(registry)
    state = registry.state
    authorize(state, bob, "get_cube", ("a2",))
    authorize(state, bob, "search", (SearchQuery(cube_ids=("b1", "a2"), query="q"),))
    for op, args in (("add", ("a2", [])), ("delete_cube", ("a2",)), ("get_cube", ("a1",)),
                     ("search", (SearchQuery(cube_ids=("b1", "a1"), query="q"),)),
                     ("share_cube", ("a2", "bob", "admin")), ("get", ("missing-cube", ["x"])),
                     ("reshard", (["shard-0"],)), ("create_user", ("eve", "admin")),
                     ("scheduler", ("pause",)), ("list_keys", ("alice",))):
        with pytest.raises(PermissionDenied):
            authorize(state, bob, op, args)
    registry.share("alice", "a2", "bob", "write")
    authorize(registry.state, bob, "add", ("a2", []))
    with pytest.raises(PermissionDenied):
        authorize(registry.state, bob, "delete_cube", ("a2",))
    for op, args in (("delete_cube", ("b1",)), ("reshard", (["s"],)), ("list_keys", ("bob",))):
        authorize(state, admin, op, args)
    authorize(state, alice, "delete_cube", ("a1",))
    authorize(state, alice, "list_keys", ("",))  # "" is yourself


def test_unknown_and_foreign_keys_are_refused_alike(registry):
    alice, bob, _ = _setup(registry)
    info, _ = registry.issue_key("admin", "alice")
    state = registry.state
    for key_id in (info.key_id, "ffffffffffff"):
        with pytest.raises(PermissionDenied) as refused:
            authorize(state, bob, "revoke_key", (key_id,))
        assert key_id not in refused.value.message
    authorize(state, alice, "revoke_key", (info.key_id,))
    assert UNKNOWN_OWNER not in state.users


def test_malformed_ray_transport_arguments(registry):
    _, bob, _ = _setup(registry)
    with pytest.raises(InvalidArgument):
        authorize(registry.state, bob, "search", ("not a query",))
    with pytest.raises(InvalidArgument):
        authorize(registry.state, bob, "no_such_op", ())


def test_listings_show_only_permitted_cubes(registry):
    alice, bob, admin = _setup(registry)

    class Cube:
        def __init__(self, cube_id):
            self.cube_id = cube_id

    cubes = [Cube(c) for c in ("a1", "a2", "b1", "legacy")]
    assert [c.cube_id for c in visible_cubes(registry.state, bob, cubes)] == ["a2", "b1"]
    assert len(visible_cubes(registry.state, admin, cubes)) == 4
    registry.claim_cube("alice", "pending-one")
    assert visible_cubes(registry.state, alice, [Cube("pending-one")]) == []


def test_rate_limit_token_bucket(clock):
    limiter = RateLimiter(rate_per_s=10, burst=5, clock=clock)
    for _ in range(5):
        limiter.admit("k")
    with pytest.raises(ResourceExhausted, match="retry in 0.10 s"):
        limiter.admit("k")
    limiter.admit("other")  # per key
    clock.now += 0.1
    limiter.admit("k")
    with pytest.raises(ResourceExhausted):
        limiter.admit("k")
    clock.now += 10
    for _ in range(5):
        limiter.admit("k")
    RateLimiter(0, 1, clock).admit("k")  # 0: off


def test_bootstrap_key_from_env_or_file(tmp_path):
    # The reader in-process: a worker process a tier would cost seconds a test
    # (tests/unit/test_reader_process.py covers it).
    config = with_overrides(MemosConfig(), {"reader.own_process": False, "data_dir": str(tmp_path)})
    assert read_bootstrap_key(config, environ={}) is None
    with pytest.raises(ConfigError, match="shorter"):
        read_bootstrap_key(config, environ={"MEMOS_ADMIN_KEY": "short"})
    assert read_bootstrap_key(config, environ={"MEMOS_ADMIN_KEY": BOOT}) == BOOT
    key = ensure_local_admin_key(config) if "MEMOS_ADMIN_KEY" not in os.environ else None
    if key is not None:
        path = config.admin_key_path()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert read_bootstrap_key(config, environ={}) == key
        assert ensure_local_admin_key(config) == key  # kept, not regenerated


def test_state_file_format_is_checked(tmp_path):
    (tmp_path / "state.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(ConfigError):
        AuthRegistry(tmp_path / "state.json", AuditLog(tmp_path / "a.jsonl")).load()


def test_key_lifetimes_and_rate_limits_are_bounded(registry):
    """Found by the fuzz test: a key expiring past int64 milliseconds broke every listing."""
    registry.create_user("admin", "alice", "user")
    for bad in (0, -1, 10 * 365 * 86400 + 1, 9.2e15):
        with pytest.raises(InvalidArgument, match="expires_in_s"):
            registry.issue_key("admin", "alice", expires_in_s=bad)
    for bad in (-1, float("nan"), float("inf"), 1e7):
        with pytest.raises(InvalidArgument, match="rate_limit_rps"):
            registry.issue_key("admin", "alice", rate_limit_rps=bad)
    assert not [k for k in registry.state.keys.values() if k.user_id == "alice"]
