"""`memos-cluster export` / `import` (a cube as Parquet, between clusters), and
`memos-cluster ingest --bulk` (a Ray driver: embedder actor pool, writes straight to the
shards, checkpointed and resumable; see memos_cluster/bulk.py) and `--submit` (the same command
as a Ray job on a running cluster, through the job SDK, with its log followed)."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

from memos_cluster.config import MemosConfig
from memos_cluster.errors import FailedPrecondition, InvalidArgument

def add_bulk_arguments(ingest) -> None:
    """Who calls it: `memos_cluster.cli.build_parser`, on the ingest parser."""
    ingest.add_argument("--bulk", action="store_true",
                        help="JSONL/Parquet on Ray: embedder pool, straight to the shards, "
                             "resumable (rerun the same command)")
    ingest.add_argument("--workers", type=int, default=2, help="bulk: embedder actors")
    ingest.add_argument("--checkpoint", help="bulk: progress file, local or object store "
                                             "(default: data_dir/ingest/CUBE.checkpoint.json)")
    ingest.add_argument("--id-prefix", default="r",
                        help="records without an id get PREFIX + their index in the file "
                             "(so a rerun stores nothing twice)")
    ingest.add_argument("--submit", action="store_true",
                        help="run the bulk ingest as a Ray job on the cluster (job SDK)")
    ingest.add_argument("--dashboard", help="submit: the Ray dashboard address "
                                            "(default http://127.0.0.1:ray.dashboard_port)")


def cmd_bulk(args, config: MemosConfig, fmt: str) -> int:
    from tqdm import tqdm

    from actors.ingest import bulk_ingest

    if fmt not in ("jsonl", "parquet"):
        raise InvalidArgument(f"--bulk reads jsonl or parquet files, not {fmt}", "format")
    if not args.cube:
        raise InvalidArgument("--bulk needs --cube", "cube")
    if args.workers < 1 or args.batch_size < 1:
        raise InvalidArgument("--workers and --batch-size must be at least 1", "workers")
    checkpoint = args.checkpoint or str(config.ingest_checkpoint_path(args.cube))
    with tqdm(unit="rec", desc=f"ingest {args.cube}", mininterval=1.0) as bar:
        report = bulk_ingest(config, args.file, fmt, args.cube, args.workers, args.batch_size,
                             checkpoint, args.id_prefix, progress=bar)
    print(f"{args.cube}: {report.records} records sent ({report.skipped} done by an earlier "
          f"run), {report.inserted} inserted, in {report.seconds} s = "
          f"{report.per_second:.1f} records/s; writer waited {report.wait_embed_seconds} s for "
          f"embeddings and spent {report.write_seconds} s writing", flush=True)
    return 0


def job_entrypoint(argv: list[str]) -> str:
    """This command line as a job entrypoint: --submit (and --dashboard) dropped, --bulk on."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--submit" or arg.startswith("--dashboard="):
            continue
        if arg == "--dashboard":
            skip = True
            continue
        kept.append(arg)
    if "--bulk" not in kept:
        kept.append("--bulk")
    executable = Path(sys.executable).with_name("memos-cluster")
    return shlex.join([str(executable) if executable.exists() else "memos-cluster"] + kept)


def cmd_submit(args, config: MemosConfig) -> int:
    from actors.ingest import run_as_job

    address = args.dashboard or f"http://127.0.0.1:{config.ray.dashboard_port}"
    job_id, status = run_as_job(address, job_entrypoint(args.argv),
                                lambda text: print(text, end="", flush=True))
    if status != "SUCCEEDED":
        raise FailedPrecondition(f"job {job_id} {status}; rerun the same command to resume")
    return 0


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
