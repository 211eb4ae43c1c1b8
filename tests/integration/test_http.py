"""The HTTP/JSON API and the MCP server on the session's gateway, as their users see them: raw
requests (statuses, the error body, Retry-After, server-sent events, the live OpenAPI document),
another tenant's key refused over HTTP for every cube-scoped operation, and an MCP client from
the official SDK listing the tools, adding and finding memories, and refused another user's cube
and a missing key. (The behavioural suite runs over HTTP too: conftest's `client`.)"""
import asyncio
import json
import uuid

import httpx2
import pytest

from memos_cluster.api.openapi import openapi_document
from memos_cluster.client import API_KEY_ENV, MemosClient
from memos_cluster.core.errors import PermissionDenied
from users import new_users


@pytest.fixture(scope="module")
def base_url(running, config):
    return f"http://127.0.0.1:{config.gateway.http_port}"


@pytest.fixture(scope="module")
def admin_headers():
    import os

    return {"Authorization": f"Bearer {os.environ[API_KEY_ENV]}"}


@pytest.fixture(scope="module")
def two_users(running, config, base_url):
    """alice with a cube holding one memory; bob with a key and no cubes."""
    admin = MemosClient(running.grpc_address, application=config.gateway.app_name)
    made = new_users(admin, ("alice", "bob"))
    (alice_id, alice_key), (bob_id, bob_key) = made["alice"], made["bob"]
    cube = f"http-{uuid.uuid4().hex[:8]}"
    with MemosClient(base_url, api_key=alice_key) as alice:
        alice.create_cube(cube)
        alice.add(cube, ["Alice keeps her spare key under the blue flowerpot"])
    yield {"alice": alice_key, "bob": bob_key, "cube": cube}
    admin.delete_cube(cube)
    for user_id in (alice_id, bob_id):
        admin.delete_user(user_id)


def test_errors_are_statuses_with_one_json_shape(base_url, admin_headers):
    cube = f"http-{uuid.uuid4().hex[:8]}"
    with httpx2.Client(base_url=base_url, headers=admin_headers, timeout=60) as http:
        assert http.post("/v1/cubes", json={"cube_id": cube}).status_code == 200
        again = http.post("/v1/cubes", json={"cube_id": cube})
        assert again.status_code == 409 and again.json()["error"]["code"] == "ALREADY_EXISTS"
        unknown_field = http.post(f"/v1/cubes/{cube}/search", json={"query": "x", "topk": 3})
        assert unknown_field.status_code == 400
        assert unknown_field.json()["error"]["field"] == "topk"
        bad_type = http.post(f"/v1/cubes/{cube}/search", json={"query": "x", "top_k": "many"})
        assert bad_type.status_code == 400 and bad_type.json()["error"]["field"] == "top_k"
        not_json = http.post(f"/v1/cubes/{cube}/memories", content=b"{not json",
                             headers={"content-type": "application/json"})
        assert not_json.status_code == 400 and not_json.json()["error"]["field"] == "body"
        empty = http.post(f"/v1/cubes/{cube}/memories", json={"memories": []})
        assert empty.status_code == 400 and empty.json()["error"]["field"] == "memories"
        missing = http.get(f"/v1/cubes/{cube}-nope")
        assert missing.status_code == 404 and "Traceback" not in missing.text
        added = http.post(f"/v1/cubes/{cube}/memories",
                          json={"memories": [{"id": "m1", "text": "the kettle is blue"}]})
        assert added.json()["ids"] == ["m1"] and added.json()["num_inserted"] == "1"
        stale = http.patch(f"/v1/cubes/{cube}/memories/m1",
                           json={"text": "the kettle is red", "expected_version": 7})
        assert stale.status_code == 412 and stale.json()["error"]["code"] == "FAILED_PRECONDITION"
        history = http.get(f"/v1/cubes/{cube}/memories/m1/history").json()["versions"]
        assert [v["text"] for v in history] == ["the kettle is blue"]
        got = http.get(f"/v1/cubes/{cube}/memories", params=[("ids", "m1"), ("ids", "zz")])
        assert got.json()["missing_ids"] == ["zz"]
        assert http.delete(f"/v1/cubes/{cube}").status_code == 200
        anonymous = httpx2.get(f"{base_url}/v1/cubes", timeout=30)
        assert anonymous.status_code == 401
        assert anonymous.json()["error"]["code"] == "UNAUTHENTICATED"


def test_rate_limited_calls_say_when_to_retry(base_url, two_users, running, config):
    admin = MemosClient(running.grpc_address, application=config.gateway.app_name)
    with MemosClient(base_url, api_key=two_users["alice"]) as alice:
        _, key = admin.create_key(alice.whoami().user_id, name="hasty", rate_limit_rps=1)
    statuses = []
    with httpx2.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}) as http:
        for _ in range(6):
            reply = http.get("/v1/ping")
            statuses.append(reply.status_code)
            if reply.status_code == 429:
                assert int(reply.headers["retry-after"]) >= 1
    assert statuses[0] == 200 and 429 in statuses


