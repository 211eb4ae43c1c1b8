"""The Serve config files: valid for Serve's own schema, their memos overrides valid for memos'
config, and `render_for` writes the resolved config and gateway ports into them."""
import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

from memos_cluster.core.config import MemosConfig, config_from_dict, with_overrides
from memos_cluster.core.errors import ConfigError
from memos_cluster.deploy.serve_config import (
    LOCAL_SERVE_CONFIG, PROD_SERVE_CONFIG, gateway_app, load_serve_config, render_for)


@pytest.mark.parametrize("path", [LOCAL_SERVE_CONFIG, PROD_SERVE_CONFIG])
def test_serve_files_validate_and_their_overrides_are_memos_keys(path):
    serve = load_serve_config(path)
    ServeDeploySchema.model_validate(serve)
    app = gateway_app(serve)
    config = with_overrides(MemosConfig(), app["args"]["overrides"])
    # Serve's ports and the gateway's agree inside each file.
    assert serve["grpc_options"]["port"] == config.gateway.grpc_port
    assert serve["http_options"]["port"] == config.gateway.http_port
    assert [d["name"] for d in app["deployments"]] == ["MemoryGateway"]


def test_render_writes_ports_and_the_resolved_config():
    config = with_overrides(MemosConfig(), {"gateway.grpc_port": 9123, "gateway.http_port": 8123,
                                            "cluster.num_shards": 3, "data_dir": "/tmp/x"})
    rendered = render_for(load_serve_config(LOCAL_SERVE_CONFIG), config)
    schema = ServeDeploySchema.model_validate(rendered)
    assert schema.grpc_options.port == 9123 and schema.http_options.port == 8123
    app = gateway_app(rendered)
    assert config_from_dict(app["args"]["config_dict"]) == config
    assert load_serve_config(LOCAL_SERVE_CONFIG)["grpc_options"]["port"] == 9000  # untouched


def test_a_file_without_the_gateway_app_is_refused(tmp_path):
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump({"applications": [{"name": "x", "import_path": "m:a"}]}))
    with pytest.raises(ConfigError, match="import_path"):
        gateway_app(load_serve_config(path))
    with pytest.raises(ConfigError, match="no Serve config"):
        load_serve_config(tmp_path / "missing.yaml")


def test_gateway_resources_go_into_the_replicas_actor_options():
    config = with_overrides(MemosConfig(), {"gateway.resources": {"ingress": 1}})
    app = gateway_app(render_for(load_serve_config(LOCAL_SERVE_CONFIG), config))
    options = app["deployments"][0]["ray_actor_options"]
    assert options == {"num_cpus": 0, "resources": {"ingress": 1.0}}
