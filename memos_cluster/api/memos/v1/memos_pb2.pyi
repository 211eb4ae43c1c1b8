from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SearchMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEARCH_MODE_UNSPECIFIED: _ClassVar[SearchMode]
    SEARCH_MODE_HYBRID: _ClassVar[SearchMode]
    SEARCH_MODE_DENSE: _ClassVar[SearchMode]
    SEARCH_MODE_BM25: _ClassVar[SearchMode]
SEARCH_MODE_UNSPECIFIED: SearchMode
SEARCH_MODE_HYBRID: SearchMode
SEARCH_MODE_DENSE: SearchMode
SEARCH_MODE_BM25: SearchMode

class Memory(_message.Message):
    __slots__ = ("id", "cube_id", "text", "memory_type", "metadata", "created_at_ms", "updated_at_ms", "has_event_time", "event_time_ms", "source", "version", "context", "structure", "state", "valid_from_ms", "valid_to_ms", "expires_at_ms", "superseded_by", "supersedes", "state_reason")
    ID_FIELD_NUMBER: _ClassVar[int]
    CUBE_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    MEMORY_TYPE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    HAS_EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    STRUCTURE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_MS_FIELD_NUMBER: _ClassVar[int]
    VALID_TO_MS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDED_BY_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDES_FIELD_NUMBER: _ClassVar[int]
    STATE_REASON_FIELD_NUMBER: _ClassVar[int]
    id: str
    cube_id: str
    text: str
    memory_type: str
    metadata: _struct_pb2.Struct
    created_at_ms: int
    updated_at_ms: int
    has_event_time: bool
    event_time_ms: int
    source: str
    version: int
    context: str
    structure: MemoryStructure
    state: str
    valid_from_ms: int
    valid_to_ms: int
    expires_at_ms: int
    superseded_by: str
    supersedes: _containers.RepeatedScalarFieldContainer[str]
    state_reason: str
    def __init__(self, id: _Optional[str] = ..., cube_id: _Optional[str] = ..., text: _Optional[str] = ..., memory_type: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., created_at_ms: _Optional[int] = ..., updated_at_ms: _Optional[int] = ..., has_event_time: _Optional[bool] = ..., event_time_ms: _Optional[int] = ..., source: _Optional[str] = ..., version: _Optional[int] = ..., context: _Optional[str] = ..., structure: _Optional[_Union[MemoryStructure, _Mapping]] = ..., state: _Optional[str] = ..., valid_from_ms: _Optional[int] = ..., valid_to_ms: _Optional[int] = ..., expires_at_ms: _Optional[int] = ..., superseded_by: _Optional[str] = ..., supersedes: _Optional[_Iterable[str]] = ..., state_reason: _Optional[str] = ...) -> None: ...

