"""`memos-cluster export` / `import` on Ray: a cube's rows straight from and to its shard actor
(memos_cluster/cube_io.py writes and reads the Parquet files)."""
from __future__ import annotations

import asyncio
import dataclasses

from memos_cluster.core.config import MemosConfig
from memos_cluster.data.archive import CubeArchive, read_archive, renamed, write_archive
from memos_cluster.tiers.parametric.store import AdapterStore

from actors.cluster import connect_ray
from actors.services import memory_service


def export_cube(config: MemosConfig, cube_id: str, uri: str) -> CubeArchive:
    connect_ray(config)
    export = asyncio.run(memory_service(config).export_cube(cube_id))
    adapters = [dataclasses.asdict(r)
                for r in AdapterStore(config.adapter_store_uri()).versions(cube_id)]
    archive = CubeArchive(export, adapters)
    write_archive(archive, uri)
    return archive


def import_cube(config: MemosConfig, uri: str, cube_id: str = "") -> CubeArchive:
    """Restore an export, as `cube_id` when given; ALREADY_EXISTS if that cube exists."""
    archive = read_archive(uri)
    export = renamed(archive.export, cube_id) if cube_id else archive.export
    connect_ray(config)
    asyncio.run(memory_service(config).restore_cube(export))
    return CubeArchive(export, archive.adapters)
