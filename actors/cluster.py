"""Starting and stopping memos-cluster on Ray: the one place the CLI, the tests and the benchmarks
go through, so they all run the same system.

`start(config)` joins or starts Ray and deploys serve_configs/serve-local.yaml (rendered for the
config) the way `serve run` does: Serve with the gRPC proxy, then the gateway application, which
in turn creates the cube directory and the shard actors.
"""
from __future__ import annotations

import logging
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Iterator

import ray
from ray import serve
from ray.serve._private import api as serve_api  # what `serve run FILE` uses to start Serve
from ray.serve.config import gRPCOptions
from ray.serve.schema import ApplicationStatus, ServeDeploySchema

from memos_cluster.auth.bootstrap import ensure_local_admin_key, read_bootstrap_key
from memos_cluster.client import API_KEY_ENV, MemosClient
from memos_cluster.core.config import ENV_PREFIX, MemosConfig, with_overrides
from memos_cluster.core.errors import Unavailable
from memos_cluster.core.netutil import free_port
from memos_cluster.deploy.serve_config import LOCAL_SERVE_CONFIG, load_serve_config, render_for
from memos_cluster.placement.shardmap import shard_names

from actors.names import (
    AUTH_ACTOR_NAME, DIRECTORY_NAME, LORA_ACTOR_NAME, SCHEDULER_ACTOR_NAME, kv_actor_ids,
    kv_actor_name, shard_actor_name)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunningCluster:
    grpc_address: str  # host:port of the gRPC gateway
    http_address: str  # host:port of Serve's HTTP proxy (health at /-/healthz)
    started_ray: bool  # whether start() started Ray (and stop() should shut it down)


def connect_ray(config: MemosConfig) -> bool:
    """Join the configured Ray cluster, or start a local one. Returns True if it started Ray."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # A Ray job's entrypoint finds its cluster in RAY_ADDRESS (set by the job manager).
    address = config.ray.address or os.environ.get("RAY_ADDRESS")
    started = address is None
    if started:
        export_tls_env(config)
    ray.init(
        # "local", not None: None would join whatever /tmp/ray/ray_current_cluster names, and a
        # crashed earlier Ray leaves that file behind (ray.init then waits minutes and fails).
        address=address if address is not None else "local",
        namespace=config.ray.namespace,
        num_cpus=config.ray.num_cpus if started else None,
        include_dashboard=config.ray.include_dashboard if started else None,
        dashboard_port=config.ray.dashboard_port if started else None,
        log_to_driver=False,
        # Actors of this project import memos_cluster from the installed package.
        runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}},
    )
    return started


TLS_KEYS = ("tls_port", "tls_cert_file", "tls_key_file", "tls_client_ca_file")


def export_tls_env(config: MemosConfig) -> None:
    """Put the gateway's TLS settings in this process's environment, which a Ray started from
    here hands to Serve's proxy (the servicer hook reads them there; it gets no config)."""
    for key in TLS_KEYS:
        name = f"{ENV_PREFIX}GATEWAY__{key.upper()}"
        value = getattr(config.gateway, key)
        if value:
            os.environ[name] = str(value)
        else:
            os.environ.pop(name, None)


def admin_key_for(config: MemosConfig, local: bool) -> str | None:
    """The bootstrap admin key. A cluster made by this process (`local`) gets a fresh key file
    when none is set, and its key becomes this process's default client key (MEMOS_API_KEY),
    so the process that starts a cluster can use it. A cluster joined keeps what its nodes have
    (None if this process cannot see it) and MEMOS_API_KEY is only filled in if unset."""
    if not config.auth.enabled:
        return None
    key = ensure_local_admin_key(config) if local else read_bootstrap_key(config)
    if key is not None and local:
        os.environ[API_KEY_ENV] = key
    elif key is not None:
        os.environ.setdefault(API_KEY_ENV, key)
    return key


def start(config: MemosConfig, serve_file: Path | str = LOCAL_SERVE_CONFIG,
          timeout_s: float = 300.0) -> RunningCluster:
    """Start everything from a Serve config file (rendered for `config`, see
    memos_cluster/serve_config.py) through the controller path `serve run FILE` takes, and block
    until the application is RUNNING."""
    started = connect_ray(config)
    admin_key_for(config, local=started)
    rendered = render_for(load_serve_config(serve_file), config)
    schema = ServeDeploySchema.model_validate(rendered)
    client = serve_api.serve_start(
        http_options=schema.http_options.model_dump(), proxy_location=schema.proxy_location,
        grpc_options=gRPCOptions(**schema.grpc_options.model_dump()))
    client.deploy_apps(schema, _blocking=False)
    _wait_running(config.gateway.app_name, timeout_s)
    gateway = config.gateway
    return RunningCluster(grpc_address=f"{gateway.host}:{gateway.grpc_port}",
                          http_address=f"{gateway.host}:{gateway.http_port}",
                          started_ray=started)


