"""Bulk ingest: a JSONL or Parquet file (local or object store, through pyarrow) into one cube,
in batches, embedding on a pool of workers while earlier batches are written, resumable.

Resuming: every record gets a deterministic id (its own `id`, else `--id-prefix` + its index in
the file), and a checkpoint records how many leading records are acknowledged. A rerun skips
those and re-sends the rest; a record acknowledged after the last checkpoint is sent again and
left alone by the shard (same id, same content), so a kill at any point ends, after a rerun,
with every record stored exactly once.

Who calls it: `memos-cluster ingest --bulk` (actors/ingest.py runs it on Ray with an actor pool
of embedders and writes through the shard actors).
"""
from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Iterator, Optional

from memos_cluster.core.errors import FailedPrecondition, InvalidArgument
from memos_cluster.core.fileutil import write_atomically
from memos_cluster.core.types import NewMemory
from memos_cluster.data.files import open_uri
from memos_cluster.data.records import batches, record_to_memory, with_position_id
from memos_cluster.embed.base import embed_inputs

EmbedMany = Callable[[Iterable[list[str]]], Iterator[Any]]  # batches of texts -> vectors, in order
Write = Callable[[list[NewMemory], Any], int]  # (items, vectors) -> number inserted


def read_records(path: str, fmt: str, id_prefix: str = "r",
                 skip: int = 0) -> Iterator[NewMemory]:
    """The file's records from index `skip` on, as memories with deterministic ids. JSONL is
    read line by line, Parquet a row group at a time, so a file never has to fit in memory."""
    if fmt not in ("jsonl", "parquet"):
        raise InvalidArgument(f"bulk ingest reads jsonl or parquet, not {fmt!r}", "format")
    rows = _parquet_rows(path) if fmt == "parquet" else _jsonl_rows(path)
    for index, record in enumerate(itertools.islice(rows, skip, None), start=skip):
        yield with_position_id(record_to_memory(record, f"{path}[{index}]"), id_prefix, index)


def _jsonl_rows(path: str) -> Iterator[dict[str, Any]]:
    filesystem, inner = open_uri(path)
    with filesystem.open_input_stream(inner) as stream:
        buffered = _lines(stream)
        for line in buffered:
            if line.strip():
                yield json.loads(line)


def _lines(stream: Any, chunk: int = 1 << 20) -> Iterator[bytes]:
    tail = b""
    while data := stream.read(chunk):
        lines = (tail + data).split(b"\n")
        tail = lines.pop()
        yield from lines
    if tail:
        yield tail


def _parquet_rows(path: str) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    filesystem, inner = open_uri(path)
    with filesystem.open_input_file(inner) as handle:
        for batch in pq.ParquetFile(handle).iter_batches():
            yield from batch.to_pylist()


@dataclass
class Checkpoint:
    """How many leading records of `path` are acknowledged in `cube_id`; one small JSON file
    (local or object store), rewritten whole after every batch."""

    uri: str
    path: str = ""
    cube_id: str = ""
    done: int = 0

    def load(self) -> "Checkpoint":
        filesystem, inner = open_uri(self.uri)
        if filesystem.get_file_info(inner).type.name == "NotFound":
            return self
        with filesystem.open_input_stream(inner) as stream:
            data = json.loads(stream.read())
        if (data["path"], data["cube_id"]) != (self.path, self.cube_id):
            raise InvalidArgument(f"checkpoint {self.uri} is for {data['path']} -> "
                                  f"{data['cube_id']}, not {self.path} -> {self.cube_id}",
                                  "checkpoint")
        return replace(self, done=int(data["done"]))

    def save(self, done: int) -> None:
        self.done = done
        body = json.dumps({"path": self.path, "cube_id": self.cube_id, "done": done}).encode()
        if "://" not in self.uri:
            write_atomically(self.uri, body)
            return
        filesystem, inner = open_uri(self.uri)  # object stores replace an object whole
        filesystem.create_dir(inner.rsplit("/", 1)[0], recursive=True)
        with filesystem.open_output_stream(inner) as out:
            out.write(body)


@dataclass(frozen=True)
class IngestReport:
    records: int  # sent this run
    inserted: int  # new in the cube
    skipped: int  # acknowledged by an earlier run (from the checkpoint)
    seconds: float
    wait_embed_seconds: float  # the writer waiting for embeddings (reading included)
    write_seconds: float  # the writer writing batches to the shards

    @property
    def per_second(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


def run_ingest(records: Iterable[NewMemory], embed_many: EmbedMany, write: Write,
               checkpoint: Checkpoint, batch_size: int, include_context: bool,
               progress: Optional[Callable[[int], None]] = None) -> IngestReport:
    """Embed batches through `embed_many` (which may work ahead on a pool) and write them in
    file order, saving the checkpoint after each. Who calls it: actors/ingest.py."""
    started = time.monotonic()
    skipped = done = checkpoint.done
    pending: list[list[NewMemory]] = []

    def texts() -> Iterator[list[str]]:
        for batch in batches(records, batch_size):
            pending.append(batch)
            yield embed_inputs(batch, include_context)

    inserted, write_s, wait_s = 0, 0.0, 0.0
    embedded = embed_many(texts())
    while True:
        began = time.monotonic()
        vectors = next(embedded, None)
        wait_s += time.monotonic() - began
        if vectors is None:
            break
        batch = pending.pop(0)
        began = time.monotonic()
        inserted += write(batch, vectors)
        write_s += time.monotonic() - began
        done += len(batch)
        checkpoint.save(done)
        if progress is not None:
            progress(len(batch))
    seconds = time.monotonic() - started
    return IngestReport(done - skipped, inserted, skipped, round(seconds, 2), round(wait_s, 2),
                        round(write_s, 2))


def check_complete(report: IngestReport, held: int, cube_id: str) -> None:
    """After a run, the cube's count(*) must cover every record of the file the checkpoint
    counts as acknowledged (this run's and earlier runs'); fewer means rows were lost on the
    way, and the run fails loudly instead of reporting success. (More is fine: the cube may
    hold other memories.) Who calls it: actors/bulk_ingest.py, after run_ingest."""
    acknowledged = report.skipped + report.records
    if held < acknowledged:
        raise FailedPrecondition(f"cube {cube_id!r} holds {held} memories, but {acknowledged} "
                                 "records of this file were acknowledged: rows were lost; "
                                 "delete the checkpoint and ingest again")


def count_records(path: str, fmt: str) -> Optional[int]:
    """Records in the file, cheaply when the format says (Parquet metadata); None for JSONL."""
    if fmt != "parquet":
        return None
    import pyarrow.parquet as pq

    filesystem, inner = open_uri(path)
    with filesystem.open_input_file(inner) as handle:
        return pq.ParquetFile(handle).metadata.num_rows
