"""Domain types of activation memory, parametric memory and the scheduler: what Generate,
TrainAdapter, ListAdapters, GetTierStatus and ControlScheduler take and return. Plain dataclasses
shared by the tiers, the gateway, the API conversions and the client; no torch, no Ray."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Optional, Sequence

from memos_cluster.core.errors import FailedPrecondition
from memos_cluster.core.types import MemoryItem


# ---- activation memory -----------------------------------------------------------------------
@dataclass(frozen=True)
class BlockMemory:
    """One memory as activation memory sees it: identity, version and text."""

    cube_id: str
    memory_id: str
    version: int
    text: str
    event_time_ms: Optional[int] = None  # when it happened (epoch ms): prompts show the date


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int = 32
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    seed: int = 0


@dataclass(frozen=True)
class BlockStats:
    num_tokens: int  # tokens in the block, BOS included
    prefill_tokens: int  # tokens computed now
    reused_tokens: int  # tokens taken from a cached prefix
    cache_id: str  # the block's cache (prefix composition); "" in segments composition


@dataclass(frozen=True)
class TokenEvent:
    token_id: int
    text: str  # what this token adds to the answer's text (joined, the events spell it)


@dataclass(frozen=True)
class GenerateStats:
    ttft_ms: float  # request start to the first token, prefill included (milliseconds)
    total_ms: float
    prompt_tokens: int
    prefill_tokens: int  # prompt tokens computed for this request
    prefill_tokens_saved: int  # prompt tokens taken from activation memory
    caches_used: tuple[str, ...] = ()
    num_generated: int = 0
    finish_reason: str = "length"  # "length" or "eos"
    generated: tuple[int, ...] = field(default=(), repr=False)
    adapters_used: tuple[str, ...] = ()  # "cube@vN"
    # Retrieval hits served from activation memory (their keys and values reused, not
    # prefilled). In segments composition the engine counts every memory so served; the
    # gateway keeps that count for requests with retrieval.
    retrieved_from_activation: int = 0
    memories: tuple["ServedMemory", ...] = ()  # the prompt's memories, in order, and their tier


@dataclass(frozen=True)
class ServedMemory:
    """One memory of a Generate prompt and the tier that served it: "activation" (its keys and
    values reused from a KV cache) or "plaintext" (computed from its text for this request)."""

    cube_id: str
    memory_id: str
    version: int
    tier: str


MEMORY_MODES = ("", "explicit", "auto")


@dataclass(frozen=True)
class GenerateCall:
    """A Generate request as the gateway receives it (0 / None: configured defaults)."""

    cube_ids: tuple[str, ...]
    query: str
    sampling: SamplingParams
    use_activation_memory: bool = True
    use_retrieved_memories: bool = False
    retrieval_top_k: int = 0
    use_parametric_memory: bool = False  # apply each cube's current adapter
    # "" or "explicit": the use_* flags decide; "auto": the system chooses the tiers (it
    # retrieves, reuses activation memory only where the answer stays a full prefill's, and
    # ignores the flags): ActivationService.generate.
    memory_mode: str = ""
    # Answer from the memories valid at this time (epoch ms; lifecycle's as_of): retrieved
    # memories only, since caches and adapters hold what is true now.
    as_of_ms: Optional[int] = None


# ---- chat ----------------------------------------------------------------------------------
CHAT_ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class ChatMessage:
    """One message of a conversation, as OpenAI's chat API has it."""

    role: str  # system, user or assistant
    content: str
    name: str = ""  # the speaker's name, when the client gives one (remembered turns use it)


@dataclass(frozen=True)
class ChatCall:
    """A Chat request as the gateway receives it (0 / None: configured defaults). The last
    message is the user's; the answer continues the conversation."""

    cube_ids: tuple[str, ...]
    messages: tuple[ChatMessage, ...]
    sampling: SamplingParams
    retrieval_top_k: int = 0
    # Add the new user message and the answer to the first cube as memories (None: the
    # configured `chat.remember`).
    remember: Optional[bool] = None
    stream: bool = True


@dataclass(frozen=True)
class ChatRequest:
    """What the KV actor's engine answers: the messages, and the memories placed before each
    (empty for a message with none), in the layout of tiers/activation/chat_layout.py."""

    messages: tuple[ChatMessage, ...]
    context: tuple[tuple[BlockMemory, ...], ...]
    sampling: SamplingParams = SamplingParams()
    use_cache: bool = True  # False: a full prefill of the same prompt (the exactness baseline)
    adapters: tuple[str, ...] = ()  # none yet: chat answers with the base model


