"""The Ray transport of `MemosClient`: code running on the cluster (a Ray job's driver, a task, an
actor) calls the gateway application through a Serve deployment handle, with no gRPC hop.

It reaches the same `MemoryGateway` replicas as gRPC clients, through `MemoryGateway.call`, so
authentication, validation, routing and defaults are one implementation; requests and
replies are the domain types themselves, pickled by Ray. Errors come back as the same memos
exception types a gRPC client raises for the same status.

Who uses it: `MemosClient("ray://")` (see `memos_cluster.client`); nobody constructs it directly.
`ray_errors` is also how the cluster's own actor handles (`actors/handles.py`) translate Ray's
failures, so a dead actor reads the same whoever called it.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional, Sequence

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError, RayTaskError

from memos_cluster.core.errors import DeadlineExceeded, InternalError, MemosError, Unavailable


@contextmanager
def ray_errors(what: str, method: str, on_dead: Optional[Callable[[], None]] = None):
    """Translate Ray's failure modes inside the block: an exception raised by memos code inside
    an actor comes back as itself; a dead or restarting actor becomes Unavailable (retryable);
    anything else INTERNAL. Timeouts are the caller's: what a missed deadline means differs
    between callers. `on_dead` runs when the actor is gone, so a cached handle can be dropped."""
    try:
        yield
    except RayTaskError as exc:
        cause = exc.cause
        if isinstance(cause, MemosError):
            raise cause from None
        raise InternalError(f"{what} failed in {method}: {type(cause).__name__}") from None
    except (ActorDiedError, ActorUnavailableError, RayActorError) as exc:
        if on_dead is not None:
            on_dead()
        raise Unavailable(f"{what} is unavailable (restarting?); retry shortly") from exc


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
        from ray import serve
        from ray.serve.exceptions import RayServeException

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

    def call(self, operation: str, *args: Any) -> Any:
        response = self._get_handle().call.remote(operation, args, self._metadata)
        with ray_errors("the gateway", operation):
            try:
                return response.result(timeout_s=self._timeout_s)
            except TimeoutError:  # the client's deadline, as gRPC's DEADLINE_EXCEEDED
                response.cancel()
                raise DeadlineExceeded(f"{operation} did not finish within "
                                       f"{self._timeout_s:.0f} s") from None

    def stream(self, operation: str, *args: Any) -> Iterator[Any]:
        """Events as the gateway streams them (a streaming Serve handle call)."""
        stream = self._get_handle().options(stream=True).call_stream.remote(
            operation, args, self._metadata)
        with ray_errors("the gateway", operation):
            yield from stream
