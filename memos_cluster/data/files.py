"""Reading files by path or object-store URI (s3://, gs://, ...) through pyarrow.fs: local paths
and URIs go through one code path. Who calls it: the record readers, LoCoMo loading, bulk ingest
and cube archives."""
from __future__ import annotations

from typing import Any


def open_uri(path: str) -> tuple[Any, str]:
    """(pyarrow filesystem, path inside it) of a local path or a URI."""
    from pyarrow import fs

    filesystem, inner = fs.FileSystem.from_uri(path) if "://" in path else (
        fs.LocalFileSystem(), path)
    return filesystem, inner


def read_bytes(path: str) -> bytes:
    filesystem, inner = open_uri(path)
    with filesystem.open_input_stream(inner) as stream:
        return stream.read()
