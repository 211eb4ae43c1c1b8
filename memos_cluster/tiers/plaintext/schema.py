"""The Milvus collections of one plaintext shard, and conversions between rows and domain types.

Three collections per shard (or per server, when shards share a Milvus server):
- memories: the current version of every memory, with dense (MiniLM) and sparse (BM25 over the
  context and text) vectors; millions of cubes share one collection.
- memory_history: every previous version, kept for GetMemoryHistory.
- cubes: one row per cube.
Milvus requires a vector field in every collection; history and cubes carry a 2-d placeholder.

The schema depends on the engine, and this module is the one place that knows which runs
(`EngineProfile`, chosen by `engine_for`):
- embedded milvus-lite 2.5 (no `storage.milvus_uri`): it refuses filters on a partition-key
  field, nullable fields and HNSW. So `cube_id` is a plain scalar field with an INVERTED index,
  a memory without an event time stores `EVENT_TIME_NONE` (-2**62; decoded back to None, excluded
  from every event-time range), and dense vectors use AUTOINDEX, which sizes itself to each
  segment (a graph index in milvus-lite 2.5: 3.7 ms a dense search over 100k rows, against
  27 ms brute force);
- a Milvus server (`storage.milvus_uri`): `cube_id` is the partition key (Milvus prunes by it),
  `event_time_ms` is nullable, dense vectors use HNSW with the configured M and ef.
Rows always leave through `EngineProfile.row_to_item`, so nothing above this module sees the
sentinel.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from memos_cluster.core.config import StorageConfig
from memos_cluster.core.errors import FailedPrecondition
from memos_cluster.core.lifecycle import ACTIVE
from memos_cluster.core.structure import MemoryStructure
from memos_cluster.core.types import CubeSpec, MemoryItem

MAX_ID_BYTES = 128
MAX_TEXT_BYTES = 65535  # VARCHAR ceiling; validation caps texts well below it in characters
PLACEHOLDER_VECTOR = [0.0, 1.0]  # for collections that have no real vectors

MEMORY_FIELDS = ["pk", "cube_id", "memory_id", "text", "context", "memory_type", "metadata",
                 "source", "created_at_ms", "updated_at_ms", "event_time_ms", "version",
                 "structure", "state", "valid_from_ms", "valid_to_ms", "expires_at_ms",
                 "lifecycle"]
# A memory's row as an upsert needs it back (the BM25 input and the dense vector too).
FULL_ROW = MEMORY_FIELDS + ["index_text", "dense"]
ENTITY_FIELDS = ["pk", "cube_id", "entity_id", "name", "label", "aliases"]
MAX_NAME_BYTES = 1024
CUBE_FIELDS = ["cube_id", "description", "metadata", "created_at_ms", "default_ttl_ms"]


def memory_pk(cube_id: str, memory_id: str) -> str:
    # "/" never appears in validated ids, so the key is unambiguous.
    return f"{cube_id}/{memory_id}"


def history_pk(cube_id: str, memory_id: str, version: int) -> str:
    return f"{cube_id}/{memory_id}/{version}"


# A memory without an event time, where the engine has no NULL. Validation keeps event times
# strictly within +-2**62 ms, so no real one takes this value. (Not INT64's minimum: Milvus reads
# the literal -9223372036854775808 as an overflow, and `!=` it then matched every row.)
EVENT_TIME_NONE = -(2 ** 62)
# Lifecycle times are never NULL, on either engine (one code path for every filter): a fact
# valid since always starts at TIME_MIN; one that still holds, or a memory that never expires,
# ends at TIME_MAX. Validation keeps real times strictly inside.
TIME_MIN = -(2 ** 62)
TIME_MAX = 2 ** 62


# The lifecycle columns of a memory stored before lifecycle existed (an archive of format 1 or
# 2): active, valid always, never expiring.
LIFECYCLE_DEFAULTS = {"state": ACTIVE, "valid_from_ms": TIME_MIN, "valid_to_ms": TIME_MAX,
                      "expires_at_ms": TIME_MAX, "lifecycle": {}}


def encode_time(value: Optional[int], none: int) -> int:
    return none if value is None else int(value)


def decode_time(value: Optional[int]) -> Optional[int]:
    return None if value is None or value in (TIME_MIN, TIME_MAX) else int(value)


@dataclass(frozen=True)
class EngineProfile:
    """What one storage engine can do, and the schema choices that follow from it."""

    name: str  # "milvus-lite" (embedded) or "milvus-server"
    partition_key: bool  # cube_id is the partition key (else a scalar field with an index)
    nullable: bool  # event_time_ms may be NULL (else EVENT_TIME_NONE stands for none)
    dense_index: str  # index type of the dense vectors
    dense_index_params: dict[str, Any]
    dense_search_params: dict[str, Any]

    @property
    def event_time_none(self) -> Optional[int]:
        """The stored value of "no event time" that filters must exclude; None: NULL."""
        return None if self.nullable else EVENT_TIME_NONE

    def encode_event_time(self, value: Optional[int]) -> Optional[int]:
        return value if value is not None or self.nullable else EVENT_TIME_NONE

    def decode_event_time(self, value: Optional[int]) -> Optional[int]:
        return None if value is None or value == EVENT_TIME_NONE else int(value)

    def item_to_row(self, item: MemoryItem) -> dict[str, Any]:
        """Scalar columns of an item; callers add `pk` and the vector column."""
        row = _item_to_row(item)
        row["event_time_ms"] = self.encode_event_time(item.event_time_ms)
        return row

    def row_to_item(self, row: dict[str, Any]) -> MemoryItem:
        entity = row.get("entity", row)  # search hits nest fields under "entity"
        return _row_to_item({**entity, "event_time_ms": self.decode_event_time(
            entity.get("event_time_ms"))})

    def encode_rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rows in the domain's form (event time None when absent, as exports carry them) in
        this engine's form."""
        return [{**LIFECYCLE_DEFAULTS, **r,
                 "event_time_ms": self.encode_event_time(r.get("event_time_ms"))} for r in rows]

    def decode_rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**r, "event_time_ms": self.decode_event_time(r.get("event_time_ms"))}
                for r in rows]


