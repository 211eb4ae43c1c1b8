"""Request validation against the configured limits. Pure functions; each raises InvalidArgument
naming the offending field. The gateway runs them (through the operation table,
`core/operations.py`) on every request before anything is authorized, audited, routed or
stored, so a shard only ever sees well-formed input. The arguments may come from a Ray-transport
caller who built them by hand, so types are checked too."""
from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from typing import Any, Iterable, Optional, Sequence, TypeVar

from memos_cluster.core.config import ActivationConfig, LimitsConfig, SearchConfig
from memos_cluster.core import lifecycle_checks as lc
from memos_cluster.core.errors import InvalidArgument, ResourceExhausted
from memos_cluster.core.structure import EntityQuery
from memos_cluster.core.tier_types import MEMORY_MODES, GenerateCall, SamplingParams
from memos_cluster.core.types import (
    ListQuery, MemoryUpdate, NewMemory, SearchFilter, SearchQuery, TimeRange)

# Ids are opaque to Milvus but must be safe as parts of a primary key: no separators or spaces.
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-@]*$")
METADATA_KEY_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MEMORY_TYPE_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
# C0 control characters other than tab, newline and carriage return, plus DEL.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Every C0 and C1 control character, tab and line breaks included (one-line references).
_ANY_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_SOURCE_CHARS = 256
# Event times (epoch ms) strictly within +-2**62 ms, about 146 million years either way: storage
# keeps -2**62 as "no event time" where the engine has no NULL.
MAX_EVENT_TIME_MS = 2 ** 62
MAX_DESCRIPTION_CHARS = 4096
MAX_ENTITY_LABEL_CHARS = 64
MAX_ENTITY_REF_CHARS = 256  # an entity's id, or a name or alias that GetEntity looks up
MAX_KEY_NAME_CHARS = 128
# Longer lifetimes are refused (use no expiry): the fuzz test's huge ones broke the listing of
# every key of that user, as their times left int64 milliseconds.
MAX_KEY_LIFETIME_S = 10 * 365 * 86400
MAX_RATE_LIMIT_RPS = 1e6
MAX_LORA_RANK = 256
MAX_TRAINING_STEPS = 100_000
T = TypeVar("T")


def expect(value: Any, cls: type[T], field: str) -> T:
    """`value` if it is a `cls`: the domain argument a Ray-transport caller must send."""
    if not isinstance(value, cls):
        raise InvalidArgument(f"{field} must be a {cls.__name__}, not {type(value).__name__}",
                              field)
    return value


def expect_list(value: Any, field: str) -> list:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise InvalidArgument(f"{field} must be a list", field)
    return list(value)


def check_request_bytes(size: int, limits: LimitsConfig) -> None:
    """A whole request's encoded size (bytes) against `limits.max_request_bytes`. Who calls it:
    the gateway's gRPC methods (protobuf size) and HTTP routes (body size), before decoding
    anything further."""
    if size > limits.max_request_bytes:
        raise ResourceExhausted(f"the request is {size} bytes, more than the limit of "
                                f"{limits.max_request_bytes}")


