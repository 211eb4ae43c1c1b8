"""memos-cluster: a memory operating system for LLM agents, on a Ray cluster.

What a user of the library needs, importable from here:

    from memos_cluster import MemosClient, NewMemory
    with MemosClient("127.0.0.1:9000") as client:
        client.add("alice", [NewMemory("Alice adopted a cat named Miso")])

The layers underneath (ARCHITECTURE.md): `core/` (types, errors, config, validation, the
operation table), `placement/`, `embed/`, `auth/`, `tiers/` (plaintext, activation, parametric
and the model code they share), `scheduler/`, `data/`, `deploy/`; the edges `api/` (protobuf)
and `client/`; the entry points `cli/` and `bench/`; Ray's side in the top-level `actors/`.

The names below are loaded on first use, so importing one module of the package does not import
the client (and gRPC) with it.
"""
from __future__ import annotations

from typing import Any

_CLIENT = ("MemosClient", "TLSOptions")
_CONFIG = ("MemosConfig", "load_config")
_TYPES = ("NewMemory", "MemoryItem", "MemoryUpdate", "SearchMode", "SearchFilter", "SearchQuery",
          "SearchHit", "TimeRange", "CubeSpec", "CubeStats", "AddResult", "GetResult",
          "DeleteResult")
_TIER_TYPES = ("TokenEvent", "GenerateStats", "BlockStats", "TrainingJob", "AdapterListing",
               "TierStatus", "SchedulerStatus")
_ERRORS = ("MemosError", "InvalidArgument", "NotFound", "AlreadyExists", "FailedPrecondition",
           "Unavailable", "Unauthenticated", "PermissionDenied", "ResourceExhausted",
           "DeadlineExceeded", "InternalError", "ConfigError")
__all__ = sorted(_CLIENT + _CONFIG + _TYPES + _TIER_TYPES + _ERRORS)


def __getattr__(name: str) -> Any:
    """A public name, imported on first use (PEP 562)."""
    if name in _CLIENT:
        from memos_cluster import client as module
    elif name in _CONFIG:
        from memos_cluster.core import config as module
    elif name in _TYPES:
        from memos_cluster.core import types as module
    elif name in _TIER_TYPES:
        from memos_cluster.core import tier_types as module
    elif name in _ERRORS:
        from memos_cluster.core import errors as module
    else:
        raise AttributeError(f"module 'memos_cluster' has no attribute {name!r}")
    value = globals()[name] = getattr(module, name)
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