def _wait_running(app_name: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        app = serve.status().applications.get(app_name)
        status = app.status if app is not None else "NOT_STARTED"
        if status == ApplicationStatus.RUNNING:
            return
        if status == ApplicationStatus.DEPLOY_FAILED:
            raise Unavailable(f"the Serve application {app_name!r} failed to deploy: "
                              f"{app.message}")
        if time.monotonic() > deadline:
            raise Unavailable(f"the Serve application {app_name!r} is still {status} after "
                              f"{timeout_s:.0f} s")
        time.sleep(0.5)


def stop(config: MemosConfig, running: RunningCluster) -> None:
    """Shut Serve and the memos actors down; stop Ray too if start() started it."""
    serve.shutdown()
    shards = set(shard_names(config.cluster.num_shards))
    try:  # shards added by a rebalance too
        directory = ray.get_actor(DIRECTORY_NAME, namespace=config.ray.namespace)
        shards |= set(ray.get(directory.layout.remote(), timeout=30).live_shards())
    except (ValueError, ray.exceptions.RayError):  # no directory, or it is gone
        pass
    names = [DIRECTORY_NAME, AUTH_ACTOR_NAME] + [shard_actor_name(s) for s in sorted(shards)]
    names += [kv_actor_name(k) for k in kv_actor_ids(config.activation.num_actors)]
    names += [LORA_ACTOR_NAME, SCHEDULER_ACTOR_NAME]
    for name in names:
        try:
            ray.kill(ray.get_actor(name, namespace=config.ray.namespace))
        except ValueError:  # never created, or already gone
            continue
    if running.started_ray:
        ray.shutdown()


@contextmanager
def temporary_cluster(config: MemosConfig, prefix: str = "memos-",
                      free_ports: bool = True) -> Iterator[MemosClient]:
    """A fresh local cluster on a temporary data dir and (`free_ports`) free loopback ports,
    yielding a client of its ready gateway; everything is stopped and removed on exit.
    Who calls it: `memos-cluster demo` and the benchmarks that start their own cluster (a bench
    that needs the HTTP port picks the ports itself and passes free_ports=False)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as data_dir:
        ports = {"gateway.grpc_port": free_port(), "gateway.http_port": free_port()} \
            if free_ports else {}
        config = with_overrides(config, {"data_dir": data_dir, **ports})
        running = start(config)
        try:
            with MemosClient(running.grpc_address,
                             application=config.gateway.app_name) as client:
                client.wait_ready()
                yield client
        finally:
            stop(config, running)


SHARD_RESOURCE = "memos-shard"  # the custom resource simulated worker nodes offer shards
GATEWAY_RESOURCE = "memos-gateway"  # offered by the simulated head only


@dataclass
class SimulatedCluster:
    nodes: Any  # ray.cluster_utils.Cluster
    config: MemosConfig
    address: str  # the gateway, as a client address

    def add_worker(self):
        """One more simulated worker node offering shard slots; returns its node."""
        node = self.nodes.add_node(num_cpus=1, resources={SHARD_RESOURCE: 8})
        self.nodes.wait_for_nodes()
        return node

    def kill_shard(self, shard_id: str) -> None:
        """Kill a shard actor's process (Ray restarts it)."""
        ray.kill(ray.get_actor(shard_actor_name(shard_id), namespace=self.config.ray.namespace),
                 no_restart=False)

    def remove_node_of(self, shard_id: str) -> str:
        """Remove (ungracefully) the worker node a shard runs on; returns its node id."""
        directory = ray.get_actor(DIRECTORY_NAME, namespace=self.config.ray.namespace)
        status = ray.get(directory.status.remote(), timeout=60)
        node_id = next(s.node_id for s in status.shards if s.shard_id == shard_id)
        node = next(n for n in self.nodes.worker_nodes if n.node_id == node_id)
        self.nodes.remove_node(node, allow_graceful=False)
        return node_id


@contextmanager
def simulated_cluster(config: MemosConfig, workers: int = 2,
                      prefix: str = "memos-sim-") -> Iterator[SimulatedCluster]:
    """memos-cluster on several simulated Ray nodes on this machine (ray.cluster_utils): a head
    without shard resources and `workers` worker nodes offering `memos-shard`, shards asking for
    one each, so placement and node loss are real. Temporary data dir and loopback ports.
    Who calls it: the multi-node tests (tests/cluster) and `memos-cluster bench cluster`."""
    from ray.cluster_utils import Cluster

    # Gateway replicas stay on the head (it offers GATEWAY_RESOURCE): the drills remove worker
    # nodes to lose shards, not the front door (losing a replica is a drill of its own).
    nodes = Cluster(initialize_head=True,
                    head_node_args={"num_cpus": 2, "resources": {GATEWAY_RESOURCE: 8}})
    try:
        with tempfile.TemporaryDirectory(prefix=prefix) as data_dir:
            sim = SimulatedCluster(nodes, with_overrides(config, {
                "data_dir": data_dir, "ray.address": nodes.address,
                "gateway.grpc_port": free_port(), "gateway.http_port": free_port(),
                "cluster.shard_resources": {SHARD_RESOURCE: 1},
                "gateway.resources": {GATEWAY_RESOURCE: 1}}), "")
            for _ in range(workers):
                sim.add_worker()
            admin_key_for(sim.config, local=True)
            running = start(sim.config)
            sim.address = f"grpc://{running.grpc_address}?app={sim.config.gateway.app_name}"
            try:
                with MemosClient(sim.address) as probe:
                    probe.wait_ready(timeout_s=180)
                yield sim
            finally:
                stop(sim.config, running)
                ray.shutdown()
    finally:
        nodes.shutdown()
