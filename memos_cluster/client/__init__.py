"""MemosClient: the typed Python client of memos-cluster, with one interface over three transports.

The address picks the transport:
- `"host:port"` or `"grpc://host:port"`: gRPC to a gateway (remote clients, agents, services);
  `memos_cluster.client.grpc_transport`. `"grpcs://host:port"`: the same over TLS (the
  gateway's `gateway.tls_port`; see `TLSOptions` for a private CA and client certificates).
- `"ray://"`: code running on the Ray cluster (a job's driver, a task, an actor) calls the gateway
  application through a Serve deployment handle, with no gRPC hop; `"ray://HOST:PORT"` first
  connects to the Ray cluster at that GCS address. `memos_cluster.client.ray_transport`.
- `"http://host:port"` (`"https://..."`): the gateway's HTTP/JSON API on Serve's HTTP port
  (`gateway.http_port`); `memos_cluster.client.http_transport`. The route prefix, not `?app=`,
  picks the application there.
gRPC and Ray addresses take `?app=NAME` for the Serve application (default `memos`).

Every call carries an API key (`authorization: Bearer <key>`): `api_key=`, else the environment
variable MEMOS_API_KEY.

Every method returns domain types (`memos_cluster.core.types`) and raises the memos exception of the
status (`memos_cluster.core.errors`) with the server's message, whichever transport carries it; an
unreachable gateway raises Unavailable.
"""
from __future__ import annotations

import os
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Protocol, Sequence
from urllib.parse import parse_qs, urlsplit

from memos_cluster.core.auth_types import AUTH_HEADER, CubeAccess, KeyInfo, Principal, User
from memos_cluster.core.errors import DeadlineExceeded, InvalidArgument, MemosError, Unavailable
from memos_cluster.core.lifecycle import Feedback
from memos_cluster.core.tier_types import (
    AdapterListing, BlockStats, ChatCall, ChatMessage, ChatStats, GenerateCall, GenerateStats,
    SamplingParams, SchedulerStatus, TierStatus, TokenEvent, TrainingJob)
from memos_cluster.core.request_stats import GatewayStats
from memos_cluster.core.structure import EntityDetail, EntityPage, EntityQuery
from memos_cluster.core.types import (
    AddResult, CubeSpec, CubeStats, DeleteResult, FeedbackResult, GetResult, ListQuery,
    MemoryItem, MemoryPage, MemoryUpdate, NewMemory, SearchFilter, SearchHit, SearchMode,
    SearchQuery, ShardHealth, ShardsStatus)

__all__ = ["API_KEY_ENV", "MemosClient", "TLSOptions", "Transport", "parse_address"]

API_KEY_ENV = "MEMOS_API_KEY"  # the key a client sends when none is given


@dataclass(frozen=True)
class TLSOptions:
    """For grpcs:// addresses. All PEM files; empty fields take gRPC's defaults (the system's
    root certificates, no client certificate)."""

    ca_file: str = ""  # roots that sign the gateway's certificate (a private CA)
    cert_file: str = ""  # this client's certificate, for gateways that require one (mTLS)
    key_file: str = ""
    server_name: str = ""  # the name to verify the certificate against, if not the host

    def read(self) -> tuple[Optional[bytes], Optional[bytes], Optional[bytes]]:
        """(root certificates, private key, certificate chain) as grpc wants them."""
        def load(path: str) -> Optional[bytes]:
            return Path(path).expanduser().read_bytes() if path else None
        return load(self.ca_file), load(self.key_file), load(self.cert_file)


class Transport(Protocol):
    """What a transport carries: the operations of the table (`core/operations.py`) by name, on
    domain types; errors raised as the memos exception of their status."""

    address: str

    def close(self) -> None: ...

    def call(self, operation: str, *args: Any) -> Any:
        """A unary operation's result."""
        ...

    def stream(self, operation: str, *args: Any) -> Iterator[Any]:
        """A streaming operation's events (Generate)."""
        ...


def _acknowledged(future: Future, on_batch: Optional[Callable[[int], None]]) -> AddResult:
    result = future.result()
    if on_batch is not None:
        on_batch(len(result.ids))
    return result


