"""The exceptions of memos-cluster. Each maps to one gRPC status code (by name, so that the core
does not import grpc); the gateway sets that code and the client raises the same class back."""
from __future__ import annotations


class MemosError(Exception):
    """Base class. `status` is the name of the grpc.StatusCode it maps to."""

    status = "INTERNAL"

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.message = message
        self.field = field  # the request field at fault, when there is one

    def __reduce__(self):  # keep (message, field) across Ray's pickling
        return (type(self), (self.message, self.field))


class InvalidArgument(MemosError):
    status = "INVALID_ARGUMENT"


class NotFound(MemosError):
    status = "NOT_FOUND"


class AlreadyExists(MemosError):
    status = "ALREADY_EXISTS"


class FailedPrecondition(MemosError):
    status = "FAILED_PRECONDITION"


class Unavailable(MemosError):
    """A shard is down or restarting; safe to retry after a short wait."""

    status = "UNAVAILABLE"


class WrongShard(Unavailable):
    """A shard was asked about a cube it does not own under its layout (the caller's copy is
    older). Gateways refresh their layout and re-route; a caller only sees it if that fails."""


class ShardMissing(Unavailable):
    """The caller's layout names a shard that has no actor: a reshard removed it (the layout
    is older than the directory's) or it is not made yet. Gateways refresh their layout and
    re-route, as for WrongShard; a caller only sees it if that fails."""


class CubeMoving(Unavailable):
    """The cube is being copied to another shard; writes wait for the move (seconds)."""


class Unauthenticated(MemosError):
    """No API key, or one that is unknown, revoked or expired (one message for all: no oracle)."""

    status = "UNAUTHENTICATED"


class PermissionDenied(MemosError):
    """The caller's key is valid but its user may not do this to this cube or resource."""

    status = "PERMISSION_DENIED"


class ResourceExhausted(MemosError):
    """A per-key rate limit or the request size limit; retry later or send less."""

    status = "RESOURCE_EXHAUSTED"


class DeadlineExceeded(MemosError):
    status = "DEADLINE_EXCEEDED"


class Unimplemented(MemosError):
    """No such method: HTTP's 405 on a path that exists (the router's answer)."""

    status = "UNIMPLEMENTED"


class InternalError(MemosError):
    status = "INTERNAL"


class ConfigError(MemosError):
    """A configuration file, override or environment variable is invalid."""

    status = "INVALID_ARGUMENT"


ERRORS_BY_STATUS: dict[str, type[MemosError]] = {
    cls.status: cls
    for cls in (InvalidArgument, NotFound, AlreadyExists, FailedPrecondition, Unavailable,
                DeadlineExceeded, InternalError, Unauthenticated, PermissionDenied,
                ResourceExhausted, Unimplemented)
}