def test_generate_streams_server_sent_events(base_url, two_users):
    headers = {"Authorization": f"Bearer {two_users['alice']}"}
    body = {"cube_ids": [two_users["cube"]], "query": "Where is the spare key?",
            "max_new_tokens": 4, "use_retrieved_memories": True}
    with httpx2.Client(base_url=base_url, headers=headers, timeout=120) as http:
        with http.stream("POST", "/v1/generate", json=body) as reply:
            assert reply.status_code == 200
            assert reply.headers["content-type"].startswith("text/event-stream")
            names = [line[6:].strip() for line in reply.iter_lines()
                     if line.startswith("event:")]
        assert names[-1] == "stats" and set(names[:-1]) <= {"token"} and len(names) >= 2
        refused = http.post("/v1/generate", json={**body, "max_new_tokens": 100_000})
        assert refused.status_code == 400
        assert refused.json()["error"]["field"] == "max_new_tokens"
        # No memory flag at all: HTTP's default is memory_mode auto, which retrieves (the
        # stats name each retrieved memory and its tier); a flag asks for explicit mode.
        for flags, retrieved in (({}, True), ({"use_activation_memory": True}, False)):
            with http.stream("POST", "/v1/generate", json={
                    "cube_ids": [two_users["cube"]], "query": "Where is the spare key?",
                    "max_new_tokens": 2, **flags}) as reply:
                lines = [line for line in reply.iter_lines() if line.startswith("data:")]
            stats = json.loads(lines[-1][5:])
            assert bool(stats["memories"]) is retrieved, stats
            assert all(m["tier"] in ("activation", "plaintext") for m in stats["memories"])


def test_another_tenants_key_is_refused_over_http(base_url, two_users):
    from test_tenancy import cross_tenant_calls

    with MemosClient(base_url, api_key=two_users["alice"]) as alice, \
            MemosClient(base_url, api_key=two_users["bob"]) as bob:
        ids = [h.item.id for h in alice.search(two_users["cube"], "key")]
        for name, call in cross_tenant_calls(bob, two_users["cube"], ids).items():
            with pytest.raises(PermissionDenied):
                call()
        assert bob.list_cubes() == []
        assert [h.item.text for h in alice.search(two_users["cube"], "spare key")] == [
            "Alice keeps her spare key under the blue flowerpot"]


def test_the_live_openapi_document_is_the_committed_one(base_url):
    live = httpx2.get(f"{base_url}/openapi.json", timeout=30)
    assert live.status_code == 200 and live.json() == json.loads(json.dumps(openapi_document()))
    assert httpx2.get(f"{base_url}/docs", timeout=30).status_code == 200


async def _mcp_session(url, key, work):
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"},
                                  timeout=120) as http:
        async with streamable_http_client(url, http_client=http) as (read, write, *_):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await work(session)


def test_an_mcp_client_uses_memory_as_tools(base_url, two_users):
    url, cube = f"{base_url}/mcp", two_users["cube"]

    async def alice_work(session):
        tools = {t.name: t for t in (await session.list_tools()).tools}
        added = await session.call_tool("add_memories", {
            "cube_id": cube, "texts": ["Alice's bicycle is a green Bianchi"]})
        found = await session.call_tool("search_memories", {
            "cube_id": cube, "query": "what bicycle does Alice ride?", "top_k": 2})
        return tools, added, found

    tools, added, found = asyncio.run(_mcp_session(url, two_users["alice"], alice_work))
    assert {"list_cubes", "add_memories", "search_memories", "get_memories", "update_memory",
            "delete_memories", "memory_history", "generate"} <= set(tools)
    assert all(t.description and t.input_schema["type"] == "object" for t in tools.values())
    assert "cube_id" in tools["search_memories"].input_schema["required"]
    assert not added.is_error and not found.is_error
    assert "green Bianchi" in json.dumps(found.structured_content)

    async def bob_work(session):
        return (await session.call_tool("search_memories", {"cube_id": cube, "query": "key"}),
                await session.call_tool("list_cubes", {}))

    refused, listed = asyncio.run(_mcp_session(url, two_users["bob"], bob_work))
    assert refused.is_error and "PERMISSION_DENIED" in refused.content[0].text
    assert "flowerpot" not in json.dumps(refused.model_dump())
    assert listed.structured_content.get("cubes", []) == []

    keyless = httpx2.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                          headers={"Accept": "application/json, text/event-stream"})
    assert keyless.status_code == 401