def parse_address(address: str) -> tuple[str, str, Optional[str]]:
    """(scheme, target, application or None) of a client address; see the module doc."""
    if "://" not in address:
        address = f"grpc://{address}"
    parts = urlsplit(address)
    apps = parse_qs(parts.query).get("app")
    app = apps[-1] if apps else None
    if parts.scheme in ("grpc", "grpcs"):
        if not parts.hostname or not parts.port:
            raise InvalidArgument(f"gRPC address {address!r} needs host:port", "address")
        return parts.scheme, parts.netloc, app
    if parts.scheme == "ray":
        return "ray", parts.netloc, app
    if parts.scheme in ("http", "https"):
        if not parts.hostname:
            raise InvalidArgument(f"HTTP address {address!r} needs a host", "address")
        return parts.scheme, f"{parts.scheme}://{parts.netloc}", app
    raise InvalidArgument(f"address scheme {parts.scheme!r} is unknown (grpc://, grpcs://, "
                          "ray://, http://, https://)", "address")


def make_transport(address: str, timeout_s: float, metadata: Sequence[tuple[str, str]],
                   application: str, tls: Optional[TLSOptions] = None) -> Transport:
    scheme, target, app = parse_address(address)
    if scheme in ("grpc", "grpcs"):
        from memos_cluster.client.grpc_transport import GrpcTransport

        if scheme == "grpc" and tls is not None:
            raise InvalidArgument("TLS options need a grpcs:// address", "address")
        tls = tls or (TLSOptions() if scheme == "grpcs" else None)
        return GrpcTransport(target, timeout_s, metadata, app or application,
                             tls.read() if tls else None, tls.server_name if tls else "")
    if scheme in ("http", "https"):
        from memos_cluster.client.http_transport import HttpTransport

        return HttpTransport(target, timeout_s, metadata)
    from memos_cluster.client.ray_transport import RayTransport  # imports ray: ray:// only

    return RayTransport(target or None, app or application, timeout_s, metadata)


