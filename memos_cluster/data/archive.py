"""A cube as Parquet, so it can move between clusters: `DIR/memories.parquet` (current memories
with their stored dense vectors and structure, so nothing is re-embedded or read again and
search results come back identical), `DIR/history.parquet` (every archived version) and
`DIR/entities.parquet` (the entity graph's nodes; format 2 on). The cube's own row and its
adapters' metadata (versions, lineage, metrics; not the weights, which belong to a base model)
travel as JSON in memories.parquet's schema metadata. DIR may be local or an object-store URI.

Who calls it: `memos-cluster export` / `import` (actors/cube_transfer.py).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from memos_cluster.core.errors import InvalidArgument
from memos_cluster.data.files import open_uri
from memos_cluster.tiers.plaintext import schema as ms
from memos_cluster.tiers.plaintext.transfer import CubeExport

# 2: memories carry `structure`, entities.parquet; 3: lifecycle columns (state, validity,
# expiry). 1 and 2 are still read: their memories import active, valid always, never expiring.
FORMAT_VERSION = "3"
READABLE_FORMATS = ("1", "2", "3")
_SCALARS = [("pk", pa.string()), ("cube_id", pa.string()), ("memory_id", pa.string()),
            ("text", pa.string()), ("context", pa.string()), ("memory_type", pa.string()),
            ("metadata", pa.string()),  # JSON text
            ("source", pa.string()), ("created_at_ms", pa.int64()),
            ("updated_at_ms", pa.int64()), ("event_time_ms", pa.int64()),
            ("version", pa.int64()),
            ("structure", pa.string()),  # JSON text (core/structure.py MemoryStructure)
            ("state", pa.string()), ("valid_from_ms", pa.int64()), ("valid_to_ms", pa.int64()),
            ("expires_at_ms", pa.int64()),  # schema.TIME_MIN / TIME_MAX when unbounded
            ("lifecycle", pa.string())]  # JSON text (schema.lifecycle_json)
HISTORY_SCHEMA = pa.schema(_SCALARS)
MEMORY_SCHEMA = pa.schema(_SCALARS + [("index_text", pa.string()),
                                      ("dense", pa.list_(pa.float32()))])
ENTITY_SCHEMA = pa.schema([("pk", pa.string()), ("cube_id", pa.string()),
                          ("entity_id", pa.string()), ("name", pa.string()),
                          ("label", pa.string()), ("aliases", pa.string()),  # JSON text
                          ("dense", pa.list_(pa.float32()))])


@dataclass(frozen=True)
class CubeArchive:
    export: CubeExport
    adapters: list[dict[str, Any]]  # AdapterRecord fields, for lineage


JSON_COLUMNS = ("metadata", "structure", "aliases", "lifecycle")


def _table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    json_columns = [c for c in JSON_COLUMNS if c in schema.names]
    encoded = [{**r, **{c: json.dumps(r.get(c) or ({} if c != "aliases" else []),
                                      sort_keys=True) for c in json_columns}} for r in rows]
    return pa.Table.from_pylist(encoded, schema=schema)


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    json_columns = [c for c in JSON_COLUMNS if c in table.schema.names]
    rows = [{**r, **{c: json.loads(r[c]) for c in json_columns}} for r in table.to_pylist()]
    if table.schema.names and "structure" not in table.schema.names \
            and "memory_id" in table.schema.names:
        rows = [{**r, "structure": {}} for r in rows]  # format 1: read again by reindex
    if table.schema.names and "state" not in table.schema.names \
            and "memory_id" in table.schema.names:
        rows = [{**ms.LIFECYCLE_DEFAULTS, **r} for r in rows]  # formats 1 and 2
    return rows


def write_archive(archive: CubeArchive, uri: str) -> None:
    filesystem, root = open_uri(uri)
    filesystem.create_dir(root, recursive=True)
    memories = _table(archive.export.memory_rows, MEMORY_SCHEMA).replace_schema_metadata({
        "memos.format": FORMAT_VERSION,
        "memos.cube": json.dumps(archive.export.cube_row, sort_keys=True),
        "memos.adapters": json.dumps(archive.adapters, sort_keys=True)})
    pq.write_table(memories, f"{root}/memories.parquet", filesystem=filesystem)
    pq.write_table(_table(archive.export.history_rows, HISTORY_SCHEMA),
                   f"{root}/history.parquet", filesystem=filesystem)
    pq.write_table(_table(archive.export.entity_rows, ENTITY_SCHEMA),
                   f"{root}/entities.parquet", filesystem=filesystem)


def read_archive(uri: str) -> CubeArchive:
    filesystem, root = open_uri(uri)
    try:
        memories = pq.read_table(f"{root}/memories.parquet", filesystem=filesystem)
        history = pq.read_table(f"{root}/history.parquet", filesystem=filesystem)
    except FileNotFoundError as exc:
        raise InvalidArgument(f"{uri} is not a cube export: {exc}", "path") from exc
    meta = {k.decode(): v.decode() for k, v in (memories.schema.metadata or {}).items()}
    if meta.get("memos.format") not in READABLE_FORMATS:
        raise InvalidArgument(f"{uri}: unknown export format {meta.get('memos.format')!r}",
                              "path")
    entities = []
    if meta["memos.format"] != "1":
        entities = _rows(pq.read_table(f"{root}/entities.parquet", filesystem=filesystem))
    cube_row = json.loads(meta["memos.cube"])
    export = CubeExport(cube_row["cube_id"], cube_row, _rows(memories), _rows(history),
                        entities)
    return CubeArchive(export, json.loads(meta["memos.adapters"]))


def renamed(export: CubeExport, cube_id: str) -> CubeExport:
    """The same cube under another id (keys follow)."""
    memories = [{**r, "cube_id": cube_id, "pk": ms.memory_pk(cube_id, r["memory_id"])}
                for r in export.memory_rows]
    history = [{**r, "cube_id": cube_id,
                "pk": ms.history_pk(cube_id, r["memory_id"], r["version"])}
               for r in export.history_rows]
    entities = [{**r, "cube_id": cube_id, "pk": ms.memory_pk(cube_id, r["entity_id"])}
                for r in export.entity_rows]
    return CubeExport(cube_id, {**export.cube_row, "cube_id": cube_id}, memories, history,
                      entities)
