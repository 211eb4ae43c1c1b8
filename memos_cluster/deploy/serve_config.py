"""Serve config files (serve_configs/*.yaml) as the one source of how the gateway is deployed:
`memos-cluster up`, the tests and the benchmarks deploy serve_configs/serve-local.yaml through
the same controller path as `serve run` / `serve deploy`; the KubeRay RayService embeds
serve_configs/serve-prod.yaml verbatim as its serveConfigV2 (k8s/, memos_cluster/k8s.py).

Pure dict work, no Ray: `actors.cluster.start` validates the result with Serve's own schema and
deploys it.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from memos_cluster.core.config import MemosConfig
from memos_cluster.core.errors import ConfigError

SERVE_CONFIGS = Path(__file__).resolve().parents[2] / "serve_configs"
LOCAL_SERVE_CONFIG = SERVE_CONFIGS / "serve-local.yaml"
PROD_SERVE_CONFIG = SERVE_CONFIGS / "serve-prod.yaml"
GATEWAY_IMPORT_PATH = "actors.gateway:app_builder"


def load_serve_config(path: Path | str) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no Serve config at {path}", "serve_config")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or not data.get("applications"):
        raise ConfigError(f"{path}: a Serve config needs an 'applications' list", "serve_config")
    return data


def gateway_app(serve: dict[str, Any]) -> dict[str, Any]:
    """The file's memos application (the one importing the gateway)."""
    apps = [a for a in serve["applications"] if a.get("import_path") == GATEWAY_IMPORT_PATH]
    if len(apps) != 1:
        raise ConfigError(f"the Serve config must have one application with import_path "
                          f"{GATEWAY_IMPORT_PATH}, has {len(apps)}", "serve_config")
    return apps[0]


def render_for(serve: dict[str, Any], config: MemosConfig) -> dict[str, Any]:
    """The Serve config to deploy for a resolved memos config: the file's structure (proxies,
    servicer functions, deployments, autoscaling, logging, runtime env) with the gateway's ports,
    host, timeout, application name and replica resources from `config`, and the whole resolved config as the
    application's arguments (so the gateway runs exactly the configuration `up` resolved).
    Who calls it: `actors.cluster.start`."""
    out = copy.deepcopy(serve)
    gateway = config.gateway
    out.setdefault("http_options", {}).update(host=gateway.host, port=gateway.http_port)
    grpc = out.setdefault("grpc_options", {})
    grpc.update(port=gateway.grpc_port, request_timeout_s=gateway.request_timeout_s)
    app = gateway_app(out)
    app["name"] = gateway.app_name
    app["args"] = {"config_dict": config.to_dict()}
    if gateway.resources:
        for deployment in app.get("deployments", []):
            options = deployment.setdefault("ray_actor_options", {})
            options["resources"] = {**options.get("resources", {}), **gateway.resources}
    return out