class StorageRefused(FailedPrecondition):
    """A data directory this engine must not open (written by another engine). Permanent: a
    shard that raises it keeps answering it rather than restarting."""


MIGRATION_HINT = (
    "milvus-lite 3.x and 2.5 data directories cannot read each other. To keep the data: with "
    "the previous memos-cluster (milvus-lite 3.2.2) run `memos-cluster export CUBE --out DIR` "
    "for each cube, then with this one `memos-cluster import DIR`; or start on a new data_dir")


def check_lite_path(db_path: Path) -> None:
    """Refuse a milvus-lite 3.x data directory: milvus-lite 2.5 keeps a shard's data in one
    file at `db_path`, 3.x in a directory of that name (WAL, Parquet, FAISS). Opening one with
    the other fails or, worse, starts empty. Who calls it: MilvusStore.open, before it connects."""
    if db_path.is_dir():
        raise StorageRefused(f"{db_path} was written by milvus-lite 3.x; this version embeds "
                             f"milvus-lite 2.5 (the C++ engine). {MIGRATION_HINT}", "data_dir")


def is_embedded(uri: Optional[str]) -> bool:
    """Whether a storage URI means embedded milvus-lite: none (a directory per shard), or a
    local `.db` file (pymilvus starts milvus-lite for those; tests share one between shards)."""
    return uri is None or uri.endswith(".db")


def engine_for(storage: StorageConfig) -> EngineProfile:
    """The profile of the engine `storage` names. Who calls it: MilvusStore, once."""
    if is_embedded(storage.milvus_uri):
        return EngineProfile("milvus-lite", partition_key=False, nullable=False,
                             dense_index="AUTOINDEX", dense_index_params={},
                             dense_search_params={})
    return EngineProfile("milvus-server", partition_key=True, nullable=True,
                         dense_index="HNSW",
                         dense_index_params={"M": storage.hnsw_m,
                                             "efConstruction": storage.hnsw_ef_construction},
                         dense_search_params={"ef": max(storage.hnsw_ef, 1)})