def check_choice(value: Any, field: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise InvalidArgument(f"{field} must be one of {tuple(choices)}", field)
    return value


def check_positive_int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgument(f"{field} must be a positive integer", field)
    return value


def check_id(value: str, field: str, limits: LimitsConfig) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(f"{field} must be a string", field)
    if not value:
        raise InvalidArgument(f"{field} must not be empty", field)
    if len(value) > limits.max_id_chars:
        raise InvalidArgument(f"{field} is longer than {limits.max_id_chars} characters", field)
    if not ID_PATTERN.match(value):
        raise InvalidArgument(
            f"{field} {value[:40]!r} is malformed: use letters, digits and _ . - @, "
            "starting with a letter or digit", field)
    return value


def check_ids(values: Iterable[str], field: str, limits: LimitsConfig) -> tuple[str, ...]:
    ids = tuple(expect_list(values, field))
    if not ids:
        raise InvalidArgument(f"{field} must not be empty", field)
    if len(ids) > limits.max_ids_per_request:
        raise InvalidArgument(
            f"{field} has {len(ids)} ids, more than the limit of {limits.max_ids_per_request}",
            field)
    for i, value in enumerate(ids):
        check_id(value, f"{field}[{i}]", limits)
    return ids


def check_text(value: str, field: str, max_chars: int) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(f"{field} must be a string", field)
    if not value or not value.strip():
        raise InvalidArgument(f"{field} must not be empty", field)
    if len(value) > max_chars:
        raise InvalidArgument(f"{field} is longer than {max_chars} characters", field)
    if _CONTROL.search(value):
        raise InvalidArgument(f"{field} contains control characters", field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates survive str but not storage
        raise InvalidArgument(f"{field} is not valid UTF-8", field) from exc
    return value


def check_json_depth(value: Any, field: str, limit: int) -> None:
    """InvalidArgument naming `field` when parsed JSON nests objects/arrays deeper than `limit`
    levels. Iterative, so a body just under the parser's own recursion limit cannot overflow
    the stack here. Who calls it: the HTTP routes, on every JSON body, and check_metadata."""
    if not isinstance(value, (dict, list)):
        return
    stack = [(value, 1)]  # containers only, with their level
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise InvalidArgument(f"{field} nests deeper than {limit} levels", field)
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, (dict, list)))


def check_metadata(value: dict[str, Any], field: str, limits: LimitsConfig) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidArgument(f"{field} must be an object", field)
    for key in value:
        if not METADATA_KEY_PATTERN.match(key):
            raise InvalidArgument(
                f"{field} key {key[:40]!r} is malformed: use letters, digits and _", field)
    check_json_depth(value, field, limits.max_metadata_depth)
    try:
        encoded = json.dumps(value, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"{field} is not plain JSON: {exc}", field) from exc
    if len(encoded.encode("utf-8")) > limits.max_metadata_bytes:
        raise InvalidArgument(
            f"{field} is larger than {limits.max_metadata_bytes} bytes as JSON", field)
    return value


def check_memory_type(value: str, field: str) -> str:
    if not MEMORY_TYPE_PATTERN.match(value):
        raise InvalidArgument(f"{field} {value[:40]!r} is malformed", field)
    return value


def check_event_time(value: Optional[int], field: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or abs(value) >= MAX_EVENT_TIME_MS):
        raise InvalidArgument(f"{field} must be an integer within +-2**62 ms", field)


def check_source(value: str, field: str) -> str:
    if len(value) > MAX_SOURCE_CHARS or _CONTROL.search(value):
        raise InvalidArgument(f"{field} is too long or has control characters", field)
    return value


def check_new_memories(items: list[NewMemory], limits: LimitsConfig) -> None:
    if not items:
        raise InvalidArgument("memories must not be empty", "memories")
    if len(items) > limits.max_batch_items:
        raise InvalidArgument(
            f"memories has {len(items)} items, more than the limit of {limits.max_batch_items}",
            "memories")
    seen: set[str] = set()
    for i, item in enumerate(items):
        prefix = f"memories[{i}]"
        check_text(item.text, f"{prefix}.text", limits.max_text_chars)
        if item.context:
            check_text(item.context, f"{prefix}.context", limits.max_context_chars)
        if item.id is not None:
            check_id(item.id, f"{prefix}.id", limits)
            if item.id in seen:
                raise InvalidArgument(f"{prefix}.id {item.id!r} appears twice", f"{prefix}.id")
            seen.add(item.id)
        check_memory_type(item.memory_type, f"{prefix}.memory_type")
        check_event_time(item.event_time_ms, f"{prefix}.event_time_ms")
        lc.check_expiry(item.expires_at_ms, f"{prefix}.expires_at_ms")
        check_event_time(item.valid_from_ms, f"{prefix}.valid_from_ms")
        check_metadata(item.metadata, f"{prefix}.metadata", limits)
        check_source(item.source, f"{prefix}.source")


