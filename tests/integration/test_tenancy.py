"""The cross-tenant suite: two users with several cubes each; every RPC tried with one user's key
against the other's cubes, memory ids and training jobs, with guessed ids and crafted filters,
is refused, and nothing of the other tenant shows up in results, counts or error messages. Then
keys (missing, wrong, revoked, expired), grants (share, upgrade, revoke), per-key rate limits,
the request size limit and the audit log, over real gRPC (and the Ray transport for a sample)."""
import time
import uuid

import grpc
import pytest

from memos_cluster.api.memos.v1 import memos_pb2 as pb, memos_pb2_grpc as pb_grpc
from users import new_users
from memos_cluster.auth.audit import AuditLog
from memos_cluster.client import MemosClient
from memos_cluster.core.errors import (
    AlreadyExists, NotFound, PermissionDenied, ResourceExhausted, Unauthenticated)
from memos_cluster.core.types import NewMemory, SearchFilter, SearchMode

SECRET_WORDS = ("zanzibar", "quokka", "marmalade")  # only in alice's memories


class Tenant:
    def __init__(self, user_id, key, address, app):
        self.user_id, self.key = user_id, key
        self.client = MemosClient(address, application=app, api_key=key, timeout_s=60)
        self.cubes: list[str] = []
        self.memory_ids: dict[str, list[str]] = {}


@pytest.fixture(scope="module")
def tenants(running, config):
    admin = MemosClient(running.grpc_address, application=config.gateway.app_name)
    made = {name: Tenant(user_id, key, running.grpc_address, config.gateway.app_name)
            for name, (user_id, key) in new_users(admin, ("alice", "bob"),
                                                  name="laptop").items()}
    alice, bob = made["alice"], made["bob"]
    for tenant, count, words in ((alice, 3, SECRET_WORDS), (bob, 2, ("bicycle", "harbour"))):
        for c in range(count):
            cube = f"cube-{uuid.uuid4().hex[:8]}"  # names nobody: messages must not either
            tenant.client.create_cube(cube)
            items = [NewMemory(f"{tenant.user_id} note {i} about the {words[i % len(words)]}",
                               id=f"m{c}-{i}", metadata={"owner": tenant.user_id, "n": i})
                     for i in range(5)]
            tenant.memory_ids[cube] = list(tenant.client.add(cube, items).ids)
            tenant.cubes.append(cube)
    yield alice, bob, admin
    for tenant in (alice, bob):
        for cube in tenant.cubes:
            admin.delete_cube(cube)
        admin.delete_user(tenant.user_id)


def alice_snapshot(alice):
    """Everything alice stores, as she sees it."""
    return {cube: ([(m.id, m.version, m.text) for m in alice.client.get(cube, ids).items],
                   alice.client.get_cube(cube).num_memories)
            for cube, ids in alice.memory_ids.items()}


def cross_tenant_calls(client, cube, ids):
    """Every cube-scoped operation of the client API, aimed at `cube`."""
    return {
        "get_cube": lambda: client.get_cube(cube),
        "delete_cube": lambda: client.delete_cube(cube),
        "add": lambda: client.add(cube, [NewMemory("planted by bob", id="plant")]),
        "search": lambda: client.search(cube, "zanzibar"),
        "search_dense": lambda: client.search(cube, "quokka", mode=SearchMode.DENSE),
        "get": lambda: client.get(cube, ids),
        "update": lambda: client.update(cube, ids[0], "overwritten by bob"),
        "history": lambda: client.history(cube, ids[0]),
        "list_memories": lambda: client.list_memories(cube),
        "list_entities": lambda: client.list_entities(cube),
        "get_entity": lambda: client.get_entity(cube, "alice"),
        "delete": lambda: client.delete(cube, ids),
        "activate": lambda: client.activate(cube, ids[:1]),
        "generate": lambda: list(client.generate(cube, "what is secret?", max_new_tokens=2)),
        "train": lambda: client.train_adapter(cube, ids[:2], steps=1),
        "adapters": lambda: client.adapters(cube),
        "delete_adapter": lambda: client.delete_adapter(cube, 1),
        "tier_status": lambda: client.tier_status(cube),
        "share_cube": lambda: client.share_cube(cube, client.whoami().user_id, "admin"),
        "revoke_cube": lambda: client.revoke_cube(cube, "someone"),
        "cube_access": lambda: client.cube_access(cube),
    }


