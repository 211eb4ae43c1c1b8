"""The session's gateway was deployed from serve_configs/serve-local.yaml through Serve's config
path (actors.cluster.start): the controller holds exactly the rendered file, and `serve deploy`
of the same file against the running cluster (the dashboard's REST API) keeps it serving."""
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml
from ray.serve.context import _get_global_client

from memos_cluster.client import MemosClient
from memos_cluster.deploy.serve_config import LOCAL_SERVE_CONFIG, load_serve_config, render_for

DEADLINE_S = 180


def deployed_app(config):
    details = _get_global_client().get_serve_details()
    return details["applications"][config.gateway.app_name]


def test_the_running_gateway_is_the_rendered_serve_file(running, config):
    rendered = render_for(load_serve_config(LOCAL_SERVE_CONFIG), config)
    app = deployed_app(config)
    assert app["status"] == "RUNNING"
    deployed = app["deployed_app_config"]
    wanted = rendered["applications"][0]
    assert deployed["import_path"] == wanted["import_path"]
    assert deployed["args"] == wanted["args"]
    assert deployed["deployments"][0]["max_ongoing_requests"] == 64
    assert deployed["runtime_env"]["env_vars"]["HF_HUB_OFFLINE"] == "1"


def test_serve_deploy_of_the_same_file_round_trips(running, config, tmp_path, grpc_address):
    path = Path(tmp_path) / "serve.yaml"
    path.write_text(yaml.safe_dump(render_for(load_serve_config(LOCAL_SERVE_CONFIG), config)))
    serve_cli = Path(sys.executable).with_name("serve")
    result = subprocess.run(
        [str(serve_cli), "deploy", str(path), "-a",
         f"http://127.0.0.1:{config.ray.dashboard_port}"],
        capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert result.returncode == 0, result.stderr[-2000:]
    deadline = time.monotonic() + DEADLINE_S
    while deployed_app(config)["status"] != "RUNNING":
        assert time.monotonic() < deadline, deployed_app(config)["message"]
        time.sleep(1)
    assert deployed_app(config)["deployed_app_config"]["args"]["config_dict"] == config.to_dict()
    with MemosClient(grpc_address, timeout_s=60) as client:
        client.wait_ready(timeout_s=DEADLINE_S)
        client.ping()