def check_update(update: MemoryUpdate, limits: LimitsConfig) -> None:
    check_id(update.cube_id, "cube_id", limits)
    check_id(update.id, "id", limits)
    check_text(update.text, "text", limits.max_text_chars)
    if update.metadata is not None:
        check_metadata(update.metadata, "metadata", limits)
    if update.memory_type is not None:
        check_memory_type(update.memory_type, "memory_type")
    check_event_time(update.event_time_ms, "event_time_ms")
    if update.expected_version is not None and update.expected_version < 1:
        raise InvalidArgument("expected_version must be >= 1", "expected_version")
    lc.check_expiry(update.expires_at_ms, "expires_at_ms")


def _check_range(value: TimeRange, field: str) -> None:
    if (value.start_ms is not None and value.end_ms is not None
            and value.start_ms >= value.end_ms):
        raise InvalidArgument(f"{field}: start must be before end", field)


def _no_line_breaks(value: str, field: str) -> None:
    """Filter values become Milvus string literals, which cannot hold a line break."""
    if "\n" in value or "\r" in value:
        raise InvalidArgument(f"{field}: filter values cannot contain line breaks", field)


def check_filter(value: SearchFilter, limits: LimitsConfig) -> None:
    for i, memory_type in enumerate(value.memory_types):
        check_memory_type(memory_type, f"filter.memory_types[{i}]")
    for i, source in enumerate(value.sources):
        check_source(source, f"filter.sources[{i}]")
        _no_line_breaks(source, f"filter.sources[{i}]")
    for key, scalar in value.metadata_equals:
        field = f"filter.metadata_equals[{key[:40]!r}]"
        if not METADATA_KEY_PATTERN.match(key):
            raise InvalidArgument(f"{field}: key is malformed", field)
        if isinstance(scalar, float) and not math.isfinite(scalar):
            raise InvalidArgument(f"{field}: value must be finite", field)
        if not isinstance(scalar, (str, int, float, bool)):
            raise InvalidArgument(f"{field}: value must be a string, number or bool", field)
        if isinstance(scalar, str):
            check_text(scalar, field, limits.max_query_chars)
            _no_line_breaks(scalar, field)
    _check_range(value.event_time, "filter.event_time")
    _check_range(value.created_at, "filter.created_at")
    lc.check_states(value.states, "filter.states")
    check_event_time(value.as_of_ms, "filter.as_of_ms")


def check_search(query: SearchQuery, limits: LimitsConfig) -> None:
    if not query.cube_ids:
        raise InvalidArgument("cube_ids must name at least one cube", "cube_ids")
    if len(query.cube_ids) > limits.max_cubes_per_search:
        raise InvalidArgument(
            f"cube_ids names {len(query.cube_ids)} cubes, more than the limit of "
            f"{limits.max_cubes_per_search}", "cube_ids")
    if len(set(query.cube_ids)) != len(query.cube_ids):
        raise InvalidArgument("cube_ids names a cube twice", "cube_ids")
    for i, cube_id in enumerate(query.cube_ids):
        check_id(cube_id, f"cube_ids[{i}]", limits)
    check_text(query.query, "query", limits.max_query_chars)
    if not 1 <= query.top_k <= limits.max_top_k:
        raise InvalidArgument(f"top_k must be between 1 and {limits.max_top_k}", "top_k")
    check_event_time(query.reference_time_ms, "reference_time_ms")
    check_filter(query.filter, limits)


def check_list_query(query: ListQuery, limits: LimitsConfig) -> None:
    """ListMemories' arguments. Who calls it: the operation table and MemoryService."""
    check_id(query.cube_id, "cube_id", limits)
    check_length(query.text_contains, "text_contains", limits.max_query_chars)
    check_page(query.page_size, query.offset, limits)
    check_filter(query.filter, limits)


