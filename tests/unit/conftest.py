"""Unit tests run the core without Ray: any ray.init here is a bug in the test or the core."""
import pytest


def _forbidden(*args, **kwargs):
    raise AssertionError("unit tests must not start Ray; put this test under tests/integration")


@pytest.fixture(autouse=True)
def no_ray(monkeypatch):
    import ray

    monkeypatch.setattr(ray, "init", _forbidden)
