"""The Ray transport from where cluster code runs: tasks and actors concurrently, a Ray job
submitted through the job SDK, and the errors it raises. (The behavioural suite in test_crud,
test_errors and test_recovery runs over this transport too, via the `client` fixture.)"""
import os
import sys
import time
from pathlib import Path

import pytest
import ray

from memos_cluster.client import API_KEY_ENV, MemosClient
from memos_cluster.core.errors import InvalidArgument, NotFound, Unavailable
from memos_cluster.core.types import NewMemory

REPO = Path(__file__).resolve().parents[2]
JOB_DEADLINE_S = 240
ANIMALS = ("falcon", "otter", "badger", "heron", "lynx", "marten", "osprey", "bison", "ibex",
           "tapir")
PLACES = ("harbour", "quarry", "orchard", "glacier")


def test_tasks_and_actors_write_and_search_concurrently(config, running):
    app = config.gateway.app_name
    team = "ray-team"
    MemosClient(f"ray://?app={app}").create_cube(team)
    # Code on the cluster authenticates like any client: it is handed a key (here the admin's).
    key = os.environ[API_KEY_ENV]

    # Defined inside the test so Ray ships them by value (the test module is not importable
    # on workers); they reach memos-cluster only through MemosClient("ray://").
    @ray.remote(num_cpus=0)
    def writer(worker: int) -> tuple:
        client = MemosClient(f"ray://?app={app}", api_key=key)
        items = [NewMemory(f"A {animal} was spotted at the {PLACES[worker]}",
                           id=f"w{worker}-{i}") for i, animal in enumerate(ANIMALS)]
        first = client.add(team, items)
        again = client.add(team, items)  # idempotent: same ids, same content
        try:
            client.get("no-such-cube-from-a-task", ["x"])
            error = None
        except NotFound as exc:
            error = type(exc).__name__
        return first.num_inserted, again.num_unchanged, error

    @ray.remote(num_cpus=0)
    class Reader:
        def __init__(self):
            self.client = MemosClient(f"ray://?app={app}", api_key=key)

        def find(self, animal: str, place: str) -> str:
            hits = self.client.search(team, f"did anyone see a {animal} at the {place}?",
                                      top_k=1)
            return hits[0].item.id if hits else ""

    try:
        results = ray.get([writer.remote(w) for w in range(4)], timeout=180)
        assert results == [(10, 10, "NotFound")] * 4
        readers = [Reader.remote() for _ in range(2)]
        asks = [(0, 3), (1, 5), (2, 9), (3, 1)]  # (worker, animal index)
        found = ray.get([readers[n % 2].find.remote(ANIMALS[i], PLACES[w])
                         for n, (w, i) in enumerate(asks)], timeout=120)
        assert found == [f"w{w}-{i}" for w, i in asks]
        assert MemosClient(f"ray://?app={app}").get_cube(team).num_memories == 40
    finally:
        MemosClient(f"ray://?app={app}").delete_cube(team)


def test_ray_transport_errors_are_the_grpc_ones(config, running):
    ray_client = MemosClient(f"ray://?app={config.gateway.app_name}")
    grpc_client = MemosClient(running.grpc_address, application=config.gateway.app_name)
    messages = []
    for client in (ray_client, grpc_client):
        with pytest.raises(InvalidArgument) as info:
            client.search("has space", "q")
        messages.append(info.value.message)
        with pytest.raises(NotFound):
            client.get_cube("never-created")
    assert messages[0] == messages[1] and "cube_ids[0]" in messages[0]
    ray_client.ping()


def test_unknown_application_is_unavailable(running):
    with pytest.raises(Unavailable, match="no-such-app"):
        MemosClient("ray://?app=no-such-app").ping()


def test_gateway_refuses_unknown_operations(config, running):
    from ray import serve

    handle = serve.get_app_handle(config.gateway.app_name)
    with pytest.raises(InvalidArgument):
        handle.call.remote("_service", (), ()).result(timeout_s=30)
    with pytest.raises(InvalidArgument, match="get_cube"):
        handle.call.remote("get_cube", ("a", "b", "c"), ()).result(timeout_s=30)


def test_example_runs_as_a_ray_job(config, running):
    from ray.job_submission import JobStatus, JobSubmissionClient

    jobs = JobSubmissionClient(f"http://127.0.0.1:{config.ray.dashboard_port}")
    deadline = time.monotonic() + JOB_DEADLINE_S
    while True:  # the dashboard's job agent may still be starting on a loaded machine
        try:
            job_id = jobs.submit_job(
                entrypoint=f"{sys.executable} {REPO / 'examples' / 'multi_agent.py'} "
                           f"--app {config.gateway.app_name}",
                runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1",
                                          API_KEY_ENV: os.environ[API_KEY_ENV]}})
            break
        except RuntimeError as exc:
            if "No available agent" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(2)
    while (status := jobs.get_job_status(job_id)) not in (
            JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
        if time.monotonic() > deadline:
            jobs.stop_job(job_id)
            pytest.fail(f"job {job_id} still {status} after {JOB_DEADLINE_S} s")
        time.sleep(1)
    logs = jobs.get_job_logs(job_id)
    assert status == JobStatus.SUCCEEDED, logs[-3000:]
    assert "summary: 4/4 agents found their teammate's observation" in logs
    assert "isolation: 4/4 agents were refused another agent's private cube" in logs
