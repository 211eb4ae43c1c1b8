import pytest

from memos_cluster.core.config import MemosConfig, env_overrides, load_config, with_overrides
from memos_cluster.core.errors import ConfigError


def test_defaults_are_the_embedded_setup():
    config = MemosConfig()
    assert config.storage.milvus_uri is None
    assert config.embedder.kind == "minilm"
    assert config.ray.address is None


def test_yaml_env_and_set_apply_in_order(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("gateway:\n  grpc_port: 9100\n  http_port: 8100\ncluster:\n  num_shards: 3\n")
    config = load_config(str(path), environ={"MEMOS__GATEWAY__GRPC_PORT": "9200",
                                             "MEMOS__STORAGE__MILVUS_URI": "http://m:19530"},
                         sets=["gateway.grpc_port=9300", "limits.max_top_k=50"])
    assert config.gateway.grpc_port == 9300  # --set beats env beats file
    assert config.gateway.http_port == 8100
    assert config.cluster.num_shards == 3
    assert config.storage.milvus_uri == "http://m:19530"
    assert config.limits.max_top_k == 50


def test_optional_values_can_be_reset_to_none():
    config = with_overrides(MemosConfig(), {"storage.milvus_uri": "http://x"})
    assert with_overrides(config, {"storage.milvus_uri": "none"}).storage.milvus_uri is None


@pytest.mark.parametrize("overrides,field", [
    ({"gateway.grpc_port": "ninety"}, "gateway.grpc_port"),
    ({"gateway.nope": 1}, "gateway"),
    ({"cluster.num_shards": True}, "cluster.num_shards"),
    ({"search.fusion": "magic"}, "search.fusion"),
    ({"search.default_mode": "fuzzy"}, "search.default_mode"),
    ({"activation.recompute_ratio": "1.5"}, "activation.recompute_ratio"),
])
def test_bad_values_name_the_key(overrides, field):
    with pytest.raises(ConfigError) as info:
        with_overrides(MemosConfig(), overrides)
    assert field in str(info.value)


def test_env_overrides_only_take_the_prefix():
    assert env_overrides({"MEMOS__A__B": "1", "OTHER": "2"}) == {"a.b": "1"}


def test_bad_yaml_is_a_config_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("- a list\n")
    with pytest.raises(ConfigError):
        load_config(str(path), environ={})


def test_the_shipped_config_file_spells_out_the_defaults():
    from pathlib import Path

    import yaml

    path = Path(__file__).resolve().parents[2] / "serve_configs" / "memos.yaml"
    assert load_config(str(path), environ={}) == MemosConfig()
    # Every key written out, not only the ones that differ (a new section must be added there).
    assert yaml.safe_load(path.read_text()) == MemosConfig().to_dict()
