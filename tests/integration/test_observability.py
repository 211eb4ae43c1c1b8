"""Metrics and structured logs on the live cluster: the gateway's request counters and latency
histograms (and the shards' item gauges) appear on Ray's metrics port in Prometheus format, read
back with prometheus-client's parser; a request id chosen by a client shows up in the shard
actor's JSON log line for that call."""
import glob
import json
import time
import uuid
from urllib.request import urlopen

import pytest
import ray
from prometheus_client.parser import text_string_to_metric_families

from memos_cluster.client import MemosClient
from memos_cluster.core.errors import NotFound

DEADLINE_S = 90  # Ray's agents export every few seconds


def scrape() -> dict:
    """{(sample name, frozenset(labels)): value} over every node's metrics port."""
    samples = {}
    for node in ray.nodes():
        port = node.get("MetricsExportPort")
        if not node["Alive"] or not port:
            continue
        text = urlopen(f"http://{node['NodeManagerAddress']}:{port}/metrics", timeout=10).read()
        for family in text_string_to_metric_families(text.decode()):
            for s in family.samples:
                key = (s.name, frozenset((k, v) for k, v in s.labels.items()
                                         if k in ("rpc", "status", "cube", "shard", "le")))
                samples[key] = samples.get(key, 0) + s.value
    return samples


def value(samples, name, **labels):
    return sum(v for (n, ls), v in samples.items()
               if n == name and set(labels.items()) <= set(ls))


@pytest.fixture
def cube(running, config):
    """One cube over gRPC (not once per transport, like the shared fixture: CI time)."""
    cube_id = f"obs-{uuid.uuid4().hex[:8]}"
    with MemosClient(running.grpc_address, application=config.gateway.app_name) as client:
        client.create_cube(cube_id)
        yield cube_id
        client.delete_cube(cube_id)


def test_request_metrics_reach_prometheus(running, config, cube):
    with MemosClient(running.grpc_address, application=config.gateway.app_name) as client:
        client.add(cube, ["a memory to count"])
        for _ in range(5):
            client.ping()
        client.search(cube, "count")
        with pytest.raises(NotFound):
            client.get_cube(f"{cube}-missing")
    deadline = time.monotonic() + DEADLINE_S
    while True:
        samples = scrape()
        pings = value(samples, "ray_memos_requests_total", rpc="Ping", status="OK")
        missing = value(samples, "ray_memos_requests_total", rpc="GetCube", status="NOT_FOUND")
        buckets = value(samples, "ray_memos_request_latency_ms_bucket", rpc="Search")
        items = value(samples, "ray_memos_cube_items", cube=cube)
        if pings >= 5 and missing >= 1 and buckets > 0 and items >= 1:
            break
        assert time.monotonic() < deadline, (pings, missing, buckets, items)
        time.sleep(2)
    assert value(samples, "ray_memos_request_latency_ms_count", rpc="Ping") >= 5


def test_a_request_id_reaches_the_shard_log(running, config, cube):
    request_id = f"test-{uuid.uuid4().hex}"
    with MemosClient(running.grpc_address, application=config.gateway.app_name,
                     metadata=[("request_id", request_id)]) as client:
        client.add(cube, ["traced through the gateway to its shard"])
    logs = ray._private.worker._global_node.get_logs_dir_path()
    deadline = time.monotonic() + 30
    while True:  # our JSON lines (Serve's own access log has the id too, in its format)
        entries = [json.loads(line) for path in glob.glob(f"{logs}/worker-*.err")
                   for line in open(path, errors="replace")
                   if request_id in line and line.startswith("{")]
        shard = [e for e in entries if e["component"].startswith("shard:")]
        if shard:
            break
        assert time.monotonic() < deadline, "no shard log line carries the request id"
        time.sleep(1)
    assert shard and shard[0]["request_id"] == request_id
    assert "add" in shard[0]["message"] and shard[0]["level"] == "INFO"