def check_length(value: str, field: str, max_chars: int) -> None:
    """An optional string (empty allowed) of at most `max_chars` characters."""
    if not isinstance(value, str) or len(value) > max_chars:
        raise InvalidArgument(f"{field} is longer than {max_chars} characters", field)


def check_page(page_size: int, offset: int, limits: LimitsConfig) -> None:
    """A listing's page size (0: the default) and offset (decoded from its page token)."""
    if isinstance(page_size, bool) or not isinstance(page_size, int) \
            or not 0 <= page_size <= limits.max_ids_per_request:
        raise InvalidArgument(f"page_size must be between 0 (the default) and "
                              f"{limits.max_ids_per_request}", "page_size")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidArgument("page_token must be one a previous page returned", "page_token")


def check_entity_query(query: EntityQuery, limits: LimitsConfig) -> None:
    """ListEntities' arguments. Who calls it: the operation table and MemoryService."""
    check_id(query.cube_id, "cube_id", limits)
    check_length(query.name_contains, "name_contains", limits.max_query_chars)
    check_length(query.label, "label", MAX_ENTITY_LABEL_CHARS)
    check_page(query.page_size, query.offset, limits)


def check_entity_ref(cube_id: str, entity_ref: str, limits: LimitsConfig) -> None:
    """GetEntity's arguments: the cube, and an entity's id or one of its names or aliases.
    Who calls it: the operation table and MemoryService."""
    check_id(cube_id, "cube_id", limits)
    check_text(entity_ref, "entity_id", MAX_ENTITY_REF_CHARS)
    if _ANY_CONTROL.search(entity_ref):  # a one-line reference: no tab or line break either
        raise InvalidArgument("entity_id contains control characters", "entity_id")


def check_cube_spec(spec: Any, limits: LimitsConfig) -> None:
    check_id(spec.cube_id, "cube_id", limits)
    if not isinstance(spec.description, str) or len(spec.description) > MAX_DESCRIPTION_CHARS:
        raise InvalidArgument(f"description is longer than {MAX_DESCRIPTION_CHARS} characters",
                              "description")
    check_metadata(spec.metadata, "metadata", limits)
    lc.check_ttl(spec.default_ttl_ms, "default_ttl_ms")


def check_feedback(feedback: Any, limits: LimitsConfig) -> None:
    check_id(feedback.cube_id, "cube_id", limits)
    check_id(feedback.memory_id, "memory_id", limits)
    lc.check_feedback_fields(feedback)
    if feedback.text:
        check_text(feedback.text, "text", limits.max_text_chars)


check_states = lc.check_states


def search_with_defaults(query: SearchQuery, search: SearchConfig) -> SearchQuery:
    """top_k 0 and mode None become the configured defaults (whatever the transport)."""
    from memos_cluster.core.types import SearchMode

    return replace(query, top_k=query.top_k or search.default_top_k,
                   mode=query.mode or SearchMode(search.default_mode))


def sampling_with_defaults(sampling: SamplingParams,
                           activation: ActivationConfig) -> SamplingParams:
    """max_new_tokens 0 and top_p 0 become the configured defaults (Generate and Chat)."""
    return replace(sampling,
                   max_new_tokens=sampling.max_new_tokens or activation.default_max_new_tokens,
                   top_p=sampling.top_p or 1.0)


def generate_with_defaults(call: GenerateCall, activation: ActivationConfig) -> GenerateCall:
    """max_new_tokens 0 and top_p 0 become the configured defaults (whatever the transport)."""
    return replace(call, sampling=sampling_with_defaults(call.sampling, activation))


