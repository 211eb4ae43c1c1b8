"""The Milvus collections of one plaintext shard, and conversions between rows and domain types.

Three collections per shard (or per server, when shards share a Milvus server):
- memories: the current version of every memory; cube_id is the partition key, so millions of
  cubes share one collection; dense (MiniLM) and sparse (BM25 over `text`) vectors.
- memory_history: every previous version, kept for GetMemoryHistory.
- cubes: one row per cube.
Milvus requires a vector field in every collection; history and cubes carry a 2-d placeholder.
"""
from __future__ import annotations

from typing import Any

from memos_cluster.core.config import StorageConfig
from memos_cluster.core.types import CubeSpec, MemoryItem

MAX_ID_BYTES = 128
MAX_TEXT_BYTES = 65535  # VARCHAR ceiling; validation caps texts well below it in characters
PLACEHOLDER_VECTOR = [0.0, 1.0]  # for collections that have no real vectors

MEMORY_FIELDS = ["pk", "cube_id", "memory_id", "text", "context", "memory_type", "metadata",
                 "source", "created_at_ms", "updated_at_ms", "event_time_ms", "version"]
CUBE_FIELDS = ["cube_id", "description", "metadata", "created_at_ms"]


def memory_pk(cube_id: str, memory_id: str) -> str:
    # "/" never appears in validated ids, so the key is unambiguous.
    return f"{cube_id}/{memory_id}"


def history_pk(cube_id: str, memory_id: str, version: int) -> str:
    return f"{cube_id}/{memory_id}/{version}"


def _scalar_fields(schema: Any, data_type: Any) -> None:
    schema.add_field("cube_id", data_type.VARCHAR, max_length=MAX_ID_BYTES,
                     is_partition_key=True)
    schema.add_field("memory_id", data_type.VARCHAR, max_length=MAX_ID_BYTES)
    schema.add_field("text", data_type.VARCHAR, max_length=MAX_TEXT_BYTES)
    schema.add_field("context", data_type.VARCHAR, max_length=MAX_TEXT_BYTES)
    schema.add_field("memory_type", data_type.VARCHAR, max_length=64)
    schema.add_field("metadata", data_type.JSON)
    schema.add_field("source", data_type.VARCHAR, max_length=1024)
    schema.add_field("created_at_ms", data_type.INT64)
    schema.add_field("updated_at_ms", data_type.INT64)
    schema.add_field("event_time_ms", data_type.INT64, nullable=True)
    schema.add_field("version", data_type.INT64)


def index_text(item: MemoryItem) -> str:
    """What BM25 indexes (and, by default, what is embedded): context, then the text."""
    return f"{item.context}\n{item.text}" if item.context else item.text


def create_collections(client: Any, storage: StorageConfig, dim: int,
                       stop_words: list[str]) -> None:
    """Who calls it: PlaintextTier.open, once per shard start; creates what is missing."""
    from pymilvus import DataType, Function, FunctionType

    existing = set(client.list_collections())
    if storage.collection not in existing:
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=2 * MAX_ID_BYTES + 8)
        _scalar_fields(schema, DataType)
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
        index.add_index("dense", index_type="HNSW", metric_type="COSINE",
                        params={"M": storage.hnsw_m, "efConstruction": storage.hnsw_ef_construction})
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        client.create_collection(storage.collection, schema=schema, index_params=index,
                                 consistency_level="Strong")
    if storage.history_collection not in existing:
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=2 * MAX_ID_BYTES + 32)
        _scalar_fields(schema, DataType)
        schema.add_field("placeholder", DataType.FLOAT_VECTOR, dim=len(PLACEHOLDER_VECTOR))
        index = client.prepare_index_params()
        index.add_index("placeholder", index_type="FLAT", metric_type="L2")
        client.create_collection(storage.history_collection, schema=schema, index_params=index,
                                 consistency_level="Strong")
    if storage.cube_collection not in existing:
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("cube_id", DataType.VARCHAR, is_primary=True, max_length=MAX_ID_BYTES)
        schema.add_field("description", DataType.VARCHAR, max_length=4096)
        schema.add_field("metadata", DataType.JSON)
        schema.add_field("created_at_ms", DataType.INT64)
        schema.add_field("placeholder", DataType.FLOAT_VECTOR, dim=len(PLACEHOLDER_VECTOR))
        index = client.prepare_index_params()
        index.add_index("placeholder", index_type="FLAT", metric_type="L2")
        client.create_collection(storage.cube_collection, schema=schema, index_params=index,
                                 consistency_level="Strong")


def load_collections(client: Any, storage: StorageConfig) -> None:
    """Load every collection into memory for search. A collection comes back 'released' after
    its server restarts (e.g. a shard actor killed with milvus-lite inside), so every open
    loads them; loading a loaded collection is a no-op."""
    for name in (storage.collection, storage.history_collection, storage.cube_collection):
        client.load_collection(name)


def item_to_row(item: MemoryItem) -> dict[str, Any]:
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
    }


def row_to_item(row: dict[str, Any]) -> MemoryItem:
    entity = row.get("entity", row)  # search hits nest fields under "entity"
    event_time = entity.get("event_time_ms")
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
    )


def cube_to_row(spec: CubeSpec) -> dict[str, Any]:
    return {"cube_id": spec.cube_id, "description": spec.description,
            "metadata": spec.metadata, "created_at_ms": spec.created_at_ms,
            "placeholder": PLACEHOLDER_VECTOR}


def row_to_cube(row: dict[str, Any]) -> CubeSpec:
    return CubeSpec(cube_id=row["cube_id"], description=row["description"],
                    metadata=dict(row.get("metadata") or {}),
                    created_at_ms=int(row["created_at_ms"]))
