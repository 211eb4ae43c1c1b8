"""Readers that turn files into `NewMemory` records, and batching for bulk adds.

Formats (chosen by `--format` or the file name):
- jsonl: one object per line: {"text": ..., "id"?, "memory_type"?, "metadata"?, "source"?,
  "context"?, "event_time_ms"? | "event_time"? (ISO 8601)}
- json: a list of such objects, or a LoCoMo file (a list of conversations), auto-detected
- parquet: the same columns, read with pyarrow
- locomo: a LoCoMo file; each dialogue turn becomes one memory (speaker, text, image caption,
  the session's date as event_time), with metadata {speaker, session, dia_id}, and the
  preceding turns of the session as its context (helps find short replies: see types.py).
Paths go through pyarrow.fs, so local paths and object-store URIs (s3://, gs://) both work.
"""
from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Optional

from memos_cluster.errors import InvalidArgument
from memos_cluster.types import NewMemory

FORMATS = ("auto", "jsonl", "json", "parquet", "locomo")
# Preceding turns kept as a turn's context. LoCoMo dev hybrid recall@5/@10: 1 turn 64.4/73.1,
# 2 turns 66.3/76.0 (with extended stop words); the next turn as well added nothing.
LOCOMO_CONTEXT_TURNS = 2
SAMPLE_CONVERSATION = "conv-26"  # the LoCoMo conversation `up` and `bench gateway` load
LOCOMO_DATE_FORMAT = "%I:%M %p on %d %B, %Y"  # e.g. "1:56 pm on 8 May, 2023"
_SESSION_KEY = re.compile(r"^session_(\d+)$")


def _open(path: str):
    from pyarrow import fs

    filesystem, inner = fs.FileSystem.from_uri(path) if "://" in path else (
        fs.LocalFileSystem(), path)
    return filesystem, inner


def read_bytes(path: str) -> bytes:
    filesystem, inner = _open(path)
    with filesystem.open_input_stream(inner) as stream:
        return stream.read()


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


def locomo_session_time_ms(text: str) -> int:
    """'1:56 pm on 8 May, 2023' -> epoch ms (the dataset gives no zone; UTC is assumed)."""
    moment = datetime.strptime(text.strip(), LOCOMO_DATE_FORMAT).replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def locomo_turn_id(dia_id: str) -> str:
    """'D1:3' -> 'D1-3' (':' is not allowed in memory ids)."""
    return dia_id.replace(":", "-")


def locomo_memories(sample: dict[str, Any],
                    context_turns: int = LOCOMO_CONTEXT_TURNS) -> list[NewMemory]:
    """One memory per dialogue turn. Only what a deployment would have: text, speaker, the
    session's date and image captions (no observations, summaries or questions). Each turn's
    context is the `context_turns` turns before it in the same session."""
    conversation = sample["conversation"]
    sample_id = sample.get("sample_id", "locomo")
    out: list[NewMemory] = []
    sessions = sorted((int(m.group(1)), key) for key in conversation
                      if (m := _SESSION_KEY.match(key)))
    for number, key in sessions:
        when = locomo_session_time_ms(conversation[f"{key}_date_time"])
        session_texts: list[str] = []
        for turn in conversation[key]:
            text = f"{turn['speaker']}: {turn['text']}"
            if turn.get("blip_caption"):
                text += f" [shares a photo of {turn['blip_caption'].removeprefix('a photo of ')}]"
            context = "\n".join(session_texts[-context_turns:]) if context_turns > 0 else ""
            session_texts.append(text)
            out.append(NewMemory(
                text=text, id=locomo_turn_id(turn["dia_id"]), memory_type="dialogue",
                metadata={"speaker": turn["speaker"], "session": number,
                          "dia_id": turn["dia_id"]},
                event_time_ms=when, source=f"locomo:{sample_id}", context=context))
    return out


def is_locomo(data: Any) -> bool:
    return (isinstance(data, list) and bool(data) and isinstance(data[0], dict)
            and "conversation" in data[0])


def load_locomo(path: str) -> list[dict[str, Any]]:
    data = json.loads(read_bytes(path))
    if not is_locomo(data):
        raise InvalidArgument(f"{path} is not a LoCoMo file", "path")
    return data


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

        filesystem, inner = _open(path)
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


def locomo_texts(path: str, first: Optional[int] = None) -> list[str]:
    """The texts of a LoCoMo file's turns as ingest stores them, conversation after
    conversation (`first`: only that many conversations). Who calls it: the benchmarks."""
    samples = load_locomo(path)
    return [m.text for sample in samples[:first] for m in locomo_memories(sample)]
