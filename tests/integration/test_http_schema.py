"""A bounded property-based run of the HTTP API against its own OpenAPI document (schemathesis):
requests generated from the document, well-formed and not, reach the session's gateway on
loopback as a user who owns one small cube; no reply may be a 5xx, and every reply must match
the document (status, content type, body schema). Bounded: a few examples an operation, no
shrinking, a deadline off. Operations that would change the cluster for other tests (shards,
the scheduler, users and keys) or run the model for seconds (Generate, TrainAdapter) are left
out; their validation is covered by the behavioural suite over HTTP. A second run, with the
admin's key, covers every read-only route (GET), admin-only ones included. Hostile bodies and
paths beyond what the document generates are in test_http_hostile.py."""
import os

import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import checks

from memos_cluster.api.openapi import openapi_document
from memos_cluster.client import API_KEY_ENV, MemosClient
from users import new_users

LEFT_OUT = {"reshard", "scheduler", "create_user", "delete_user", "create_key", "revoke_key",
            "generate", "train", "cancel_training", "activate"}
CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_schema_conformance]


@pytest.fixture(scope="module")
def tester(running, config):
    """A user with one cube of three memories, and the HTTP base URL."""
    admin = MemosClient(running.grpc_address, application=config.gateway.app_name)
    ((user_id, key),) = new_users(admin, ("prober",)).values()
    base_url = f"http://127.0.0.1:{config.gateway.http_port}"
    cube = f"probe-{uuid.uuid4().hex[:6]}"
    with MemosClient(base_url, api_key=key) as client:
        client.create_cube(cube)
        client.add(cube, ["the lighthouse keeper feeds the gulls", "tea at four", "rain"])
    yield base_url, {"Authorization": f"Bearer {key}"}
    admin.delete_cube(cube)
    admin.delete_user(user_id)


def operations(read_only: bool = False):
    schema = schemathesis.openapi.from_dict(openapi_document()).exclude(
        operation_id_regex="|".join(f"^{op}_" for op in sorted(LEFT_OUT)))
    found = [result.ok() for result in schema.get_all_operations()]
    return [op for op in found if op.method.upper() == "GET"] if read_only else found


def run(base_url: str, headers: dict, read_only: bool = False) -> list[str]:
    tried = []
    for operation in operations(read_only):
        @given(case=operation.as_strategy())
        @settings(max_examples=8, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        def probe(case):
            case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS,
                                   timeout=30)
        probe()
        tried.append(operation.label)
    return tried


def test_no_5xx_and_every_reply_matches_the_document(tester):
    base_url, headers = tester
    tried = run(base_url, headers)
    assert len(tried) >= 20, tried  # every route but the ones left out was exercised


def test_the_admin_key_on_every_read_only_route(tester):
    base_url, _ = tester
    tried = run(base_url, {"Authorization": f"Bearer {os.environ[API_KEY_ENV]}"}, read_only=True)
    assert {"GET /v1/users", "GET /v1/shards", "GET /v1/gateway/stats"} <= set(tried), tried