def test_every_operation_on_another_tenants_cube_is_refused(tenants):
    alice, bob, _ = tenants
    before = alice_snapshot(alice)
    target = alice.cubes[0]
    refused = 0
    for name, call in cross_tenant_calls(bob.client, target, alice.memory_ids[target]).items():
        with pytest.raises(PermissionDenied) as error:
            call()
        message = error.value.message
        assert not any(w in message for w in SECRET_WORDS), (name, message)
        assert alice.user_id not in message, (name, message)
        refused += 1
    # A cube that does not exist reads exactly like one that is someone else's.
    with pytest.raises(PermissionDenied) as missing:
        bob.client.get_cube("cube-nosuchid")
    with pytest.raises(PermissionDenied) as foreign:
        bob.client.get_cube(target)
    assert missing.value.message.replace("cube-nosuchid", target) == foreign.value.message
    assert refused == 21
    assert alice_snapshot(alice) == before


def test_multi_cube_search_and_listing_touch_only_permitted_cubes(tenants):
    alice, bob, _ = tenants
    with pytest.raises(PermissionDenied):
        bob.client.search([bob.cubes[0], alice.cubes[1]], "zanzibar quokka marmalade")
    mine = {c.cube_id for c in bob.client.list_cubes()}
    assert mine == set(bob.cubes)
    assert {c.cube_id for c in alice.client.list_cubes()} == set(alice.cubes)


def test_guessed_ids_and_crafted_filters_stay_in_the_callers_cube(tenants):
    alice, bob, _ = tenants
    cube = bob.cubes[0]
    guessed = alice.memory_ids[alice.cubes[0]] + [f"{alice.cubes[0]}:m0-0", "*", "m0-0 || true"]
    result = bob.client.get(cube, guessed[:5])
    # Same memory ids exist in bob's cube (m0-*): what comes back is bob's, never alice's.
    assert all(m.cube_id == cube and bob.user_id in m.text for m in result.items)
    crafted = [
        SearchFilter(metadata_equals=(("owner", f'x" || cube_id == "{alice.cubes[0]}'),)),
        SearchFilter(metadata_equals=(("owner", alice.user_id),)),
        SearchFilter(sources=(f'") or cube_id in ["{alice.cubes[0]}"] or ("',)),
        SearchFilter(memory_types=("fact\" or true or \"",)),
        SearchFilter(metadata_equals=(("n", 1),), sources=("\\", "'", "%", "*")),
    ]
    for flt in crafted:
        for mode in (SearchMode.HYBRID, SearchMode.BM25, SearchMode.DENSE):
            try:
                hits = bob.client.search(cube, "zanzibar quokka", top_k=50, mode=mode, filter=flt)
            except Exception as exc:  # a refused filter is fine; a leak or a crash is not
                assert type(exc).__name__ == "InvalidArgument", exc
                continue
            assert all(h.item.cube_id == cube for h in hits)
            assert not any(w in h.item.text for h in hits for w in SECRET_WORDS)


def test_training_jobs_of_another_tenant_are_invisible(tenants):
    alice, bob, _ = tenants
    cube = alice.cubes[2]
    job = alice.client.train_adapter(cube, alice.memory_ids[cube][:2], steps=2)
    for call in (bob.client.training_job, bob.client.cancel_training):
        with pytest.raises(NotFound) as hidden:
            call(job.job_id)
        with pytest.raises(NotFound) as unknown:
            call("job-that-never-was")
        assert hidden.value.message.replace(job.job_id, "X") == \
            unknown.value.message.replace("job-that-never-was", "X")
    assert alice.client.wait_for_training(job.job_id, timeout_s=300).status == "succeeded"