def _scalar_fields(schema: Any, data_type: Any, engine: EngineProfile) -> None:
    schema.add_field("cube_id", data_type.VARCHAR, max_length=MAX_ID_BYTES,
                     is_partition_key=engine.partition_key)
    schema.add_field("memory_id", data_type.VARCHAR, max_length=MAX_ID_BYTES)
    schema.add_field("text", data_type.VARCHAR, max_length=MAX_TEXT_BYTES)
    schema.add_field("context", data_type.VARCHAR, max_length=MAX_TEXT_BYTES)
    schema.add_field("memory_type", data_type.VARCHAR, max_length=64)
    schema.add_field("metadata", data_type.JSON)
    schema.add_field("source", data_type.VARCHAR, max_length=1024)
    schema.add_field("created_at_ms", data_type.INT64)
    schema.add_field("updated_at_ms", data_type.INT64)
    schema.add_field("event_time_ms", data_type.INT64, nullable=engine.nullable)
    schema.add_field("version", data_type.INT64)
    # What the memory reader found (core/structure.py MemoryStructure.to_json): dates,
    # entity mentions with their entity ids, relations. {} when none.
    schema.add_field("structure", data_type.JSON)
    # Lifecycle (core/lifecycle.py): the stored state; validity [valid_from, valid_to) and the
    # expiry, TIME_MIN / TIME_MAX when unbounded; `lifecycle`: the facts' keys the supersede
    # rule queries ("k"), the facts ("f"), the successor ("by"), the predecessors ("of") and
    # why the state last changed ("why").
    schema.add_field("state", data_type.VARCHAR, max_length=16)
    schema.add_field("valid_from_ms", data_type.INT64)
    schema.add_field("valid_to_ms", data_type.INT64)
    schema.add_field("expires_at_ms", data_type.INT64)
    schema.add_field("lifecycle", data_type.JSON)


def index_text(item: MemoryItem, with_dates: bool = True) -> str:
    """What BM25 indexes: context, then the text, then (`with_dates`) the resolved dates of
    the text's time expressions ("7 May 2023"), so a question naming a date finds a memory
    that said "yesterday" (search.bm25_dates; docs/structure.md)."""
    text = f"{item.context}\n{item.text}" if item.context else item.text
    labels = dict.fromkeys(t.label() for t in item.structure.resolved_times()) \
        if with_dates else {}
    return f"{text}\n{' '.join(labels)}" if labels else text


def _scope_index(index: Any, engine: EngineProfile) -> None:
    """Without a partition key, an index on cube_id keeps a cube's queries from scanning the
    collection."""
    if not engine.partition_key:
        index.add_index("cube_id", index_type="INVERTED")


