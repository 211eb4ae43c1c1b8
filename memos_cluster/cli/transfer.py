"""`memos-cluster export` / `import`: a cube as Parquet (memories with their vectors, history,
adapter metadata), to move it between clusters (actors/cube_transfer.py, data/archive.py)."""
from __future__ import annotations

from memos_cluster.core.config import MemosConfig


def cmd_export(args, config: MemosConfig) -> int:
    from actors.cube_transfer import export_cube

    archive = export_cube(config, args.cube, args.out)
    export = archive.export
    print(f"{args.cube}: {len(export.memory_rows)} memories, {len(export.history_rows)} old "
          f"versions and {len(archive.adapters)} adapter records written to {args.out}")
    return 0


def cmd_import(args, config: MemosConfig) -> int:
    from actors.cube_transfer import import_cube

    archive = import_cube(config, args.path, args.cube or "")
    export = archive.export
    print(f"{export.cube_id}: {len(export.memory_rows)} memories and "
          f"{len(export.history_rows)} old versions imported; {len(archive.adapters)} adapter "
          "records came along as lineage (adapters are retrained here by the scheduler)")
    return 0


def add_transfer_commands(sub) -> tuple:
    """Who calls it: `memos_cluster.cli.build_parser`."""
    export = sub.add_parser("export", help="write a cube (memories with vectors, history, "
                                           "adapter metadata) as Parquet")
    export.add_argument("cube")
    export.add_argument("--out", required=True, help="directory, local or s3://...")
    restore = sub.add_parser("import", help="create a cube from an export")
    restore.add_argument("path")
    restore.add_argument("--cube", help="import under this id (default: the exported one)")
    return export, restore