def test_admin_only_operations_and_other_users_keys(tenants):
    alice, bob, admin = tenants
    for call in (lambda: bob.client.create_user("mallory", "admin"), bob.client.list_users,
                 lambda: bob.client.delete_user(alice.user_id), bob.client.shards,
                 lambda: bob.client.reshard(["shard-0"]), lambda: bob.client.scheduler("pause"),
                 lambda: bob.client.list_keys(alice.user_id),
                 lambda: bob.client.create_key(alice.user_id),
                 lambda: bob.client.create_key("", rate_limit_rps=1e6)):
        with pytest.raises(PermissionDenied):
            call()
    alice_key = alice.client.list_keys()[0]
    assert alice_key.user_id == alice.user_id and not hasattr(alice_key, "digest")
    for key_id in (alice_key.key_id, "0123456789ab"):  # another's and an unknown key alike
        with pytest.raises(PermissionDenied):
            bob.client.revoke_key(key_id)
    with pytest.raises(AlreadyExists):  # cube ids are one namespace
        bob.client.create_cube(alice.cubes[0])
    # A deleted cube's id stays its owner's: nobody inherits its adapters, jobs or history.
    gone = f"cube-{uuid.uuid4().hex[:8]}"
    alice.client.create_cube(gone)
    alice.client.delete_cube(gone)
    with pytest.raises(AlreadyExists):
        bob.client.create_cube(gone)
    alice.client.create_cube(gone)
    alice.client.delete_cube(gone)
    assert {c.cube_id for c in bob.client.list_cubes()} == set(bob.cubes)
    # Shard details (cube counts) are for admins.
    assert all(s.detail == "" for s in bob.client.health())
    assert any(s.detail for s in admin.health())
    me = bob.client.whoami()
    assert (me.user_id, me.role) == (bob.user_id, "user")


def test_sharing_grants_exactly_the_permission_given(tenants):
    alice, bob, _ = tenants
    cube = alice.cubes[1]
    alice.client.share_cube(cube, bob.user_id, "read")
    assert any("marmalade" in h.item.text or "quokka" in h.item.text or "zanzibar" in h.item.text
               for h in bob.client.search(cube, "note about", top_k=5))
    assert cube in {c.cube_id for c in bob.client.list_cubes()}
    with pytest.raises(PermissionDenied):
        bob.client.add(cube, ["bob writes"])
    alice.client.share_cube(cube, bob.user_id, "write")
    added = bob.client.add(cube, [NewMemory("bob was here", id="bob-1")])
    assert added.num_inserted == 1
    with pytest.raises(PermissionDenied):
        bob.client.delete_cube(cube)
    access = alice.client.cube_access(cube)
    assert access.owner == alice.user_id and dict(access.grants) == {bob.user_id: "write"}
    alice.client.revoke_cube(cube, bob.user_id)
    with pytest.raises(PermissionDenied):
        bob.client.search(cube, "anything")
    alice.client.delete(cube, ["bob-1"])


def test_keys_missing_wrong_revoked_and_expired(tenants, running, config):
    alice, _, admin = tenants
    address, app = running.grpc_address, config.gateway.app_name
    nobody = MemosClient(address, application=app, api_key="")
    forged = MemosClient(address, application=app, api_key=alice.key[:-4] + "AAAA")
    for client in (nobody, forged):
        for call in (client.ping, client.list_cubes, lambda: client.search(alice.cubes[0], "x"),
                     client.whoami):
            with pytest.raises(Unauthenticated):
                call()
    info, short_lived = admin.create_key(alice.user_id, expires_in_s=1)
    temp = MemosClient(address, application=app, api_key=short_lived)
    assert temp.whoami().key_id == info.key_id
    time.sleep(1.2)
    with pytest.raises(Unauthenticated):
        temp.ping()
    info, revocable = alice.client.create_key(name="to revoke")
    temp = MemosClient(address, application=app, api_key=revocable)
    temp.ping()
    alice.client.revoke_key(info.key_id)
    with pytest.raises(Unauthenticated):
        temp.ping()