def create_collections(client: Any, storage: StorageConfig, engine: EngineProfile, dim: int,
                       stop_words: list[str]) -> None:
    """Who calls it: PlaintextTier.open, once per shard start; creates what is missing."""
    from pymilvus import DataType, Function, FunctionType

    existing = set(client.list_collections())
    if storage.collection not in existing:
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=2 * MAX_ID_BYTES + 8)
        _scalar_fields(schema, DataType, engine)
        analyzer: dict[str, Any] = {"tokenizer": "standard", "filter": ["lowercase"]}
        if stop_words:
            analyzer["filter"].append({"type": "stop", "stop_words": list(stop_words)})
        schema.add_field("index_text", DataType.VARCHAR, max_length=MAX_TEXT_BYTES,
                         enable_analyzer=True, analyzer_params=analyzer)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
        schema.add_function(Function(name="text_bm25", function_type=FunctionType.BM25,
                                     input_field_names=["index_text"],
                                     output_field_names=["sparse"]))
        index = client.prepare_index_params()
        index.add_index("dense", index_type=engine.dense_index, metric_type="COSINE",
                        params=dict(engine.dense_index_params))
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        _scope_index(index, engine)
        client.create_collection(storage.collection, schema=schema, index_params=index,
                                 consistency_level="Strong")
    if storage.history_collection not in existing:
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=2 * MAX_ID_BYTES + 32)
        _scalar_fields(schema, DataType, engine)
        schema.add_field("placeholder", DataType.FLOAT_VECTOR, dim=len(PLACEHOLDER_VECTOR))
        index = client.prepare_index_params()
        index.add_index("placeholder", index_type="FLAT", metric_type="L2")
        _scope_index(index, engine)
        client.create_collection(storage.history_collection, schema=schema, index_params=index,
                                 consistency_level="Strong")
    if storage.entity_collection not in existing:
        _create_entities(client, storage, engine, dim, DataType)
    if storage.cube_collection not in existing:
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("cube_id", DataType.VARCHAR, is_primary=True, max_length=MAX_ID_BYTES)
        schema.add_field("description", DataType.VARCHAR, max_length=4096)
        schema.add_field("metadata", DataType.JSON)
        schema.add_field("created_at_ms", DataType.INT64)
        schema.add_field("default_ttl_ms", DataType.INT64)  # 0: memories never expire
        schema.add_field("placeholder", DataType.FLOAT_VECTOR, dim=len(PLACEHOLDER_VECTOR))
        index = client.prepare_index_params()
        index.add_index("placeholder", index_type="FLAT", metric_type="L2")
        client.create_collection(storage.cube_collection, schema=schema, index_params=index,
                                 consistency_level="Strong")


def _create_entities(client: Any, storage: StorageConfig, engine: EngineProfile, dim: int,
                     data_type: Any) -> None:
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("pk", data_type.VARCHAR, is_primary=True, max_length=2 * MAX_ID_BYTES + 8)
    schema.add_field("cube_id", data_type.VARCHAR, max_length=MAX_ID_BYTES,
                     is_partition_key=engine.partition_key)
    schema.add_field("entity_id", data_type.VARCHAR, max_length=MAX_ID_BYTES)
    schema.add_field("name", data_type.VARCHAR, max_length=MAX_NAME_BYTES)
    schema.add_field("label", data_type.VARCHAR, max_length=64)
    schema.add_field("aliases", data_type.JSON)
    schema.add_field("dense", data_type.FLOAT_VECTOR, dim=dim)  # the name's embedding
    index = client.prepare_index_params()
    # FLAT keeps the raw vectors the graph reads back at load (milvus-lite's AUTOINDEX
    # refuses to return them from a growing segment); entities are compared in numpy.
    index.add_index("dense", index_type="FLAT", metric_type="COSINE")
    _scope_index(index, engine)
    client.create_collection(storage.entity_collection, schema=schema, index_params=index,
                             consistency_level="Strong")


def check_fields(client: Any, storage: StorageConfig) -> None:
    """Refuse memories written before memories had a `structure` field: the collections'
    schema is fixed at creation. Who calls it: MilvusStore.open, after create_collections."""
    fields = {f["name"] for f in client.describe_collection(storage.collection)["fields"]}
    cube_fields = {f["name"] for f in
                   client.describe_collection(storage.cube_collection)["fields"]}
    if "structure" in fields and ("state" not in fields or "default_ttl_ms" not in cube_fields):
        raise StorageRefused(
            f"collection {storage.collection!r} was created by a version without memory "
            "lifecycle (states, validity, expiry). Export each cube with that version "
            "(`memos-cluster export CUBE --out DIR`) and import it here (`memos-cluster import "
            "DIR`): every imported memory starts active; or start on a new data_dir", "data_dir")
    if "structure" not in fields:
        raise StorageRefused(
            f"collection {storage.collection!r} was created by a version without memory "
            "structure (dates, entities). Export each cube with that version (`memos-cluster "
            "export CUBE --out DIR`), import it here (`memos-cluster import DIR`), then read "
            "its memories (`memos-cluster reindex --cube CUBE`); or start on a new data_dir",
            "data_dir")


