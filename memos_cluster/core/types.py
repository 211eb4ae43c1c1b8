"""Domain types shared by every layer. Plain dataclasses: no protobuf, no Ray, no Milvus."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Optional

from memos_cluster.core.lifecycle import ACTIVE, Supersession
from memos_cluster.core.structure import EMPTY_STRUCTURE, MemoryStructure

JsonDict = dict[str, Any]

PLAINTEXT_TIER = "plaintext"
DEFAULT_MEMORY_TYPE = "fact"


class SearchMode(str, enum.Enum):
    """How the plaintext tier ranks candidates."""

    HYBRID = "hybrid"  # dense + BM25, fused with reciprocal rank fusion
    DENSE = "dense"  # MiniLM cosine similarity only
    BM25 = "bm25"  # sparse lexical match only


@dataclass(frozen=True)
class MemoryItem:
    """One version of one memory, as stored in the plaintext tier."""

    id: str  # unique within its cube
    cube_id: str
    text: str
    memory_type: str = DEFAULT_MEMORY_TYPE
    metadata: JsonDict = field(default_factory=dict)
    created_at_ms: int = 0  # first version's creation, Unix epoch milliseconds
    updated_at_ms: int = 0  # this version's creation, Unix epoch milliseconds
    event_time_ms: Optional[int] = None  # when the remembered thing happened, epoch ms
    source: str = ""  # where it came from: a file, an agent, a conversation
    version: int = 1  # 1 when created, +1 on each update
    # Text that helps find this memory but is not part of it (e.g. the preceding turn of a
    # conversation): indexed for BM25 and embedded with `text`, never returned as the text.
    context: str = ""
    # What the memory reader found in `text` (resolved dates, entities, relations); made by
    # the shard on every write, empty when the reader is off or found nothing.
    structure: MemoryStructure = EMPTY_STRUCTURE
    # Lifecycle (core/lifecycle.py, docs/lifecycle.md): the stored state, when the fact held in
    # the world ([valid_from, valid_to), epoch ms; None: unbounded), when it stops being served.
    state: str = ACTIVE
    valid_from_ms: Optional[int] = None
    valid_to_ms: Optional[int] = None  # set when superseded: the successor's valid_from
    expires_at_ms: Optional[int] = None  # None: never
    superseded_by: str = ""  # the memory that superseded this one
    supersedes: tuple[str, ...] = ()  # the memories this one superseded
    state_reason: str = ""  # why the state last changed ("rule: ...", "feedback wrong: ...")


@dataclass(frozen=True)
class NewMemory:
    """What a caller supplies to add a memory. `id` None lets the shard generate a UUID."""

    text: str
    id: Optional[str] = None
    memory_type: str = DEFAULT_MEMORY_TYPE
    metadata: JsonDict = field(default_factory=dict)
    event_time_ms: Optional[int] = None
    source: str = ""
    context: str = ""  # see MemoryItem.context
    expires_at_ms: Optional[int] = None  # None: the cube's default_ttl, if any, else never
    valid_from_ms: Optional[int] = None  # None: from the reader's dates or the event time


@dataclass(frozen=True)
class MemoryUpdate:
    """A change to one memory; fields left None keep their previous value."""

    cube_id: str
    id: str
    text: str
    metadata: Optional[JsonDict] = None  # None keeps, {} clears
    memory_type: Optional[str] = None
    event_time_ms: Optional[int] = None
    expected_version: Optional[int] = None  # optimistic concurrency check when set
    expires_at_ms: Optional[int] = None  # None keeps the memory's expiry


@dataclass(frozen=True)
class ScoreParts:
    """How a search scored one hit (Search with `explain`). In hybrid mode the hit's score is
    fused + neighbour + date + when + entity; in dense or BM25 mode it is that retriever's
    score. Who fills it: PlaintextTier (fusion.explain_hybrid); who reads it: the console's
    search view, `memos-cluster search --explain`, anyone tuning the knobs."""

    dense_rank: int = 0  # 1-based rank among the dense candidates; 0: not one of them
    dense_score: float = 0.0  # cosine similarity to the query; 0 when not a candidate
    bm25_rank: int = 0  # 1-based rank among the BM25 candidates; 0: not one of them
    bm25_score: float = 0.0  # BM25 score; 0 when not a candidate
    fused: float = 0.0  # the two lists' weighted fusion (search.fusion)
    neighbour: float = 0.0  # search.neighbour_share x its better neighbour's fused score
    date: float = 0.0  # search.date_boost when a time the query names holds the memory
    when: float = 0.0  # search.when_boost when the query asks when and the memory has a date
    entity: float = 0.0  # search.entity_boost x its share of the entities the query names


@dataclass(frozen=True)
class SearchHit:
    item: MemoryItem
    score: float  # higher is better; comparable only within one response
    tier: str = PLAINTEXT_TIER
    adapter_version: int = 0  # the cube's current adapter trained on this version; 0: none
    explain: Optional[ScoreParts] = None  # set when the query asked to explain


@dataclass(frozen=True)
class TimeRange:
    start_ms: Optional[int] = None  # inclusive, epoch ms
    end_ms: Optional[int] = None  # exclusive, epoch ms


@dataclass(frozen=True)
class SearchFilter:
    """A structured filter; it becomes a parameterised Milvus expression, never pasted text."""

    memory_types: tuple[str, ...] = ()  # any of
    sources: tuple[str, ...] = ()  # any of
    metadata_equals: tuple[tuple[str, Any], ...] = ()  # (key, scalar value) pairs, all must hold
    event_time: TimeRange = TimeRange()
    created_at: TimeRange = TimeRange()
    # Lifecycle: the states to read (core/lifecycle.READ_STATES; () reads active ones), and
    # `as_of_ms`: only memories valid then ([valid_from, valid_to)), superseded ones included.
    states: tuple[str, ...] = ()
    as_of_ms: Optional[int] = None


@dataclass(frozen=True)
class SearchQuery:
    cube_ids: tuple[str, ...]
    query: str
    top_k: int = 0  # 0: the server's default (search.default_top_k)
    mode: Optional[SearchMode] = None  # None: the server's default (search.default_mode)
    filter: SearchFilter = SearchFilter()
    # What the query's relative dates ("last week") are relative to, epoch ms; None: now.
    reference_time_ms: Optional[int] = None
    explain: bool = False  # each hit carries its ScoreParts


@dataclass(frozen=True)
class ListQuery:
    """One page of a cube's current memories, newest update first (ListMemories: the
    console's memory table)."""

    cube_id: str
    filter: SearchFilter = SearchFilter()  # the same structured filter as a search
    text_contains: str = ""  # a case-insensitive substring of the text; "" matches every text
    page_size: int = 0  # memories per page; 0: the server's default (50)
    offset: int = 0  # matching memories skipped, in the listing's order (the page token)


