"""The HTTP front against hostile requests, as a new user might send them to `up` on loopback:
bodies nested thousands deep on every route that takes a body, paths that match no route (ids
holding encoded slashes and dots), methods a path lacks, over-long URLs, no key, a malformed key.
No reply is a 5xx, and every non-2xx is the documented error shape (the OpenAPI document's Error
schema), with the HTTP status of its code. Bounded: a fixed list of requests."""
import json
import os

import httpx2
import jsonschema
import pytest

from memos_cluster.api.http_routes import ROUTES
from memos_cluster.api.openapi import ERROR_SCHEMA
from memos_cluster.client import API_KEY_ENV

DEEP = 5000  # levels: far past the depth limit (32) and past Python's recursion limit (1000)
BODY_ROUTES = sorted({(r.method, r.full_path) for r in ROUTES if r.has_body})


@pytest.fixture(scope="module")
def http(running, config):
    headers = {"Authorization": f"Bearer {os.environ[API_KEY_ENV]}"}
    with httpx2.Client(base_url=f"http://127.0.0.1:{config.gateway.http_port}",
                       headers=headers, timeout=60) as client:
        yield client


def error_of(reply, status: int) -> dict:
    """The reply's error, after checking its status and shape."""
    assert reply.status_code == status, (reply.status_code, reply.text[:300])
    assert reply.headers["content-type"].startswith("application/json"), reply.text[:200]
    body = reply.json()
    jsonschema.validate(body, ERROR_SCHEMA)
    return body["error"]


def filled(path: str) -> str:
    return path.replace("{cube_id}", "nosuchcube").replace("{id}", "m1") \
        .replace("{job_id}", "j1").replace("{user_id}", "u1").replace("{version}", "1")


@pytest.mark.parametrize("method,path", BODY_ROUTES)
@pytest.mark.parametrize("opening", ["[", '{"a":', '{"metadata":{"k":['])
def test_deep_bodies_are_400_naming_the_body(http, method, path, opening):
    closing = {"[": "]", '{"a":': "}", '{"metadata":{"k":[': "]"}[opening]
    body = opening * DEEP + "1" + closing * DEEP
    if opening.startswith('{"metadata"'):
        body = '{"metadata":{"k":' + "[" * DEEP + "1" + "]" * DEEP + "}}"
    error = error_of(http.request(method, filled(path), content=body.encode(),
                                  headers={"content-type": "application/json"}), 400)
    assert error["code"] == "INVALID_ARGUMENT" and error["field"] == "body"
    assert "nests deeper than 32" in error["message"]


def test_a_body_just_under_the_limit_is_read(http):
    nested = {"k": 1}
    for _ in range(20):  # 21 levels with the body: under the limit, so a field error
        nested = {"k": nested}
    error = error_of(http.post("/v1/cubes", json={"cube_id": "x", "metadata": nested}), 400)
    assert error["field"] != "body"


@pytest.mark.parametrize("path", [
    "/nope", "/v1", "/v1/nope", "/v1/cubes/a%2Fb", "/v1/cubes/..%2F..%2Fetc",
    "/v1/cubes/%2e%2e/memories/x/y", "/v1/cubes/a/b/c/d/e", "/console/nosuch.js",
    "/v1/cubes/a%00b", "/docs/assets/../../../etc/passwd"])
def test_unmatched_paths_are_404_in_the_error_shape(http, path):
    reply = http.get(path)
    if reply.status_code == 200:  # only a route or a console file may answer 200
        pytest.fail(f"{path} answered 200: {reply.text[:200]}")
    error = error_of(reply, 404 if "%00" not in path else reply.status_code)
    assert error["code"] in ("NOT_FOUND", "INVALID_ARGUMENT")


def test_a_method_the_path_lacks_is_405_in_the_error_shape(http):
    error = error_of(http.put("/v1/cubes"), 405)
    assert error["code"] == "UNIMPLEMENTED" and "PUT" in error["message"]


def test_over_long_urls_are_414_in_the_error_shape(http, config):
    limit = config.limits.max_url_bytes
    error = error_of(http.get("/v1/cubes/x/memories", params={"ids": "a" * limit}), 414)
    assert error["field"] == "url" and str(limit) in error["message"]
    error_of(http.get("/v1/" + "a" * limit), 414)


def test_no_key_and_a_bad_key_are_401_that_name_the_header(http):
    bare = httpx2.get(str(http.base_url).rstrip("/") + "/v1/cubes", timeout=60)
    assert "HTTP header" in error_of(bare, 401)["message"]
    basic = http.get("/v1/cubes", headers={"Authorization": "Basic Zm9vOmJhcg=="})
    assert "Bearer" in error_of(basic, 401)["message"]


def test_bodies_that_are_not_objects_or_not_utf8(http):
    for content in (b"\xff\xfe\x00", b"[1, 2]", b'"just a string"', b"{\"cube_id\": NaN}"):
        reply = http.post("/v1/cubes", content=content,
                          headers={"content-type": "application/json"})
        assert error_of(reply, 400)["code"] == "INVALID_ARGUMENT", content


def test_the_console_and_swagger_ui_are_served_from_local_files(http):
    page = http.get("/console/")
    assert page.status_code == 200 and "js/app.js" in page.text
    docs = http.get("/docs")
    assert "/docs/assets/swagger-ui-bundle.js" in docs.text and "cdn" not in docs.text.lower()
    bundle = http.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 500_000
    assert json.loads(http.get("/openapi.json").text)["openapi"].startswith("3.1")
