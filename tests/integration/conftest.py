"""One real Ray + Serve + milvus-lite cluster for the whole integration session, driven through
the real API: gRPC and HTTP/JSON over loopback, and the Ray transport (Serve deployment handles)
from the test process, which is a driver of that cluster. Tests that take `client` run once per
transport.
Auth is on: `cluster.start` makes the cluster's bootstrap admin key this process's MEMOS_API_KEY,
so clients here call as the admin unless a test hands them another key (test_tenancy)."""
import re

import pytest

from memos_cluster.client import MemosClient
from memos_cluster.core.config import MemosConfig, with_overrides
from memos_cluster.core.netutil import free_port


@pytest.fixture(scope="session")
def tls_dir(tmp_path_factory):
    from certs import make_certs

    return make_certs(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def config(tmp_path_factory, tls_dir):
    data_dir = tmp_path_factory.mktemp("memos-data")
    return with_overrides(MemosConfig(), {
        "data_dir": str(data_dir),
        "gateway.grpc_port": free_port(),
        "gateway.http_port": free_port(),
        "cluster.num_shards": 2,
        # The tiers' mechanics on the fast random-weight model; answers from the real default
        # model are tested on the multi-node cluster (tests/cluster/test_grounded.py) and in
        # tests/unit/test_real_model.py.
        "activation.model": "builtin:tiny-llama",
        # Small limits so the oversize tests stay cheap.
        "limits.max_batch_items": 50,
        "limits.max_text_chars": 2000,
        # Short enough that a call to a dead shard fails fast instead of hanging a test.
        "cluster.call_timeout_s": 20,
        # Scheduler cycles only when a test asks (RunSchedulerCycle): deterministic tiers.
        "scheduler.interval_s": 3600,
        # The job API, for the Ray-job test.
        "ray.include_dashboard": True,
        "ray.dashboard_port": free_port(),
        # Mutual TLS beside the plaintext port (test_tls; server-only TLS: test_grpc_servicer).
        "gateway.tls_port": free_port(),
        "gateway.tls_cert_file": str(tls_dir / "server.pem"),
        "gateway.tls_key_file": str(tls_dir / "server.key"),
        "gateway.tls_client_ca_file": str(tls_dir / "ca.pem"),
        # Small enough for the oversize-request test to be cheap.
        "limits.max_request_bytes": 512 * 1024,
    })


@pytest.fixture(scope="session")
def running(config):
    from actors import cluster

    running = cluster.start(config)
    with MemosClient(running.grpc_address) as probe:
        probe.wait_ready(timeout_s=180)
    yield running
    cluster.stop(config, running)


def client_address(transport: str, running, config) -> str:
    if transport == "grpc":
        return f"grpc://{running.grpc_address}?app={config.gateway.app_name}"
    if transport == "http":
        return f"http://127.0.0.1:{config.gateway.http_port}"
    return f"ray://?app={config.gateway.app_name}"


@pytest.fixture
def grpc_address(running, config):
    """The gateway's gRPC address, for tests that open their own clients (threads)."""
    return client_address("grpc", running, config)


@pytest.fixture(params=["grpc", "ray", "http"])
def client(running, config, request):
    """The same behavioural suite runs over the three transports."""
    with MemosClient(client_address(request.param, running, config), timeout_s=60) as client:
        yield client


@pytest.fixture
def cube(client, request):
    """A fresh cube per test, named after the test, purged afterwards."""
    cube_id = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:100].strip("-")
    client.create_cube(cube_id)
    yield cube_id
    client.delete_cube(cube_id)