class MemosClient:
    """A connection to memos-cluster, e.g. `MemosClient("127.0.0.1:9000")` or
    `MemosClient.connect("ray://")`. `api_key` (default: $MEMOS_API_KEY) authenticates every
    call; `metadata` is sent with every call too; `timeout_s` bounds each call; `application` is
    the Serve application name (`gateway.app_name`); `tls` is for grpcs:// addresses.
    Constructing one does no network I/O: transports connect on the first call."""

    def __init__(self, address: str, timeout_s: float = 60.0,
                 metadata: Optional[Sequence[tuple[str, str]]] = None,
                 application: str = "memos", api_key: Optional[str] = None,
                 tls: Optional[TLSOptions] = None):
        api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV, "")
        headers = tuple(metadata or ())
        if api_key:
            headers += ((AUTH_HEADER, f"Bearer {api_key}"),)
        self._transport = make_transport(address, timeout_s, headers, application, tls)
        self.address = self._transport.address

    @classmethod
    def connect(cls, address: str, **options: Any) -> "MemosClient":
        return cls(address, **options)

    def _call(self, operation: str, *args: Any) -> Any:
        """Every method's one path: the operation of that name (core/operations.py)."""
        return self._transport.call(operation, *args)

    def _stream(self, operation: str, *args: Any) -> Iterator[Any]:
        return self._transport.stream(operation, *args)

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> "MemosClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- cubes -----------------------------------------------------------------------------
    def create_cube(self, cube_id: str, description: str = "",
                    metadata: Optional[dict[str, Any]] = None,
                    default_ttl_ms: int = 0) -> CubeSpec:
        """`default_ttl_ms`: a memory added without an expiry expires this long after (0:
        never)."""
        return self._call("create_cube", CubeSpec(cube_id, description, dict(metadata or {}),
                                                  default_ttl_ms=default_ttl_ms))

    def delete_cube(self, cube_id: str) -> int:
        """Purge a cube and all its memories; returns how many memories it held."""
        return self._call("delete_cube", cube_id)

    def list_cubes(self) -> list[CubeSpec]:
        return self._call("list_cubes")

    def get_cube(self, cube_id: str) -> CubeStats:
        return self._call("get_cube", cube_id)

    # ---- memories --------------------------------------------------------------------------
    def add(self, cube_id: str, items: Iterable[NewMemory | str]) -> AddResult:
        """Add a batch; plain strings are shorthand for NewMemory(text=...)."""
        return self._call("add", cube_id, [NewMemory(text=item) if isinstance(item, str)
                                           else item for item in items])

    def add_many(self, cube_id: str, items: Sequence[NewMemory | str], batch_size: int = 128,
                 in_flight: int = 2,
                 on_batch: Optional[Callable[[int], None]] = None) -> AddResult:
        """Add any number of memories as batches of `batch_size`, `in_flight` AddMemories at a
        time: the shard embeds one batch while it writes another, and the gateway's and the
        network's time overlaps with both (LoCoMo turns through the gateway, 2 cores: 2 in
        flight 1.2x one at a time). The ids come back in the items' order; `on_batch(n)` is
        told each batch acknowledged (a progress bar). On an error, batches already sent may
        be stored: give ids, and a retry stores nothing twice."""
        if batch_size < 1 or in_flight < 1:
            raise InvalidArgument("batch_size and in_flight must be at least 1", "batch_size")
        chunks = [list(items[i:i + batch_size]) for i in range(0, len(items), batch_size)]
        results: list[AddResult] = []
        with ThreadPoolExecutor(in_flight, thread_name_prefix="add") as pool:
            pending: deque = deque()
            for chunk in chunks:
                pending.append(pool.submit(self.add, cube_id, chunk))
                if len(pending) >= in_flight:
                    results.append(_acknowledged(pending.popleft(), on_batch))
            while pending:
                results.append(_acknowledged(pending.popleft(), on_batch))
        return AddResult(tuple(i for r in results for i in r.ids),
                         sum(r.num_inserted for r in results),
                         sum(r.num_unchanged for r in results))

    def search(self, cube_ids: str | Sequence[str], query: str, top_k: int = 0,
               mode: Optional[SearchMode] = None,
               filter: Optional[SearchFilter] = None,
               reference_time_ms: Optional[int] = None,
               explain: bool = False) -> list[SearchHit]:
        """top_k 0 and mode None take the server's defaults; the query's relative dates
        ("last week") are relative to `reference_time_ms` (epoch ms; None: now); `explain`:
        each hit's `explain` holds how it was scored (ScoreParts)."""
        cubes = (cube_ids,) if isinstance(cube_ids, str) else tuple(cube_ids)
        return self._call("search", SearchQuery(
            cube_ids=cubes, query=query, top_k=top_k, mode=mode,
            filter=filter if filter is not None else SearchFilter(),
            reference_time_ms=reference_time_ms, explain=explain))

    def get(self, cube_id: str, ids: Sequence[str], states: Sequence[str] = ()) -> GetResult:
        """Active memories; `states` names others (superseded, archived, expired)."""
        return self._call("get", cube_id, list(ids), tuple(states))

    def feedback(self, cube_id: str, memory_id: str, kind: str,
                 text: str = "") -> FeedbackResult:
        """Judge a memory: "wrong" archives it, "outdated" supersedes it (by `text`, added as
        a new memory, when given), "useful" makes it hotter for the scheduler."""
        return self._call("feedback", Feedback(cube_id, memory_id, kind, text))

    def list_memories(self, cube_id: str, text_contains: str = "",
                      filter: Optional[SearchFilter] = None, page_size: int = 0,
                      offset: int = 0) -> MemoryPage:
        """One page of the cube's memories, newest update first; pass the page's
        `next_offset` back as `offset` for the next one (None: the last page)."""
        return self._call("list_memories", ListQuery(
            cube_id=cube_id, filter=filter if filter is not None else SearchFilter(),
            text_contains=text_contains, page_size=page_size, offset=offset))

    # ---- the entity graph ------------------------------------------------------------------
    def list_entities(self, cube_id: str, name_contains: str = "", label: str = "",
                      page_size: int = 0, offset: int = 0) -> EntityPage:
        """One page of the cube's entities, most mentioned first; paged like list_memories."""
        return self._call("list_entities", EntityQuery(cube_id, name_contains, label, page_size,
                                                       offset))

    def get_entity(self, cube_id: str, entity_id: str) -> EntityDetail:
        """An entity by id, name or alias (any case): its memories, relations, neighbours."""
        return self._call("get_entity", cube_id, entity_id)

    def update(self, cube_id: str, memory_id: str, text: str,
               metadata: Optional[dict[str, Any]] = None, memory_type: str = "",
               event_time_ms: Optional[int] = None,
               expected_version: int = 0,
               expires_at_ms: Optional[int] = None) -> MemoryItem:
        """A new version of a memory; metadata None keeps the old metadata, memory_type ""
        keeps the old type, expected_version 0 skips the optimistic-concurrency check,
        expires_at_ms None keeps the expiry."""
        return self._call("update", MemoryUpdate(
            cube_id=cube_id, id=memory_id, text=text, metadata=metadata,
            memory_type=memory_type or None, event_time_ms=event_time_ms,
            expected_version=expected_version or None, expires_at_ms=expires_at_ms))

    def history(self, cube_id: str, memory_id: str) -> list[MemoryItem]:
        """Every version, oldest first."""
        return self._call("history", cube_id, memory_id)

    def delete(self, cube_id: str, ids: Sequence[str]) -> DeleteResult:
        return self._call("delete", cube_id, list(ids))

    def gateway_stats(self) -> GatewayStats:
        """The answering gateway replica's recent requests (admins only)."""
        return self._call("gateway_stats")

    def health(self) -> list[ShardHealth]:
        return self._call("health")

    # ---- activation memory -----------------------------------------------------------------
    def activate(self, cube_id: str, memory_ids: Sequence[str],
                 replace: bool = False) -> BlockStats:
        """Promote memories into the cube's activation memory (a KV cache of their block):
        appended in order, or replacing the block. Returns what the prefill cost and reused."""
        return self._call("activate", cube_id, list(memory_ids), replace)

    def generate(self, cube_ids: str | Sequence[str], query: str, max_new_tokens: int = 0,
                 temperature: float = 0.0, top_p: float = 0.0, seed: int = 0,
                 use_activation_memory: bool = True, use_retrieved_memories: bool = False,
                 retrieval_top_k: int = 0, use_parametric_memory: bool = False,
                 memory_mode: str = "") -> Iterator[TokenEvent | GenerateStats]:
        """Stream TokenEvents, then one GenerateStats (time to first token, prefill saved,
        caches and adapters used, each prompt memory's tier). 0 takes the server's defaults;
        temperature 0 is greedy. memory_mode "auto" lets the server choose the tiers (the
        use_* flags are then ignored); "" or "explicit" follows the flags."""
        cubes = (cube_ids,) if isinstance(cube_ids, str) else tuple(cube_ids)
        return self._stream("generate", GenerateCall(
            cubes, query, SamplingParams(max_new_tokens, temperature, top_p, seed),
            use_activation_memory, use_retrieved_memories, retrieval_top_k,
            use_parametric_memory, memory_mode))

    def chat(self, cube_ids: str | Sequence[str],
             messages: Sequence[ChatMessage | tuple[str, str] | dict],
             max_new_tokens: int = 0, temperature: float = 0.0, top_p: float = 0.0,
             seed: int = 0, retrieval_top_k: int = 0,
             remember: Optional[bool] = None) -> Iterator[TokenEvent | ChatStats]:
        """Answer the conversation's last (user) message from the cubes' memories: stream
        TokenEvents, then one ChatStats (Generate's stats, with the prompt tokens reused from
        the cached conversation; the answer; the ids the turn was remembered as). Messages are
        ChatMessages, (role, content) pairs or OpenAI-style dicts. `remember` None takes the
        server's default (adds the turn to the first cube)."""
        cubes = (cube_ids,) if isinstance(cube_ids, str) else tuple(cube_ids)
        return self._stream("chat", ChatCall(
            cubes, tuple(_message(m) for m in messages),
            SamplingParams(max_new_tokens, temperature, top_p, seed), retrieval_top_k,
            remember))

    # ---- parametric memory -----------------------------------------------------------------
    def train_adapter(self, cube_id: str, memory_ids: Sequence[str], rank: int = 0,
                      steps: int = 0, learning_rate: float = 0.0,
                      questions: Sequence[str] = ()) -> TrainingJob:
        """Start training a new adapter version on these memories, or (questions, with no
        memory ids) a question adapter answering them without retrieval; returns the queued
        job at once (poll `training_job`, or `wait_for_training`). 0: configured settings."""
        return self._call("train", cube_id, list(memory_ids), rank, steps, learning_rate,
                          list(questions))

    def training_job(self, job_id: str) -> TrainingJob:
        return self._call("training_job", job_id)

    def cancel_training(self, job_id: str) -> TrainingJob:
        return self._call("cancel_training", job_id)

    def wait_for_training(self, job_id: str, timeout_s: float = 600.0,
                          poll_s: float = 0.5) -> TrainingJob:
        """Poll until the job has finished (any outcome) or raise DeadlineExceeded."""
        deadline = time.monotonic() + timeout_s
        while (job := self.training_job(job_id)).status in ("queued", "running"):
            if time.monotonic() > deadline:
                raise DeadlineExceeded(f"training job {job_id} still {job.status} after "
                                       f"{timeout_s:.0f} s")
            time.sleep(poll_s)
        return job

    def adapters(self, cube_id: str) -> AdapterListing:
        """Every adapter version of the cube with its lineage and metrics, and the current."""
        return self._call("adapters", cube_id)

    def delete_adapter(self, cube_id: str, version: int) -> None:
        self._call("delete_adapter", cube_id, version)

    # ---- the scheduler ---------------------------------------------------------------------
    def tier_status(self, cube_id: str) -> TierStatus:
        """Each tracked memory's tiers and access frequency, and the cube's recent migrations."""
        return self._call("tier_status", cube_id)

    def scheduler(self, action: str = "status") -> SchedulerStatus:
        """status | pause | resume | run (one cycle now, returning what it did)."""
        return self._call("scheduler", action)

    # ---- the shard layout ------------------------------------------------------------------
    def shards(self) -> ShardsStatus:
        """Each shard's node, cubes and items, and the progress of the last rebalance."""
        return self._call("shards")

    def reshard(self, shard_ids: Sequence[str]) -> ShardsStatus:
        """Make shard_ids the ring's shards; cubes whose owner changes move in the background
        (watch `shards()`). Reads and writes go on meanwhile."""
        return self._call("reshard", list(shard_ids))

    # ---- tenancy: users, keys, grants --------------------------------------------------------
    def whoami(self) -> Principal:
        """The user and key this client calls as."""
        return self._call("whoami")

    def create_user(self, user_id: str, role: str = "user") -> User:
        """Admins only. role: "admin" or "user"; an agent is a user with its own keys."""
        return self._call("create_user", user_id, role)

    def list_users(self) -> list[User]:
        return self._call("list_users")

    def delete_user(self, user_id: str) -> None:
        """Revokes the user's keys and grants; cubes they owned become admin-only."""
        self._call("delete_user", user_id)

    def create_key(self, user_id: str = "", name: str = "",
                   expires_in_s: Optional[float] = None,
                   rate_limit_rps: float = 0.0) -> tuple[KeyInfo, str]:
        """A new API key for `user_id` ("" = yourself; others' keys need the admin role):
        (its record, the key string). The string is shown this once and never stored.
        rate_limit_rps (admins only): this key's limit; 0 takes auth.rate_limit_rps."""
        return self._call("create_key", user_id, name, expires_in_s, rate_limit_rps)

    def list_keys(self, user_id: str = "") -> list[KeyInfo]:
        return self._call("list_keys", user_id)

    def revoke_key(self, key_id: str) -> KeyInfo:
        return self._call("revoke_key", key_id)

    def share_cube(self, cube_id: str, user_id: str, permission: str = "read") -> CubeAccess:
        """Grant read, write or admin on a cube (needs admin on it)."""
        return self._call("share_cube", cube_id, user_id, permission)

    def revoke_cube(self, cube_id: str, user_id: str) -> CubeAccess:
        return self._call("revoke_cube", cube_id, user_id)

    def cube_access(self, cube_id: str) -> CubeAccess:
        """The cube's owner and grants (needs admin on it)."""
        return self._call("cube_access", cube_id)

    def wait_ready(self, timeout_s: float = 120.0, poll_s: float = 0.5) -> None:
        """Block until the gateway answers Health with every shard ok, or raise Unavailable.
        Who calls it: the CLI and tests, right after starting a cluster."""
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                shards = self.health()
                if shards and all(s.is_ok for s in shards):
                    return
                last = "; ".join(f"{s.shard_id}: {s.detail}" for s in shards if not s.is_ok)
            except MemosError as exc:
                last = exc.message
            time.sleep(poll_s)
        raise Unavailable(f"gateway {self.address} not ready after {timeout_s:.0f} s: {last}")

    def ping(self) -> None:
        """A no-op round trip through the gateway (the overhead baseline)."""
        self._call("ping")


def _message(message: ChatMessage | tuple[str, str] | dict) -> ChatMessage:
    if isinstance(message, ChatMessage):
        return message
    if isinstance(message, dict):
        return ChatMessage(message.get("role", ""), message.get("content", ""),
                           message.get("name", "") or "")
    role, content = message
    return ChatMessage(role, content)
