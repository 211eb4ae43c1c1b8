"""The adapter store: versioned LoRA adapters per cube, with their lineage, on any pyarrow
filesystem (a local directory here, s3:// or gs:// in a cluster).

Layout: `{root}/{cube_id}/v{NNNNNN}/` holds peft's files (adapter_config.json,
adapter_model.safetensors) and `lineage.json`, written last: a version directory without
lineage.json is an unfinished write (a crash mid-save) and is ignored, so a failed run never
replaces the adapter being served.

Who uses it: the LoRA trainer actor (save), the KV-cache actors (fetch to load), the gateway
(list, inspect, delete, mark stale after memory deletes).
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional, Sequence

from memos_cluster.core.errors import NotFound
from memos_cluster.core.tier_types import AdapterRecord, current_of

LINEAGE = "lineage.json"


class AdapterStore:
    """Constructing one does no I/O; every method goes to the filesystem."""

    def __init__(self, root_uri: str):
        self._root_uri = root_uri
        self._fs: Any = None
        self._root = ""

    def _filesystem(self):
        if self._fs is None:
            from pyarrow import fs as pafs

            if "://" in self._root_uri:
                self._fs, self._root = pafs.FileSystem.from_uri(self._root_uri)
            else:
                self._fs = pafs.LocalFileSystem()
                self._root = str(Path(self._root_uri).expanduser().resolve())
        return self._fs

    def _dir(self, cube_id: str, version: Optional[int] = None) -> str:
        self._filesystem()  # sets _root
        base = f"{self._root}/{cube_id}"
        return base if version is None else f"{base}/v{version:06d}"

    def _read(self, path: str) -> bytes:
        with self._filesystem().open_input_stream(path) as handle:
            return handle.read()

    def _write(self, path: str, data: bytes) -> None:
        with self._filesystem().open_output_stream(path) as handle:
            handle.write(data)

    def versions(self, cube_id: str) -> list[AdapterRecord]:
        """Every finished version of the cube's adapter, oldest first."""
        from pyarrow import fs as pafs

        fs = self._filesystem()
        listing = fs.get_file_info(pafs.FileSelector(self._dir(cube_id), allow_not_found=True))
        dirs = sorted((i for i in listing if i.type == pafs.FileType.Directory
                       and i.base_name.startswith("v")), key=lambda i: i.base_name)
        # One request for every lineage file (a round trip each on an object store).
        lineages = fs.get_file_info([f"{i.path}/{LINEAGE}" for i in dirs])
        return [AdapterRecord.from_json(self._read(info.path).decode())
                for info in lineages if info.type == pafs.FileType.File]

    def get(self, cube_id: str, version: int) -> AdapterRecord:
        for record in self.versions(cube_id):
            if record.version == version:
                return record
        raise NotFound(f"cube {cube_id!r} has no adapter version {version}", "version")

    def current(self, cube_id: str) -> Optional[AdapterRecord]:
        return current_of(self.versions(cube_id))

    def next_version(self, cube_id: str) -> int:
        """One past every version directory, finished or not (never reuses a number)."""
        from pyarrow import fs as pafs

        listing = self._filesystem().get_file_info(
            pafs.FileSelector(self._dir(cube_id), allow_not_found=True))
        numbers = [int(i.base_name[1:]) for i in listing
                   if i.base_name.startswith("v") and i.base_name[1:].isdigit()]
        return max(numbers, default=0) + 1

    def save(self, record: AdapterRecord, local_dir: Path) -> AdapterRecord:
        """Copy peft's files from `local_dir`, then write lineage.json (the commit point)."""
        target = self._dir(record.cube_id, record.version)
        fs = self._filesystem()
        fs.create_dir(target, recursive=True)
        names = sorted(p.name for p in local_dir.iterdir() if p.is_file())
        for name in names:
            self._write(f"{target}/{name}", (local_dir / name).read_bytes())
        record = replace(record, files=tuple(names))
        self._write(f"{target}/{LINEAGE}", record.to_json().encode())
        return record

    def fetch(self, record: AdapterRecord, cache_dir: Path) -> Path:
        """A local directory with the adapter's files (peft loads from local paths)."""
        local = cache_dir / record.cube_id / f"v{record.version:06d}"
        if not (local / LINEAGE).exists():
            local.mkdir(parents=True, exist_ok=True)
            source = self._dir(record.cube_id, record.version)
            for name in (*record.files, LINEAGE):
                (local / name).write_bytes(self._read(f"{source}/{name}"))
        return local

    def mark_stale(self, cube_id: str, memory_ids: Sequence[str]) -> list[int]:
        """After memories were deleted: every version trained on any of them stops being
        served. Returns the versions marked."""
        gone = set(memory_ids)
        marked = []
        for record in self.versions(cube_id):
            if not record.stale and gone & {m for m, _ in record.memories}:
                stale = replace(record, stale=True)
                self._write(f"{self._dir(cube_id, record.version)}/{LINEAGE}",
                            stale.to_json().encode())
                marked.append(record.version)
        return marked

    def delete(self, cube_id: str, version: int) -> None:
        from pyarrow import fs as pafs

        # A version exists once its lineage.json does (see save).
        lineage = f"{self._dir(cube_id, version)}/{LINEAGE}"
        if self._filesystem().get_file_info(lineage).type != pafs.FileType.File:
            raise NotFound(f"cube {cube_id!r} has no adapter version {version}", "version")
        self._filesystem().delete_dir(self._dir(cube_id, version))


def local_size_bytes(directory: Path) -> int:
    return sum(os.path.getsize(p) for p in directory.iterdir() if p.is_file())