def load_collections(client: Any, storage: StorageConfig) -> None:
    """Load every collection into memory for search. A collection comes back 'released' after
    its server restarts (e.g. a shard actor killed with milvus-lite inside), so every open
    loads them; loading a loaded collection is a no-op."""
    for name in (storage.collection, storage.history_collection, storage.cube_collection,
                 storage.entity_collection):
        client.load_collection(name)


def _item_to_row(item: MemoryItem) -> dict[str, Any]:
    """Scalar columns of an item; callers add `pk` and the vector column."""
    return {
        "cube_id": item.cube_id,
        "memory_id": item.id,
        "text": item.text,
        "context": item.context,
        "memory_type": item.memory_type,
        "metadata": item.metadata,
        "source": item.source,
        "created_at_ms": item.created_at_ms,
        "updated_at_ms": item.updated_at_ms,
        "event_time_ms": item.event_time_ms,
        "version": item.version,
        "structure": item.structure.to_json(),
        "state": item.state,
        "valid_from_ms": encode_time(item.valid_from_ms, TIME_MIN),
        "valid_to_ms": encode_time(item.valid_to_ms, TIME_MAX),
        "expires_at_ms": encode_time(item.expires_at_ms, TIME_MAX),
        "lifecycle": lifecycle_json(item),
    }


def lifecycle_json(item: MemoryItem) -> dict[str, Any]:
    """The `lifecycle` column: links and reason. The facts' keys ("k") and facts ("f") are
    added by Lifecycle (tiers/plaintext/lifecycle.py) when it settles the row."""
    out: dict[str, Any] = {}
    if item.superseded_by:
        out["by"] = item.superseded_by
    if item.supersedes:
        out["of"] = list(item.supersedes)
    if item.state_reason:
        out["why"] = item.state_reason
    return out


def _row_to_item(row: dict[str, Any]) -> MemoryItem:
    entity = row.get("entity", row)  # search hits nest fields under "entity"
    event_time = entity.get("event_time_ms")
    life = entity.get("lifecycle") or {}
    return MemoryItem(
        id=entity["memory_id"],
        cube_id=entity["cube_id"],
        text=entity["text"],
        memory_type=entity["memory_type"],
        metadata=dict(entity.get("metadata") or {}),
        created_at_ms=int(entity["created_at_ms"]),
        updated_at_ms=int(entity["updated_at_ms"]),
        event_time_ms=None if event_time is None else int(event_time),
        source=entity["source"],
        version=int(entity["version"]),
        context=entity.get("context") or "",
        structure=MemoryStructure.from_json(entity.get("structure")),
        state=entity.get("state") or ACTIVE,
        valid_from_ms=decode_time(entity.get("valid_from_ms")),
        valid_to_ms=decode_time(entity.get("valid_to_ms")),
        expires_at_ms=decode_time(entity.get("expires_at_ms")),
        superseded_by=str(life.get("by", "")),
        supersedes=tuple(life.get("of", ())),
        state_reason=str(life.get("why", "")),
    )


def cube_to_row(spec: CubeSpec) -> dict[str, Any]:
    return {"cube_id": spec.cube_id, "description": spec.description,
            "metadata": spec.metadata, "created_at_ms": spec.created_at_ms,
            "default_ttl_ms": spec.default_ttl_ms, "placeholder": PLACEHOLDER_VECTOR}


def row_to_cube(row: dict[str, Any]) -> CubeSpec:
    return CubeSpec(cube_id=row["cube_id"], description=row["description"],
                    metadata=dict(row.get("metadata") or {}),
                    created_at_ms=int(row["created_at_ms"]),
                    default_ttl_ms=int(row.get("default_ttl_ms") or 0))