class Supersession(_message.Message):
    __slots__ = ("cube_id", "old_id", "new_id", "valid_to_ms", "reason")
    CUBE_ID_FIELD_NUMBER: _ClassVar[int]
    OLD_ID_FIELD_NUMBER: _ClassVar[int]
    NEW_ID_FIELD_NUMBER: _ClassVar[int]
    VALID_TO_MS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    cube_id: str
    old_id: str
    new_id: str
    valid_to_ms: int
    reason: str
    def __init__(self, cube_id: _Optional[str] = ..., old_id: _Optional[str] = ..., new_id: _Optional[str] = ..., valid_to_ms: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class TimeMention(_message.Message):
    __slots__ = ("span", "start_char", "end_char", "resolved", "start_ms", "end_ms", "granularity", "label")
    SPAN_FIELD_NUMBER: _ClassVar[int]
    START_CHAR_FIELD_NUMBER: _ClassVar[int]
    END_CHAR_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_FIELD_NUMBER: _ClassVar[int]
    START_MS_FIELD_NUMBER: _ClassVar[int]
    END_MS_FIELD_NUMBER: _ClassVar[int]
    GRANULARITY_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    span: str
    start_char: int
    end_char: int
    resolved: bool
    start_ms: int
    end_ms: int
    granularity: str
    label: str
    def __init__(self, span: _Optional[str] = ..., start_char: _Optional[int] = ..., end_char: _Optional[int] = ..., resolved: _Optional[bool] = ..., start_ms: _Optional[int] = ..., end_ms: _Optional[int] = ..., granularity: _Optional[str] = ..., label: _Optional[str] = ...) -> None: ...

class EntityMention(_message.Message):
    __slots__ = ("span", "start_char", "end_char", "name", "label", "entity_id")
    SPAN_FIELD_NUMBER: _ClassVar[int]
    START_CHAR_FIELD_NUMBER: _ClassVar[int]
    END_CHAR_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    ENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    span: str
    start_char: int
    end_char: int
    name: str
    label: str
    entity_id: str
    def __init__(self, span: _Optional[str] = ..., start_char: _Optional[int] = ..., end_char: _Optional[int] = ..., name: _Optional[str] = ..., label: _Optional[str] = ..., entity_id: _Optional[str] = ...) -> None: ...

class Relation(_message.Message):
    __slots__ = ("subject", "predicate", "object")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    PREDICATE_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    subject: str
    predicate: str
    object: str
    def __init__(self, subject: _Optional[str] = ..., predicate: _Optional[str] = ..., object: _Optional[str] = ...) -> None: ...

class MemoryStructure(_message.Message):
    __slots__ = ("times", "entities", "relations", "reader")
    TIMES_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    RELATIONS_FIELD_NUMBER: _ClassVar[int]
    READER_FIELD_NUMBER: _ClassVar[int]
    times: _containers.RepeatedCompositeFieldContainer[TimeMention]
    entities: _containers.RepeatedCompositeFieldContainer[EntityMention]
    relations: _containers.RepeatedCompositeFieldContainer[Relation]
    reader: str
    def __init__(self, times: _Optional[_Iterable[_Union[TimeMention, _Mapping]]] = ..., entities: _Optional[_Iterable[_Union[EntityMention, _Mapping]]] = ..., relations: _Optional[_Iterable[_Union[Relation, _Mapping]]] = ..., reader: _Optional[str] = ...) -> None: ...

class NewMemory(_message.Message):
    __slots__ = ("id", "text", "memory_type", "metadata", "has_event_time", "event_time_ms", "source", "context", "expires_at_ms", "valid_from_ms")
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    MEMORY_TYPE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    HAS_EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_MS_FIELD_NUMBER: _ClassVar[int]
    id: str
    text: str
    memory_type: str
    metadata: _struct_pb2.Struct
    has_event_time: bool
    event_time_ms: int
    source: str
    context: str
    expires_at_ms: int
    valid_from_ms: int
    def __init__(self, id: _Optional[str] = ..., text: _Optional[str] = ..., memory_type: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., has_event_time: _Optional[bool] = ..., event_time_ms: _Optional[int] = ..., source: _Optional[str] = ..., context: _Optional[str] = ..., expires_at_ms: _Optional[int] = ..., valid_from_ms: _Optional[int] = ...) -> None: ...

class Cube(_message.Message):
    __slots__ = ("cube_id", "description", "metadata", "created_at_ms", "default_ttl_ms")
    CUBE_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_TTL_MS_FIELD_NUMBER: _ClassVar[int]
    cube_id: str
    description: str
    metadata: _struct_pb2.Struct
    created_at_ms: int
    default_ttl_ms: int
    def __init__(self, cube_id: _Optional[str] = ..., description: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., created_at_ms: _Optional[int] = ..., default_ttl_ms: _Optional[int] = ...) -> None: ...

class CubeStats(_message.Message):
    __slots__ = ("cube", "num_memories", "num_history_versions", "shard_id")
    CUBE_FIELD_NUMBER: _ClassVar[int]
    NUM_MEMORIES_FIELD_NUMBER: _ClassVar[int]
    NUM_HISTORY_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    cube: Cube
    num_memories: int
    num_history_versions: int
    shard_id: str
    def __init__(self, cube: _Optional[_Union[Cube, _Mapping]] = ..., num_memories: _Optional[int] = ..., num_history_versions: _Optional[int] = ..., shard_id: _Optional[str] = ...) -> None: ...

class CreateCubeRequest(_message.Message):
    __slots__ = ("cube_id", "description", "metadata", "default_ttl_ms")
    CUBE_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_TTL_MS_FIELD_NUMBER: _ClassVar[int]
    cube_id: str
    description: str
    metadata: _struct_pb2.Struct
    default_ttl_ms: int
    def __init__(self, cube_id: _Optional[str] = ..., description: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., default_ttl_ms: _Optional[int] = ...) -> None: ...

class CreateCubeResponse(_message.Message):
    __slots__ = ("cube",)
    CUBE_FIELD_NUMBER: _ClassVar[int]
    cube: Cube
    def __init__(self, cube: _Optional[_Union[Cube, _Mapping]] = ...) -> None: ...

class DeleteCubeRequest(_message.Message):
    __slots__ = ("cube_id",)
    CUBE_ID_FIELD_NUMBER: _ClassVar[int]
    cube_id: str
    def __init__(self, cube_id: _Optional[str] = ...) -> None: ...

class DeleteCubeResponse(_message.Message):
    __slots__ = ("num_memories_deleted",)
    NUM_MEMORIES_DELETED_FIELD_NUMBER: _ClassVar[int]
    num_memories_deleted: int
    def __init__(self, num_memories_deleted: _Optional[int] = ...) -> None: ...

class ListCubesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCubesResponse(_message.Message):
    __slots__ = ("cubes",)
    CUBES_FIELD_NUMBER: _ClassVar[int]
    cubes: _containers.RepeatedCompositeFieldContainer[Cube]
    def __init__(self, cubes: _Optional[_Iterable[_Union[Cube, _Mapping]]] = ...) -> None: ...

class GetCubeRequest(_message.Message):
    __slots__ = ("cube_id",)
    CUBE_ID_FIELD_NUMBER: _ClassVar[int]
    cube_id: str
    def __init__(self, cube_id: _Optional[str] = ...) -> None: ...

class GetCubeResponse(_message.Message):
    __slots__ = ("stats",)
    STATS_FIELD_NUMBER: _ClassVar[int]
    stats: CubeStats
    def __init__(self, stats: _Optional[_Union[CubeStats, _Mapping]] = ...) -> None: ...

class AddMemoriesRequest(_message.Message):
    __slots__ = ("cube_id", "memories")
    CUBE_ID_FIELD_NUMBER: _ClassVar[int]
    MEMORIES_FIELD_NUMBER: _ClassVar[int]
    cube_id: str
    memories: _containers.RepeatedCompositeFieldContainer[NewMemory]
    def __init__(self, cube_id: _Optional[str] = ..., memories: _Optional[_Iterable[_Union[NewMemory, _Mapping]]] = ...) -> None: ...

class AddMemoriesResponse(_message.Message):
    __slots__ = ("ids", "num_inserted", "num_unchanged", "superseded")
    IDS_FIELD_NUMBER: _ClassVar[int]
    NUM_INSERTED_FIELD_NUMBER: _ClassVar[int]
    NUM_UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDED_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    num_inserted: int
    num_unchanged: int
    superseded: _containers.RepeatedCompositeFieldContainer[Supersession]
    def __init__(self, ids: _Optional[_Iterable[str]] = ..., num_inserted: _Optional[int] = ..., num_unchanged: _Optional[int] = ..., superseded: _Optional[_Iterable[_Union[Supersession, _Mapping]]] = ...) -> None: ...

class TimeRange(_message.Message):
    __slots__ = ("has_start", "start_ms", "has_end", "end_ms")
    HAS_START_FIELD_NUMBER: _ClassVar[int]
    START_MS_FIELD_NUMBER: _ClassVar[int]
    HAS_END_FIELD_NUMBER: _ClassVar[int]
    END_MS_FIELD_NUMBER: _ClassVar[int]
    has_start: bool
    start_ms: int
    has_end: bool
    end_ms: int
    def __init__(self, has_start: _Optional[bool] = ..., start_ms: _Optional[int] = ..., has_end: _Optional[bool] = ..., end_ms: _Optional[int] = ...) -> None: ...

class SearchFilter(_message.Message):
    __slots__ = ("memory_types", "sources", "metadata_equals", "event_time", "created_at", "states", "as_of_ms")
    class MetadataEqualsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    MEMORY_TYPES_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    METADATA_EQUALS_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    AS_OF_MS_FIELD_NUMBER: _ClassVar[int]
    memory_types: _containers.RepeatedScalarFieldContainer[str]
    sources: _containers.RepeatedScalarFieldContainer[str]
    metadata_equals: _containers.MessageMap[str, _struct_pb2.Value]
    event_time: TimeRange
    created_at: TimeRange
    states: _containers.RepeatedScalarFieldContainer[str]
    as_of_ms: int
    def __init__(self, memory_types: _Optional[_Iterable[str]] = ..., sources: _Optional[_Iterable[str]] = ..., metadata_equals: _Optional[_Mapping[str, _struct_pb2.Value]] = ..., event_time: _Optional[_Union[TimeRange, _Mapping]] = ..., created_at: _Optional[_Union[TimeRange, _Mapping]] = ..., states: _Optional[_Iterable[str]] = ..., as_of_ms: _Optional[int] = ...) -> None: ...

class SearchRequest(_message.Message):
    __slots__ = ("cube_ids", "query", "top_k", "mode", "filter", "has_reference_time", "reference_time_ms", "explain")
    CUBE_IDS_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    HAS_REFERENCE_TIME_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    cube_ids: _containers.RepeatedScalarFieldContainer[str]
    query: str
    top_k: int
    mode: SearchMode
    filter: SearchFilter
    has_reference_time: bool
    reference_time_ms: int
    explain: bool
    def __init__(self, cube_ids: _Optional[_Iterable[str]] = ..., query: _Optional[str] = ..., top_k: _Optional[int] = ..., mode: _Optional[_Union[SearchMode, str]] = ..., filter: _Optional[_Union[SearchFilter, _Mapping]] = ..., has_reference_time: _Optional[bool] = ..., reference_time_ms: _Optional[int] = ..., explain: _Optional[bool] = ...) -> None: ...

class ScoreParts(_message.Message):
    __slots__ = ("dense_rank", "dense_score", "bm25_rank", "bm25_score", "fused", "neighbour", "date", "when", "entity")
    DENSE_RANK_FIELD_NUMBER: _ClassVar[int]
    DENSE_SCORE_FIELD_NUMBER: _ClassVar[int]
    BM25_RANK_FIELD_NUMBER: _ClassVar[int]
    BM25_SCORE_FIELD_NUMBER: _ClassVar[int]
    FUSED_FIELD_NUMBER: _ClassVar[int]
    NEIGHBOUR_FIELD_NUMBER: _ClassVar[int]
    DATE_FIELD_NUMBER: _ClassVar[int]
    WHEN_FIELD_NUMBER: _ClassVar[int]
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    dense_rank: int
    dense_score: float
    bm25_rank: int
    bm25_score: float
    fused: float
    neighbour: float
    date: float
    when: float
    entity: float
    def __init__(self, dense_rank: _Optional[int] = ..., dense_score: _Optional[float] = ..., bm25_rank: _Optional[int] = ..., bm25_score: _Optional[float] = ..., fused: _Optional[float] = ..., neighbour: _Optional[float] = ..., date: _Optional[float] = ..., when: _Optional[float] = ..., entity: _Optional[float] = ...) -> None: ...

class SearchHit(_message.Message):
    __slots__ = ("memory", "score", "tier", "adapter_version", "explain")
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_VERSION_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    memory: Memory
    score: float
    tier: str
    adapter_version: int
    explain: ScoreParts
    def __init__(self, memory: _Optional[_Union[Memory, _Mapping]] = ..., score: _Optional[float] = ..., tier: _Optional[str] = ..., adapter_version: _Optional[int] = ..., explain: _Optional[_Union[ScoreParts, _Mapping]] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("hits",)
    HITS_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[SearchHit]
    def __init__(self, hits: _Optional[_Iterable[_Union[SearchHit, _Mapping]]] = ...) -> None: ...

class GetMemoriesRequest(_message.Message):
    __slots__ = ("cube_id", "ids", "states")
    CUBE_ID_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    cube_id: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    states: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, cube_id: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ..., states: _Optional[_Iterable[str]] = ...) -> None: ...

class GetMemoriesResponse(_message.Message):
    __slots__ = ("memories", "missing_ids")
    MEMORIES_FIELD_NUMBER: _ClassVar[int]
    MISSING_IDS_FIELD_NUMBER: _ClassVar[int]
    memories: _containers.RepeatedCompositeFieldContainer[Memory]
    missing_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, memories: _Optional[_Iterable[_Union[Memory, _Mapping]]] = ..., missing_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ListMemoriesRequest(_message.Message):
    __slots__ = ("cube_id", "filter", "text_contains", "page_size", "page_token")
    CUBE_ID_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    TEXT_CONTAINS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    cube_id: str
    filter: SearchFilter
    text_contains: str
    page_size: int
    page_token: str
    def __init__(self, cube_id: _Optional[str] = ..., filter: _Optional[_Union[SearchFilter, _Mapping]] = ..., text_contains: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListMemoriesResponse(_message.Message):
    __slots__ = ("memories", "next_page_token", "total")
    MEMORIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    memories: _containers.RepeatedCompositeFieldContainer[Memory]
    next_page_token: str
    total: int
    def __init__(self, memories: _Optional[_Iterable[_Union[Memory, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total: _Optional[int] = ...) -> None: ...

class Entity(_message.Message):
    __slots__ = ("entity_id", "cube_id", "name", "label", "aliases", "num_mentions")
    ENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    CUBE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    NUM_MENTIONS_FIELD_NUMBER: _ClassVar[int]
    entity_id: str
    cube_id: str
    name: str
    label: str
    aliases: _containers.RepeatedScalarFieldContainer[str]
    num_mentions: int
    def __init__(self, entity_id: _Optional[str] = ..., cube_id: _Optional[str] = ..., name: _Optional[str] = ..., label: _Optional[str] = ..., aliases: _Optional[_Iterable[str]] = ..., num_mentions: _Optional[int] = ...) -> None: ...

class ListEntitiesRequest(_message.Message):
    __slots__ = ("cube_id", "name_contains", "label", "page_size", "page_token")
    CUBE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_CONTAINS_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    cube_id: str
    name_contains: str
    label: str
    page_size: int
    page_token: str
    def __init__(self, cube_id: _Optional[str] = ..., name_contains: _Optional[str] = ..., label: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListEntitiesResponse(_message.Message):
    __slots__ = ("entities", "next_page_token", "total")
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    entities: _containers.RepeatedCompositeFieldContainer[Entity]
    next_page_token: str
    total: int
    def __init__(self, entities: _Optional[_Iterable[_Union[Entity, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total: _Optional[int] = ...) -> None: ...

class GetEntityRequest(_message.Message):
    __slots__ = ("cube_id", "entity_id")
    CUBE_ID_FIELD_NUMBER: _ClassVar[int]
    ENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    cube_id: str
    entity_id: str
    def __init__(self, cube_id: _Optional[str] = ..., entity_id: _Optional[str] = ...) -> None: ...

class EntityRelation(_message.Message):
    __slots__ = ("subject", "predicate", "object", "memory_id", "has_time", "time_ms")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    PREDICATE_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    MEMORY_ID_FIELD_NUMBER: _ClassVar[int]
    HAS_TIME_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    subject: str
    predicate: str
    object: str
    memory_id: str
    has_time: bool
    time_ms: int
    def __init__(self, subject: _Optional[str] = ..., predicate: _Optional[str] = ..., object: _Optional[str] = ..., memory_id: _Optional[str] = ..., has_time: _Optional[bool] = ..., time_ms: _Optional[int] = ...) -> None: ...

class EntityNeighbour(_message.Message):
    __slots__ = ("entity", "num_shared")
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    NUM_SHARED_FIELD_NUMBER: _ClassVar[int]
    entity: Entity
    num_shared: int
    def __init__(self, entity: _Optional[_Union[Entity, _Mapping]] = ..., num_shared: _Optional[int] = ...) -> None: ...

class GetEntityResponse(_message.Message):
    __slots__ = ("entity", "memories", "relations", "neighbours")
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    MEMORIES_FIELD_NUMBER: _ClassVar[int]
    RELATIONS_FIELD_NUMBER: _ClassVar[int]
    NEIGHBOURS_FIELD_NUMBER: _ClassVar[int]
    entity: Entity
    memories: _containers.RepeatedCompositeFieldContainer[Memory]
    relations: _containers.RepeatedCompositeFieldContainer[EntityRelation]
    neighbours: _containers.RepeatedCompositeFieldContainer[EntityNeighbour]
    def __init__(self, entity: _Optional[_Union[Entity, _Mapping]] = ..., memories: _Optional[_Iterable[_Union[Memory, _Mapping]]] = ..., relations: _Optional[_Iterable[_Union[EntityRelation, _Mapping]]] = ..., neighbours: _Optional[_Iterable[_Union[EntityNeighbour, _Mapping]]] = ...) -> None: ...

class UpdateMemoryRequest(_message.Message):
    __slots__ = ("cube_id", "id", "text", "replace_metadata", "metadata", "memory_type", "has_event_time", "event_time_ms", "expected_version", "expires_at_ms")
    CUBE_ID_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    REPLACE_METADATA_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    MEMORY_TYPE_FIELD_NUMBER: _ClassVar[int]
    HAS_EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    cube_id: str
    id: str
    text: str
    replace_metadata: bool
    metadata: _struct_pb2.Struct
    memory_type: str
    has_event_time: bool
    event_time_ms: int
    expected_version: int
    expires_at_ms: int
    def __init__(self, cube_id: _Optional[str] = ..., id: _Optional[str] = ..., text: _Optional[str] = ..., replace_metadata: _Optional[bool] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., memory_type: _Optional[str] = ..., has_event_time: _Optional[bool] = ..., event_time_ms: _Optional[int] = ..., expected_version: _Optional[int] = ..., expires_at_ms: _Optional[int] = ...) -> None: ...

class UpdateMemoryResponse(_message.Message):
    __slots__ = ("memory",)
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    memory: Memory
    def __init__(self, memory: _Optional[_Union[Memory, _Mapping]] = ...) -> None: ...

class GetMemoryHistoryRequest(_message.Message):
    __slots__ = ("cube_id", "id")
    CUBE_ID_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    cube_id: str
    id: str
    def __init__(self, cube_id: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class GetMemoryHistoryResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[Memory]
    def __init__(self, versions: _Optional[_Iterable[_Union[Memory, _Mapping]]] = ...) -> None: ...

class DeleteMemoriesRequest(_message.Message):
    __slots__ = ("cube_id", "ids")
    CUBE_ID_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    cube_id: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, cube_id: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteMemoriesResponse(_message.Message):
    __slots__ = ("num_deleted", "missing_ids")
    NUM_DELETED_FIELD_NUMBER: _ClassVar[int]
    MISSING_IDS_FIELD_NUMBER: _ClassVar[int]
    num_deleted: int
    missing_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, num_deleted: _Optional[int] = ..., missing_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class HealthRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ShardHealth(_message.Message):
    __slots__ = ("shard_id", "ok", "detail")
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    shard_id: str
    ok: bool
    detail: str
    def __init__(self, shard_id: _Optional[str] = ..., ok: _Optional[bool] = ..., detail: _Optional[str] = ...) -> None: ...

class HealthResponse(_message.Message):
    __slots__ = ("ok", "shards")
    OK_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    shards: _containers.RepeatedCompositeFieldContainer[ShardHealth]
    def __init__(self, ok: _Optional[bool] = ..., shards: _Optional[_Iterable[_Union[ShardHealth, _Mapping]]] = ...) -> None: ...

class PingRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PingResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ActivateMemoriesRequest(_message.Message):
    __slots__ = ("cube_id", "memory_ids", "replace")
    CUBE_ID_FIELD_NUMBER: _ClassVar[int]
    MEMORY_IDS_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    cube_id: str
    memory_ids: _containers.RepeatedScalarFieldContainer[str]
    replace: bool
    def __init__(self, cube_id: _Optional[str] = ..., memory_ids: _Optional[_Iterable[str]] = ..., replace: _Optional[bool] = ...) -> None: ...

class ActivateMemoriesResponse(_message.Message):
    __slots__ = ("num_tokens", "prefill_tokens", "reused_tokens", "cache_id")
    NUM_TOKENS_FIELD_NUMBER: _ClassVar[int]
    PREFILL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    REUSED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHE_ID_FIELD_NUMBER: _ClassVar[int]
    num_tokens: int
    prefill_tokens: int
    reused_tokens: int
    cache_id: str
    def __init__(self, num_tokens: _Optional[int] = ..., prefill_tokens: _Optional[int] = ..., reused_tokens: _Optional[int] = ..., cache_id: _Optional[str] = ...) -> None: ...

class GenerateRequest(_message.Message):
    __slots__ = ("cube_ids", "query", "max_new_tokens", "temperature", "top_p", "seed", "use_activation_memory", "use_retrieved_memories", "retrieval_top_k", "use_parametric_memory", "memory_mode", "as_of_ms")
    CUBE_IDS_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    MAX_NEW_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    USE_ACTIVATION_MEMORY_FIELD_NUMBER: _ClassVar[int]
    USE_RETRIEVED_MEMORIES_FIELD_NUMBER: _ClassVar[int]
    RETRIEVAL_TOP_K_FIELD_NUMBER: _ClassVar[int]
    USE_PARAMETRIC_MEMORY_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MODE_FIELD_NUMBER: _ClassVar[int]
    AS_OF_MS_FIELD_NUMBER: _ClassVar[int]
    cube_ids: _containers.RepeatedScalarFieldContainer[str]
    query: str
    max_new_tokens: int
    temperature: float
    top_p: float
    seed: int
    use_activation_memory: bool
    use_retrieved_memories: bool
    retrieval_top_k: int
    use_parametric_memory: bool
    memory_mode: str
    as_of_ms: int
    def __init__(self, cube_ids: _Optional[_Iterable[str]] = ..., query: _Optional[str] = ..., max_new_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., seed: _Optional[int] = ..., use_activation_memory: _Optional[bool] = ..., use_retrieved_memories: _Optional[bool] = ..., retrieval_top_k: _Optional[int] = ..., use_parametric_memory: _Optional[bool] = ..., memory_mode: _Optional[str] = ..., as_of_ms: _Optional[int] = ...) -> None: ...

class GenerateToken(_message.Message):
    __slots__ = ("token_id", "text")
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    token_id: int
    text: str
    def __init__(self, token_id: _Optional[int] = ..., text: _Optional[str] = ...) -> None: ...

class GenerateStats(_message.Message):
    __slots__ = ("ttft_ms", "total_ms", "prompt_tokens", "prefill_tokens", "prefill_tokens_saved", "caches_used", "num_generated", "finish_reason", "adapters_used", "retrieved_from_activation", "memories")
    TTFT_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    PREFILL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    PREFILL_TOKENS_SAVED_FIELD_NUMBER: _ClassVar[int]
    CACHES_USED_FIELD_NUMBER: _ClassVar[int]
    NUM_GENERATED_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    ADAPTERS_USED_FIELD_NUMBER: _ClassVar[int]
    RETRIEVED_FROM_ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    MEMORIES_FIELD_NUMBER: _ClassVar[int]
    ttft_ms: float
    total_ms: float
    prompt_tokens: int
    prefill_tokens: int
    prefill_tokens_saved: int
    caches_used: _containers.RepeatedScalarFieldContainer[str]
    num_generated: int
    finish_reason: str
    adapters_used: _containers.RepeatedScalarFieldContainer[str]
    retrieved_from_activation: int
    memories: _containers.RepeatedCompositeFieldContainer[ServedMemory]
    def __init__(self, ttft_ms: _Optional[float] = ..., total_ms: _Optional[float] = ..., prompt_tokens: _Optional[int] = ..., prefill_tokens: _Optional[int] = ..., prefill_tokens_saved: _Optional[int] = ..., caches_used: _Optional[_Iterable[str]] = ..., num_generated: _Optional[int] = ..., finish_reason: _Optional[str] = ..., adapters_used: _Optional[_Iterable[str]] = ..., retrieved_from_activation: _Optional[int] = ..., memories: _Optional[_Iterable[_Union[ServedMemory, _Mapping]]] = ...) -> None: ...

class ServedMemory(_message.Message):
    __slots__ = ("cube_id", "memory_id", "version", "tier")
    CUBE_ID_FIELD_NUMBER: _ClassVar[int]
    MEMORY_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    cube_id: str
    memory_id: str
    version: int
    tier: str
    def __init__(self, cube_id: _Optional[str] = ..., memory_id: _Optional[str] = ..., version: _Optional[int] = ..., tier: _Optional[str] = ...) -> None: ...

class TrainAdapterRequest(_message.Message):
    __slots__ = ("cube_id", "memory_ids", "rank", "steps", "learning_rate", "questions")
    CUBE_ID_FIELD_NUMBER: _ClassVar[int]
    MEMORY_IDS_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    QUESTIONS_FIELD_NUMBER: _ClassVar[int]
    cube_id: str
    memory_ids: _containers.RepeatedScalarFieldContainer[str]
    rank: int
    steps: int
    learning_rate: float
    questions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, cube_id: _Optional[str] = ..., memory_ids: _Optional[_Iterable[str]] = ..., rank: _Optional[int] = ..., steps: _Optional[int] = ..., learning_rate: _Optional[float] = ..., questions: _Optional[_Iterable[str]] = ...) -> None: ...

class TrainingJob(_message.Message):
    __slots__ = ("job_id", "cube_id", "status", "step", "steps", "loss", "error", "version")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    CUBE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    cube_id: str
    status: str
    step: int
    steps: int
    loss: float
    error: str
    version: int
    def __init__(self, job_id: _Optional[str] = ..., cube_id: _Optional[str] = ..., status: _Optional[str] = ..., step: _Optional[int] = ..., steps: _Optional[int] = ..., loss: _Optional[float] = ..., error: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetTrainingJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class CancelTrainingRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class Adapter(_message.Message):
    __slots__ = ("cube_id", "version", "base", "memory_ids", "memory_versions", "metrics", "stale", "created_at_ms", "current", "questions", "rejected")
    class BaseEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    CUBE_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    BASE_FIELD_NUMBER: _ClassVar[int]
    MEMORY_IDS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    QUESTIONS_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    cube_id: str
    version: int
    base: _containers.ScalarMap[str, str]
    memory_ids: _containers.RepeatedScalarFieldContainer[str]
    memory_versions: _containers.RepeatedScalarFieldContainer[int]
    metrics: _containers.ScalarMap[str, float]
    stale: bool
    created_at_ms: int
    current: bool
    questions: _containers.RepeatedScalarFieldContainer[str]
    rejected: bool
    def __init__(self, cube_id: _Optional[str] = ..., version: _Optional[int] = ..., base: _Optional[_Mapping[str, str]] = ..., memory_ids: _Optional[_Iterable[str]] = ..., memory_versions: _Optional[_Iterable[int]] = ..., metrics: _Optional[_Mapping[str, float]] = ..., stale: _Optional[bool] = ..., created_at_ms: _Optional[int] = ..., current: _Optional[bool] = ..., questions: _Optional[_Iterable[str]] = ..., rejected: _Optional[bool] = ...) -> None: ...

class ListAdaptersRequest(_message.Message):
    __slots__ = ("cube_id",)
    CUBE_ID_FIELD_NUMBER: _ClassVar[int]
    cube_id: str
    def __init__(self, cube_id: _Optional[str] = ...) -> None: ...

class ListAdaptersResponse(_message.Message):
    __slots__ = ("adapters",)
    ADAPTERS_FIELD_NUMBER: _ClassVar[int]
    adapters: _containers.RepeatedCompositeFieldContainer[Adapter]
    def __init__(self, adapters: _Optional[_Iterable[_Union[Adapter, _Mapping]]] = ...) -> None: ...

class DeleteAdapterRequest(_message.Message):
    __slots__ = ("cube_id", "version")
    CUBE_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    cube_id: str
    version: int
    def __init__(self, cube_id: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class DeleteAdapterResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetTierStatusRequest(_message.Message):
    __slots__ = ("cube_id",)
    CUBE_ID_FIELD_NUMBER: _ClassVar[int]
    cube_id: str
    def __init__(self, cube_id: _Optional[str] = ...) -> None: ...

class MemoryTierStatus(_message.Message):
    __slots__ = ("memory_id", "version", "frequency", "tiers")
    MEMORY_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    TIERS_FIELD_NUMBER: _ClassVar[int]
    memory_id: str
    version: int
    frequency: float
    tiers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, memory_id: _Optional[str] = ..., version: _Optional[int] = ..., frequency: _Optional[float] = ..., tiers: _Optional[_Iterable[str]] = ...) -> None: ...

class Migration(_message.Message):
    __slots__ = ("time_s", "cube_id", "memory_id", "action", "detail")
    TIME_S_FIELD_NUMBER: _ClassVar[int]
    CUBE_ID_FIELD_NUMBER: _ClassVar[int]
    MEMORY_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    time_s: float
    cube_id: str
    memory_id: str
    action: str
    detail: str
    def __init__(self, time_s: _Optional[float] = ..., cube_id: _Optional[str] = ..., memory_id: _Optional[str] = ..., action: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class GetTierStatusResponse(_message.Message):
    __slots__ = ("memories", "migrations")
    MEMORIES_FIELD_NUMBER: _ClassVar[int]
    MIGRATIONS_FIELD_NUMBER: _ClassVar[int]
    memories: _containers.RepeatedCompositeFieldContainer[MemoryTierStatus]
    migrations: _containers.RepeatedCompositeFieldContainer[Migration]
    def __init__(self, memories: _Optional[_Iterable[_Union[MemoryTierStatus, _Mapping]]] = ..., migrations: _Optional[_Iterable[_Union[Migration, _Mapping]]] = ...) -> None: ...

class ControlSchedulerRequest(_message.Message):
    __slots__ = ("action",)
    ACTION_FIELD_NUMBER: _ClassVar[int]
    action: str
    def __init__(self, action: _Optional[str] = ...) -> None: ...

class ControlSchedulerResponse(_message.Message):
    __slots__ = ("paused", "events", "dropped", "tracked", "promoted", "demoted", "consolidations", "retired", "expired", "expired_total")
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    TRACKED_FIELD_NUMBER: _ClassVar[int]
    PROMOTED_FIELD_NUMBER: _ClassVar[int]
    DEMOTED_FIELD_NUMBER: _ClassVar[int]
    CONSOLIDATIONS_FIELD_NUMBER: _ClassVar[int]
    RETIRED_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    paused: bool
    events: int
    dropped: int
    tracked: int
    promoted: int
    demoted: int
    consolidations: int
    retired: int
    expired: int
    expired_total: int
    def __init__(self, paused: _Optional[bool] = ..., events: _Optional[int] = ..., dropped: _Optional[int] = ..., tracked: _Optional[int] = ..., promoted: _Optional[int] = ..., demoted: _Optional[int] = ..., consolidations: _Optional[int] = ..., retired: _Optional[int] = ..., expired: _Optional[int] = ..., expired_total: _Optional[int] = ...) -> None: ...

class FeedbackRequest(_message.Message):
    __slots__ = ("cube_id", "memory_id", "kind", "text")
    CUBE_ID_FIELD_NUMBER: _ClassVar[int]
    MEMORY_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    cube_id: str
    memory_id: str
    kind: str
    text: str
    def __init__(self, cube_id: _Optional[str] = ..., memory_id: _Optional[str] = ..., kind: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class FeedbackResponse(_message.Message):
    __slots__ = ("memory", "successor", "superseded")
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    SUCCESSOR_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDED_FIELD_NUMBER: _ClassVar[int]
    memory: Memory
    successor: Memory
    superseded: _containers.RepeatedCompositeFieldContainer[Supersession]
    def __init__(self, memory: _Optional[_Union[Memory, _Mapping]] = ..., successor: _Optional[_Union[Memory, _Mapping]] = ..., superseded: _Optional[_Iterable[_Union[Supersession, _Mapping]]] = ...) -> None: ...

class GenerateResponse(_message.Message):
    __slots__ = ("token", "stats")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    token: GenerateToken
    stats: GenerateStats
    def __init__(self, token: _Optional[_Union[GenerateToken, _Mapping]] = ..., stats: _Optional[_Union[GenerateStats, _Mapping]] = ...) -> None: ...

class ChatMessage(_message.Message):
    __slots__ = ("role", "content", "name")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    role: str
    content: str
    name: str
    def __init__(self, role: _Optional[str] = ..., content: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class ChatRequest(_message.Message):
    __slots__ = ("cube_ids", "messages", "max_new_tokens", "temperature", "top_p", "seed", "retrieval_top_k", "remember")
    CUBE_IDS_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    MAX_NEW_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    RETRIEVAL_TOP_K_FIELD_NUMBER: _ClassVar[int]
    REMEMBER_FIELD_NUMBER: _ClassVar[int]
    cube_ids: _containers.RepeatedScalarFieldContainer[str]
    messages: _containers.RepeatedCompositeFieldContainer[ChatMessage]
    max_new_tokens: int
    temperature: float
    top_p: float
    seed: int
    retrieval_top_k: int
    remember: bool
    def __init__(self, cube_ids: _Optional[_Iterable[str]] = ..., messages: _Optional[_Iterable[_Union[ChatMessage, _Mapping]]] = ..., max_new_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., seed: _Optional[int] = ..., retrieval_top_k: _Optional[int] = ..., remember: _Optional[bool] = ...) -> None: ...

class ChatStats(_message.Message):
    __slots__ = ("generate", "answer", "remembered")
    GENERATE_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    REMEMBERED_FIELD_NUMBER: _ClassVar[int]
    generate: GenerateStats
    answer: str
    remembered: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, generate: _Optional[_Union[GenerateStats, _Mapping]] = ..., answer: _Optional[str] = ..., remembered: _Optional[_Iterable[str]] = ...) -> None: ...

class ChatResponse(_message.Message):
    __slots__ = ("token", "stats")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    token: GenerateToken
    stats: ChatStats
    def __init__(self, token: _Optional[_Union[GenerateToken, _Mapping]] = ..., stats: _Optional[_Union[ChatStats, _Mapping]] = ...) -> None: ...

class ShardCube(_message.Message):
    __slots__ = ("cube_id", "num_memories")
    CUBE_ID_FIELD_NUMBER: _ClassVar[int]
    NUM_MEMORIES_FIELD_NUMBER: _ClassVar[int]
    cube_id: str
    num_memories: int
    def __init__(self, cube_id: _Optional[str] = ..., num_memories: _Optional[int] = ...) -> None: ...

class ShardInfo(_message.Message):
    __slots__ = ("shard_id", "node_id", "in_ring", "cubes", "ok", "detail")
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    IN_RING_FIELD_NUMBER: _ClassVar[int]
    CUBES_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    shard_id: str
    node_id: str
    in_ring: bool
    cubes: _containers.RepeatedCompositeFieldContainer[ShardCube]
    ok: bool
    detail: str
    def __init__(self, shard_id: _Optional[str] = ..., node_id: _Optional[str] = ..., in_ring: _Optional[bool] = ..., cubes: _Optional[_Iterable[_Union[ShardCube, _Mapping]]] = ..., ok: _Optional[bool] = ..., detail: _Optional[str] = ...) -> None: ...

class RebalanceProgress(_message.Message):
    __slots__ = ("state", "moves_total", "moves_done", "current", "error", "started_s", "finished_s")
    STATE_FIELD_NUMBER: _ClassVar[int]
    MOVES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    MOVES_DONE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    STARTED_S_FIELD_NUMBER: _ClassVar[int]
    FINISHED_S_FIELD_NUMBER: _ClassVar[int]
    state: str
    moves_total: int
    moves_done: int
    current: str
    error: str
    started_s: float
    finished_s: float
    def __init__(self, state: _Optional[str] = ..., moves_total: _Optional[int] = ..., moves_done: _Optional[int] = ..., current: _Optional[str] = ..., error: _Optional[str] = ..., started_s: _Optional[float] = ..., finished_s: _Optional[float] = ...) -> None: ...

class ListShardsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListShardsResponse(_message.Message):
    __slots__ = ("epoch", "shards", "pending_moves", "rebalance")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    PENDING_MOVES_FIELD_NUMBER: _ClassVar[int]
    REBALANCE_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    shards: _containers.RepeatedCompositeFieldContainer[ShardInfo]
    pending_moves: int
    rebalance: RebalanceProgress
    def __init__(self, epoch: _Optional[int] = ..., shards: _Optional[_Iterable[_Union[ShardInfo, _Mapping]]] = ..., pending_moves: _Optional[int] = ..., rebalance: _Optional[_Union[RebalanceProgress, _Mapping]] = ...) -> None: ...

class GetGatewayStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class OperationStats(_message.Message):
    __slots__ = ("rpc", "transport", "requests", "errors", "p50_ms", "p95_ms")
    RPC_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    P50_MS_FIELD_NUMBER: _ClassVar[int]
    P95_MS_FIELD_NUMBER: _ClassVar[int]
    rpc: str
    transport: str
    requests: int
    errors: int
    p50_ms: float
    p95_ms: float
    def __init__(self, rpc: _Optional[str] = ..., transport: _Optional[str] = ..., requests: _Optional[int] = ..., errors: _Optional[int] = ..., p50_ms: _Optional[float] = ..., p95_ms: _Optional[float] = ...) -> None: ...

class RateSample(_message.Message):
    __slots__ = ("time_s", "transport", "requests_per_s")
    TIME_S_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_PER_S_FIELD_NUMBER: _ClassVar[int]
    time_s: float
    transport: str
    requests_per_s: float
    def __init__(self, time_s: _Optional[float] = ..., transport: _Optional[str] = ..., requests_per_s: _Optional[float] = ...) -> None: ...

class RecentError(_message.Message):
    __slots__ = ("time_s", "rpc", "transport", "code")
    TIME_S_FIELD_NUMBER: _ClassVar[int]
    RPC_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    time_s: float
    rpc: str
    transport: str
    code: str
    def __init__(self, time_s: _Optional[float] = ..., rpc: _Optional[str] = ..., transport: _Optional[str] = ..., code: _Optional[str] = ...) -> None: ...

class GetGatewayStatsResponse(_message.Message):
    __slots__ = ("window_s", "operations", "rates", "errors")
    WINDOW_S_FIELD_NUMBER: _ClassVar[int]
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    RATES_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    window_s: float
    operations: _containers.RepeatedCompositeFieldContainer[OperationStats]
    rates: _containers.RepeatedCompositeFieldContainer[RateSample]
    errors: _containers.RepeatedCompositeFieldContainer[RecentError]
    def __init__(self, window_s: _Optional[float] = ..., operations: _Optional[_Iterable[_Union[OperationStats, _Mapping]]] = ..., rates: _Optional[_Iterable[_Union[RateSample, _Mapping]]] = ..., errors: _Optional[_Iterable[_Union[RecentError, _Mapping]]] = ...) -> None: ...

class ReshardRequest(_message.Message):
    __slots__ = ("shard_ids",)
    SHARD_IDS_FIELD_NUMBER: _ClassVar[int]
    shard_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, shard_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class WhoAmIRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WhoAmIResponse(_message.Message):
    __slots__ = ("user_id", "role", "key_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    role: str
    key_id: str
    def __init__(self, user_id: _Optional[str] = ..., role: _Optional[str] = ..., key_id: _Optional[str] = ...) -> None: ...

class User(_message.Message):
    __slots__ = ("user_id", "role", "created_at_ms")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    role: str
    created_at_ms: int
    def __init__(self, user_id: _Optional[str] = ..., role: _Optional[str] = ..., created_at_ms: _Optional[int] = ...) -> None: ...

class CreateUserRequest(_message.Message):
    __slots__ = ("user_id", "role")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    role: str
    def __init__(self, user_id: _Optional[str] = ..., role: _Optional[str] = ...) -> None: ...

class ListUsersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListUsersResponse(_message.Message):
    __slots__ = ("users",)
    USERS_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedCompositeFieldContainer[User]
    def __init__(self, users: _Optional[_Iterable[_Union[User, _Mapping]]] = ...) -> None: ...

class DeleteUserRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class DeleteUserResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ApiKeyInfo(_message.Message):
    __slots__ = ("key_id", "user_id", "name", "created_at_ms", "expires_at_ms", "revoked_at_ms", "rate_limit_rps")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_RPS_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    user_id: str
    name: str
    created_at_ms: int
    expires_at_ms: int
    revoked_at_ms: int
    rate_limit_rps: float
    def __init__(self, key_id: _Optional[str] = ..., user_id: _Optional[str] = ..., name: _Optional[str] = ..., created_at_ms: _Optional[int] = ..., expires_at_ms: _Optional[int] = ..., revoked_at_ms: _Optional[int] = ..., rate_limit_rps: _Optional[float] = ...) -> None: ...

class CreateApiKeyRequest(_message.Message):
    __slots__ = ("user_id", "name", "expires_in_s", "rate_limit_rps")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_S_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_RPS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    name: str
    expires_in_s: int
    rate_limit_rps: float
    def __init__(self, user_id: _Optional[str] = ..., name: _Optional[str] = ..., expires_in_s: _Optional[int] = ..., rate_limit_rps: _Optional[float] = ...) -> None: ...

class CreateApiKeyResponse(_message.Message):
    __slots__ = ("key", "api_key")
    KEY_FIELD_NUMBER: _ClassVar[int]
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    key: ApiKeyInfo
    api_key: str
    def __init__(self, key: _Optional[_Union[ApiKeyInfo, _Mapping]] = ..., api_key: _Optional[str] = ...) -> None: ...

class ListApiKeysRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class ListApiKeysResponse(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[ApiKeyInfo]
    def __init__(self, keys: _Optional[_Iterable[_Union[ApiKeyInfo, _Mapping]]] = ...) -> None: ...

class RevokeApiKeyRequest(_message.Message):
    __slots__ = ("key_id",)
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    def __init__(self, key_id: _Optional[str] = ...) -> None: ...

class CubeGrant(_message.Message):
    __slots__ = ("user_id", "permission")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PERMISSION_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    permission: str
    def __init__(self, user_id: _Optional[str] = ..., permission: _Optional[str] = ...) -> None: ...

class CubeAccess(_message.Message):
    __slots__ = ("cube_id", "owner", "grants")
    CUBE_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    GRANTS_FIELD_NUMBER: _ClassVar[int]
    cube_id: str
    owner: str
    grants: _containers.RepeatedCompositeFieldContainer[CubeGrant]
    def __init__(self, cube_id: _Optional[str] = ..., owner: _Optional[str] = ..., grants: _Optional[_Iterable[_Union[CubeGrant, _Mapping]]] = ...) -> None: ...

class ShareCubeRequest(_message.Message):
    __slots__ = ("cube_id", "user_id", "permission")
    CUBE_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PERMISSION_FIELD_NUMBER: _ClassVar[int]
    cube_id: str
    user_id: str
    permission: str
    def __init__(self, cube_id: _Optional[str] = ..., user_id: _Optional[str] = ..., permission: _Optional[str] = ...) -> None: ...

class RevokeCubeRequest(_message.Message):
    __slots__ = ("cube_id", "user_id")
    CUBE_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    cube_id: str
    user_id: str
    def __init__(self, cube_id: _Optional[str] = ..., user_id: _Optional[str] = ...) -> None: ...

class GetCubeAccessRequest(_message.Message):
    __slots__ = ("cube_id",)
    CUBE_ID_FIELD_NUMBER: _ClassVar[int]
    cube_id: str
    def __init__(self, cube_id: _Optional[str] = ...) -> None: ...