@dataclass(frozen=True)
class MemoryPage:
    items: tuple[MemoryItem, ...]  # newest update first, ties by id
    next_offset: Optional[int]  # the next page's offset; None on the last page
    total: int  # memories matching the filter and text, over every page


@dataclass(frozen=True)
class CubeSpec:
    """A MemCube's identity and caller-owned description."""

    cube_id: str
    description: str = ""
    metadata: JsonDict = field(default_factory=dict)
    created_at_ms: int = 0  # epoch ms, set by the shard on creation
    default_ttl_ms: int = 0  # a new memory without expires_at expires this long after; 0: never


@dataclass(frozen=True)
class CubeStats:
    cube: CubeSpec
    num_memories: int  # current memories
    num_history_versions: int  # archived previous versions
    shard_id: str


@dataclass(frozen=True)
class AddResult:
    ids: tuple[str, ...]  # in request order
    num_inserted: int  # rows newly written
    num_unchanged: int  # caller-supplied ids already stored with identical content
    superseded: tuple[Supersession, ...] = ()  # older memories the new ones contradicted


@dataclass(frozen=True)
class FeedbackResult:
    """What a Feedback did (core/lifecycle.py Feedback)."""

    memory: MemoryItem  # the judged memory after the feedback
    successor: Optional[MemoryItem] = None  # outdated with text: the memory added in its place
    superseded: tuple[Supersession, ...] = ()  # what the successor's own facts superseded


@dataclass(frozen=True)
class GetResult:
    items: tuple[MemoryItem, ...]  # in request order, missing omitted
    missing_ids: tuple[str, ...]


@dataclass(frozen=True)
class DeleteResult:
    num_deleted: int
    missing_ids: tuple[str, ...]


@dataclass(frozen=True)
class ShardHealth:
    shard_id: str
    is_ok: bool
    detail: str = ""


@dataclass(frozen=True)
class ShardInfo:
    """One shard in the `memos-cluster shards` view."""
    shard_id: str
    node_id: str  # Ray node it runs on ("" when it did not answer)
    in_ring: bool  # False: being removed (still holds cubes pinned to it)
    cube_items: dict[str, int] = field(default_factory=dict)  # cube -> current memories
    is_ok: bool = True
    detail: str = ""


@dataclass(frozen=True)
class Rebalance:
    """Progress of the last rebalance (resharding) the directory ran."""
    state: str = "idle"  # idle, running, done, failed
    moves_total: int = 0
    moves_done: int = 0
    current: str = ""  # cube being copied now
    error: str = ""
    started_s: float = 0.0  # wall clock (s since the epoch)
    finished_s: float = 0.0


@dataclass(frozen=True)
class ShardsStatus:
    epoch: int  # layout epoch
    shards: tuple[ShardInfo, ...]
    pending_moves: int  # cubes still pinned away from their ring owner
    rebalance: Rebalance = field(default_factory=Rebalance)