def check_generate(call: GenerateCall, limits: LimitsConfig,
                   activation: ActivationConfig) -> None:
    """A Generate call after `generate_with_defaults`."""
    if not call.cube_ids:
        raise InvalidArgument("name at least one cube", "cube_ids")
    for i, cube_id in enumerate(call.cube_ids):
        check_id(cube_id, f"cube_ids[{i}]", limits)
    check_text(call.query, "query", limits.max_query_chars)
    sampling = call.sampling
    if not 1 <= sampling.max_new_tokens <= activation.max_new_tokens_limit:
        raise InvalidArgument(f"max_new_tokens must be between 1 and "
                              f"{activation.max_new_tokens_limit}", "max_new_tokens")
    if sampling.temperature < 0 or not 0 < sampling.top_p <= 1:
        raise InvalidArgument("temperature must be >= 0 and top_p in (0, 1]", "temperature")
    if not 0 <= call.retrieval_top_k <= limits.max_top_k:
        raise InvalidArgument(f"retrieval_top_k must be between 0 and {limits.max_top_k}",
                              "retrieval_top_k")
    check_event_time(call.as_of_ms, "as_of_ms")
    if call.memory_mode not in MEMORY_MODES:
        raise InvalidArgument(f"memory_mode must be 'auto' or 'explicit' (or empty: explicit), "
                              f"not {call.memory_mode[:40]!r}", "memory_mode")


def check_lora_settings(rank: int, steps: int, learning_rate: float) -> None:
    """Overrides of the configured LoRA settings: 0 takes the configured value."""
    if rank and not 1 <= rank <= MAX_LORA_RANK:
        raise InvalidArgument(f"rank must be in 1..{MAX_LORA_RANK} (0: configured)", "rank")
    if steps and not 1 <= steps <= MAX_TRAINING_STEPS:
        raise InvalidArgument(f"steps must be in 1..{MAX_TRAINING_STEPS} (0: configured)",
                              "steps")
    if learning_rate and not 0 < learning_rate < 1:
        raise InvalidArgument("learning_rate must be in (0, 1) (0: configured)",
                              "learning_rate")


def check_training(memory_ids: Iterable[str], rank: int, steps: int, learning_rate: float,
                   limits: LimitsConfig, max_memories: int) -> tuple[str, ...]:
    ids = check_ids(memory_ids, "memory_ids", replace(limits, max_ids_per_request=max_memories))
    check_lora_settings(rank, steps, learning_rate)
    return ids


def check_questions(questions: Sequence[str], memory_ids: Sequence[str], limits: LimitsConfig,
                    max_questions: int) -> None:
    """A question adapter's questions (TrainAdapter): 1..max_questions query texts, and no
    memory ids beside them (the memories are what each question retrieves)."""
    if memory_ids:
        raise InvalidArgument("name memory_ids or questions, not both", "questions")
    if not isinstance(questions, (list, tuple)) or not 1 <= len(questions) <= max_questions:
        raise InvalidArgument(f"questions: 1 to {max_questions} of them", "questions")
    for i, question in enumerate(questions):
        check_text(question, f"questions[{i}]", limits.max_query_chars)


def check_key_settings(name: str, expires_in_s: Optional[float], rate_limit_rps: float) -> None:
    """A new API key's name, lifetime (seconds; None: never expires) and own rate limit
    (requests/s; 0: the default). Who calls it: the gateway, and the auth registry itself."""
    if not 0 <= rate_limit_rps <= MAX_RATE_LIMIT_RPS:
        raise InvalidArgument(f"rate_limit_rps must be 0 (the default) up to "
                              f"{MAX_RATE_LIMIT_RPS:g}", "rate_limit_rps")
    if not isinstance(name, str) or len(name) > MAX_KEY_NAME_CHARS or not name.isprintable():
        raise InvalidArgument("name is too long or not printable", "name")
    if expires_in_s is not None and not 0 < expires_in_s <= MAX_KEY_LIFETIME_S:
        raise InvalidArgument(f"expires_in_s must be 1 to {MAX_KEY_LIFETIME_S} s (or none)",
                              "expires_in_s")
