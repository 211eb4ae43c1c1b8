"""Readers that turn files into `NewMemory` records, and batching for bulk adds.

Formats (chosen by `--format` or the file name):
- jsonl: one object per line: {"text": ..., "id"?, "memory_type"?, "metadata"?, "source"?,
  "context"?, "event_time_ms"? | "event_time"? (ISO 8601)}
- json: a list of such objects, or a LoCoMo file (a list of conversations), auto-detected
- parquet: the same columns, read with pyarrow
- locomo: a LoCoMo file, one memory per dialogue turn (`locomo.py`).
Paths go through pyarrow.fs, so local paths and object-store URIs (s3://, gs://) both work.
"""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Optional

from memos_cluster.core.errors import InvalidArgument
from memos_cluster.core.types import NewMemory
from memos_cluster.data.files import open_uri, read_bytes
from memos_cluster.data.locomo import LOCOMO_CONTEXT_TURNS, is_locomo, locomo_memories

FORMATS = ("auto", "jsonl", "json", "parquet", "locomo")


def _parse_time(value: Any, where: str) -> Optional[int]:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise InvalidArgument(f"{where}: event_time {value!r} is not ISO 8601", where) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def record_to_memory(record: dict[str, Any], where: str) -> NewMemory:
    if not isinstance(record, dict) or "text" not in record:
        raise InvalidArgument(f"{where}: each record needs a 'text' field", where)
    event_time = record.get("event_time_ms", record.get("event_time"))
    return NewMemory(
        text=str(record["text"]),
        id=str(record["id"]) if record.get("id") not in (None, "") else None,
        memory_type=record.get("memory_type") or "fact",
        metadata=dict(record.get("metadata") or {}),
        event_time_ms=_parse_time(event_time, where),
        source=str(record.get("source") or ""),
        context=str(record.get("context") or ""),
    )


def detect_format(path: str, fmt: str = "auto") -> str:
    if fmt not in FORMATS:
        raise InvalidArgument(f"format {fmt!r} is not one of {FORMATS}", "format")
    if fmt != "auto":
        return fmt
    lowered = path.lower()
    for suffix, name in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".parquet", "parquet"),
                         (".json", "json")):
        if lowered.endswith(suffix):
            return name
    raise InvalidArgument(f"cannot tell the format of {path}; pass --format", "format")


def read_memories(path: str, fmt: str = "auto",
                  conversations: Optional[Iterable[str]] = None,
                  context_turns: int = LOCOMO_CONTEXT_TURNS) -> Iterator[NewMemory]:
    """Who calls it: `memos-cluster ingest` and `up`. Yields records in file order."""
    fmt = detect_format(path, fmt)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        filesystem, inner = open_uri(path)
        table = pq.read_table(inner, filesystem=filesystem)
        for i, row in enumerate(table.to_pylist()):
            yield record_to_memory(row, f"{path}[{i}]")
        return
    if fmt == "jsonl":
        for line_no, line in enumerate(read_bytes(path).decode("utf-8").splitlines(), 1):
            if line.strip():
                yield record_to_memory(json.loads(line), f"{path}:{line_no}")
        return
    data = json.loads(read_bytes(path))
    if fmt == "locomo" or is_locomo(data):
        wanted = set(conversations or ())
        for sample in data:
            if not wanted or sample.get("sample_id") in wanted:
                yield from locomo_memories(sample, context_turns)
        return
    if not isinstance(data, list):
        raise InvalidArgument(f"{path}: a JSON file must hold a list of records", "path")
    for i, record in enumerate(data):
        yield record_to_memory(record, f"{path}[{i}]")


def with_position_id(item: NewMemory, prefix: str, index: int) -> NewMemory:
    """The record, with `prefix` + its index in the file as id when it has none: the same file
    ingested again gets the same ids, so nothing is stored twice. Who calls it: ingest, in both
    modes (through the gateway, and --bulk)."""
    return item if item.id else replace(item, id=f"{prefix}{index:09d}")


def batches(items: Iterable[NewMemory], size: int) -> Iterator[list[NewMemory]]:
    batch: list[NewMemory] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