@dataclass(frozen=True)
class ChatStats:
    """The end of a Chat stream: Generate's statistics, the answer's text, and what the
    gateway did with the turn."""

    generate: GenerateStats
    answer: str = ""
    remembered: tuple[str, ...] = ()  # memory ids the turn was stored as (new or found)


def block_memory(item: MemoryItem) -> BlockMemory:
    # Resolved dates beside their phrases: "I went yesterday [7 May 2023]".
    return BlockMemory(item.cube_id, item.id, item.version, item.structure.annotate(item.text),
                       item.event_time_ms)


# ---- parametric memory -----------------------------------------------------------------------
@dataclass(frozen=True)
class TrainingJob:
    job_id: str
    cube_id: str
    status: str  # queued | running | succeeded | failed | cancelled
    step: int = 0
    steps: int = 0
    loss: float = 0.0  # the last step's training loss (nats per token)
    error: str = ""
    version: int = 0  # the adapter version written, when succeeded
    created_at_ms: int = 0
    finished_at_ms: int = 0


@dataclass(frozen=True)
class AdapterRecord:
    """One adapter version and what made it."""

    cube_id: str
    version: int
    base: dict[str, str]  # ModelIdentity.as_metadata() of the base model it was trained on
    memories: tuple[tuple[str, int], ...]  # (memory id, version) of every training text
    spec: dict[str, Any]  # the LoRA and training settings (LoraSpec as a dict)
    metrics: dict[str, float]  # losses before/after, train_s, adapter_bytes, ...
    created_at_ms: int
    stale: bool = False  # a memory it was trained on was deleted: not served; retrain or retire
    files: tuple[str, ...] = field(default=())  # adapter file names, lineage.json excluded
    # Question adapters (tiers/parametric/distill.py): the questions it answers without
    # retrieval (each with its trained rewrites), which memory_mode auto compares a query with;
    # empty for a memory-recall adapter.
    questions: tuple[str, ...] = field(default=())
    # It agreed with the teacher on held-out rewrites less than the version it would replace:
    # kept with its figures, never served.
    rejected: bool = False

    @property
    def name(self) -> str:
        """The adapter's name inside a model (peft adapter_name)."""
        return f"{self.cube_id}@v{self.version}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "AdapterRecord":
        data = json.loads(text)
        data["memories"] = tuple(tuple(m) for m in data["memories"])
        data["files"] = tuple(data.get("files", ()))
        data["questions"] = tuple(data.get("questions", ()))
        return cls(**data)


@dataclass(frozen=True)
class AdapterListing:
    adapters: tuple[AdapterRecord, ...]  # every version, oldest first
    current_version: int  # the one Generate applies; 0: none


def current_of(records: Sequence[AdapterRecord]) -> Optional[AdapterRecord]:
    """The newest version that is neither stale nor rejected (records oldest first): the one
    Generate applies."""
    live = [r for r in records if not (r.stale or r.rejected)]
    return live[-1] if live else None


def check_base(record: AdapterRecord, base: dict[str, str]) -> None:
    """Refuse an adapter trained on another base model."""
    if record.base != base:
        raise FailedPrecondition(f"adapter {record.name} was trained on base model "
                                 f"{record.base}, not on {base}; refusing to load it")


# ---- the scheduler ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Migration:
    time_s: float
    cube_id: str
    memory_id: str  # "" for cube-level actions
    action: str  # promote | demote | consolidate | retire | failed
    detail: str = ""


@dataclass(frozen=True)
class MemoryTier:
    memory_id: str
    version: int
    frequency: float
    tiers: tuple[str, ...]  # "plaintext", plus "activation" and/or "parametric"


@dataclass(frozen=True)
class TierStatus:
    memories: tuple[MemoryTier, ...]
    migrations: tuple[Migration, ...]  # recent, oldest first


@dataclass(frozen=True)
class SchedulerStatus:
    paused: bool
    events: int  # access events received
    dropped: int  # access events dropped on the way, as senders report
    tracked: int  # memories with a frequency
    promoted: int = 0  # in the last cycle
    demoted: int = 0
    consolidations: int = 0
    retired: int = 0
    expired: int = 0  # memories archived or deleted for their expiry in the last cycle
    expired_total: int = 0  # ... since the scheduler started


CONTROL_ACTIONS = ("status", "pause", "resume", "run")
