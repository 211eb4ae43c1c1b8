"""Unit tests run the core without Ray: any ray.init here is a bug in the test or the core."""
import pytest


def _forbidden(*args, **kwargs):
    raise AssertionError("unit tests must not start Ray; put this test under tests/integration")


@pytest.fixture(autouse=True)
def no_ray(monkeypatch):
    import ray

    monkeypatch.setattr(ray, "init", _forbidden)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """The built-in tiny-llama on the CPU: (model, tokenizer, identity), once per module."""
    from memos_cluster.tiers.llm.model import load_causal_lm, resolve_model

    path, identity = resolve_model("builtin:tiny-llama", tmp_path_factory.mktemp("models"))
    model, tokenizer = load_causal_lm(path, "cpu")
    return model, tokenizer, identity
