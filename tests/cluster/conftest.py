"""A simulated multi-node Ray cluster on this machine (actors.cluster.simulated_cluster): a head
node without shard resources and two worker nodes offering shard slots, memos-cluster started on
it. One cluster for this test session (its own pytest run: see scripts/test.sh)."""
import pytest

from memos_cluster.client import MemosClient
from memos_cluster.core.config import MemosConfig, with_overrides


@pytest.fixture(scope="session")
def sim():
    from actors.cluster import simulated_cluster

    config = with_overrides(MemosConfig(), {"cluster.num_shards": 2,
                                            "cluster.call_timeout_s": 20,
                                            "scheduler.interval_s": 3600})
    with simulated_cluster(config, workers=2) as sim:
        yield sim


@pytest.fixture
def client(sim):
    with MemosClient(sim.address, timeout_s=60) as client:
        yield client
