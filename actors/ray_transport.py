"""The Ray transport of `MemosClient`: code running on the cluster (a Ray job's driver, a task, an
actor) calls the gateway application through a Serve deployment handle, with no gRPC hop.

It reaches the same `MemoryGateway` replicas as gRPC clients, through `MemoryGateway.call`, so
authentication, validation, routing and defaults are one implementation; requests and
replies are the domain types themselves, pickled by Ray. Errors come back as the same memos
exception types a gRPC client raises for the same status.

Who uses it: `MemosClient("ray://")` (see `memos_cluster.client`); nobody constructs it directly.
"""
from __future__ import annotations

import threading
from typing import Any, Optional, Sequence

import ray
from ray import serve
from ray.serve.exceptions import RayServeException

from memos_cluster.errors import DeadlineExceeded, Unavailable

from actors.handles import ray_errors


class RayTransport:
    """Calls the Serve application `application` on the Ray cluster this process belongs to
    (`ray_address` None: the current connection, or RAY_ADDRESS / a local cluster's "auto").
    Connects on the first call, so constructing one does no I/O. Thread-safe."""

    def __init__(self, ray_address: Optional[str], application: str, timeout_s: float,
                 metadata: Sequence[tuple[str, str]]):
        self.address = f"ray://{ray_address or ''}?app={application}"
        self._ray_address = ray_address
        self._application = application
        self._timeout_s = timeout_s
        self._metadata = tuple(metadata)
        self._lock = threading.Lock()
        self._handle: Any = None

    def close(self) -> None:
        """Drops the handle; the process's Ray connection belongs to the caller and stays."""
        self._handle = None

    def _get_handle(self):
        with self._lock:
            if self._handle is None:
                if not ray.is_initialized():
                    try:
                        ray.init(address=self._ray_address or "auto", log_to_driver=False)
                    except ConnectionError as exc:
                        raise Unavailable(f"no Ray cluster at {self._ray_address or 'auto'}: "
                                          f"{exc}") from None
                try:
                    self._handle = serve.get_app_handle(self._application)
                except RayServeException as exc:
                    raise Unavailable(f"Serve application {self._application!r} is not "
                                      f"running on this Ray cluster: {exc}") from None
            return self._handle

    def _call(self, method: str, *args: Any) -> Any:
        response = self._get_handle().call.remote(method, args, self._metadata)
        with ray_errors("the gateway", method):
            try:
                return response.result(timeout_s=self._timeout_s)
            except TimeoutError:  # the client's deadline, as gRPC's DEADLINE_EXCEEDED
                response.cancel()
                raise DeadlineExceeded(f"{method} did not finish within "
                                       f"{self._timeout_s:.0f} s") from None

    # The Transport protocol (memos_cluster.client): one forwarder a method.
    def create_cube(self, spec):
        return self._call("create_cube", spec)

    def delete_cube(self, cube_id):
        return self._call("delete_cube", cube_id)

    def list_cubes(self):
        return self._call("list_cubes")

    def get_cube(self, cube_id):
        return self._call("get_cube", cube_id)

    def add(self, cube_id, items):
        return self._call("add", cube_id, list(items))

    def search(self, query):
        return self._call("search", query)

    def get(self, cube_id, ids):
        return self._call("get", cube_id, list(ids))

    def update(self, update):
        return self._call("update", update)

    def history(self, cube_id, memory_id):
        return self._call("history", cube_id, memory_id)

    def delete(self, cube_id, ids):
        return self._call("delete", cube_id, list(ids))

    def health(self):
        return self._call("health")

    def ping(self):
        return self._call("ping")

    def activate(self, cube_id, memory_ids, replace):
        return self._call("activate", cube_id, list(memory_ids), replace)

    def train(self, cube_id, memory_ids, rank, steps, learning_rate):
        return self._call("train", cube_id, list(memory_ids), rank, steps, learning_rate)

    def training_job(self, job_id):
        return self._call("training_job", job_id)

    def cancel_training(self, job_id):
        return self._call("cancel_training", job_id)

    def adapters(self, cube_id):
        return self._call("adapters", cube_id)

    def delete_adapter(self, cube_id, version):
        return self._call("delete_adapter", cube_id, version)

    def tier_status(self, cube_id):
        return self._call("tier_status", cube_id)

    def scheduler(self, action):
        return self._call("scheduler", action)

    def shards(self):
        return self._call("shards")

    def reshard(self, shard_ids):
        return self._call("reshard", list(shard_ids))

    def whoami(self):
        return self._call("whoami")

    def create_user(self, user_id, role):
        return self._call("create_user", user_id, role)

    def list_users(self):
        return self._call("list_users")

    def delete_user(self, user_id):
        return self._call("delete_user", user_id)

    def create_key(self, user_id, name, expires_in_s, rate_limit_rps):
        return self._call("create_key", user_id, name, expires_in_s, rate_limit_rps)

    def list_keys(self, user_id):
        return self._call("list_keys", user_id)

    def revoke_key(self, key_id):
        return self._call("revoke_key", key_id)

    def share_cube(self, cube_id, user_id, permission):
        return self._call("share_cube", cube_id, user_id, permission)

    def revoke_cube(self, cube_id, user_id):
        return self._call("revoke_cube", cube_id, user_id)

    def cube_access(self, cube_id):
        return self._call("cube_access", cube_id)

    def generate(self, call):
        """Events as the gateway streams them (a streaming Serve handle call)."""
        stream = self._get_handle().options(stream=True).call_stream.remote(
            "generate", (call,), self._metadata)
        with ray_errors("the gateway", "generate"):
            yield from stream