def test_ray_transport_applies_the_same_rules(tenants, config):
    alice, bob, _ = tenants
    ray_bob = MemosClient(f"ray://?app={config.gateway.app_name}", api_key=bob.key)
    assert ray_bob.whoami().user_id == bob.user_id
    with pytest.raises(PermissionDenied):
        ray_bob.search(alice.cubes[0], "zanzibar")
    with pytest.raises(Unauthenticated):
        MemosClient(f"ray://?app={config.gateway.app_name}", api_key="").ping()
    assert {c.cube_id for c in ray_bob.list_cubes()} == set(bob.cubes)


def test_per_key_rate_limit(tenants, running, config):
    alice, _, admin = tenants
    _, key = admin.create_key(alice.user_id, name="slow agent", rate_limit_rps=2)
    slow = MemosClient(running.grpc_address, application=config.gateway.app_name, api_key=key)
    outcomes = []
    for _ in range(8):
        try:
            slow.ping()
            outcomes.append("ok")
        except ResourceExhausted as exc:
            assert "rate limit of 2 requests/s" in exc.message
            outcomes.append("limited")
    assert outcomes[:4] == ["ok"] * 4 and "limited" in outcomes  # a burst of 2 s' worth
    alice.client.ping()  # other keys are not slowed
    time.sleep(1.1)
    slow.ping()


def test_request_size_limit(tenants, running, config):
    _, bob, _ = tenants
    channel = grpc.insecure_channel(running.grpc_address)
    stub = pb_grpc.MemoryServiceStub(channel)
    request = pb.AddMemoriesRequest(cube_id=bob.cubes[0], memories=[
        pb.NewMemory(text="x" * 1900) for _ in range(config.limits.max_request_bytes // 1900 + 5)])
    metadata = (("application", config.gateway.app_name), ("authorization", f"Bearer {bob.key}"))
    with pytest.raises(grpc.RpcError) as error:
        stub.AddMemories(request, metadata=metadata, timeout=60)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "bytes, more than the limit" in error.value.details()
    channel.close()
    assert bob.client.get_cube(bob.cubes[0]).num_memories == 5


def test_permission_changes_are_in_the_audit_log(tenants, config):
    alice, bob, admin = tenants
    alice.client.share_cube(alice.cubes[0], bob.user_id, "read")
    alice.client.revoke_cube(alice.cubes[0], bob.user_id)
    records = list(AuditLog(config.auth_dir() / "audit.jsonl").read())
    actions = {(r.actor, r.action, r.target) for r in records}
    assert ("admin", "create_user", alice.user_id) in actions
    assert (alice.user_id, "share_cube", alice.cubes[0]) in actions
    assert (alice.user_id, "revoke_cube", alice.cubes[0]) in actions
    assert (alice.user_id, "create_cube", alice.cubes[0]) in actions
    assert all(r.time_s > 1.7e9 for r in records)
    assert not any(alice.key in r.detail or bob.key in r.detail for r in records)


def test_the_auth_store_survives_its_actor_being_killed(tenants, config):
    import ray

    from actors.names import AUTH_ACTOR_NAME

    alice, bob, admin = tenants
    ray.kill(ray.get_actor(AUTH_ACTOR_NAME, namespace=config.ray.namespace), no_restart=False)
    deadline = time.monotonic() + 60
    while True:  # the first change after the kill may meet the actor restarting
        try:
            info, key = admin.create_key(bob.user_id, name="after restart")
            break
        except Exception as exc:  # noqa: BLE001 - Unavailable while it restarts
            assert type(exc).__name__ == "Unavailable", exc
            assert time.monotonic() < deadline
            time.sleep(0.5)
    restored = MemosClient(alice.client.address, application=config.gateway.app_name,
                           api_key=key)
    assert restored.whoami().user_id == bob.user_id
    assert {c.cube_id for c in restored.list_cubes()} == set(bob.cubes)
    with pytest.raises(PermissionDenied):
        restored.get_cube(alice.cubes[0])
    bob.client.revoke_key(info.key_id)
