"""`memos-cluster ingest`: records into a cube through a running gateway (batches of AddMemories,
with a progress bar); `--bulk` (a Ray driver: embedder actor pool, writes straight to the
shards, checkpointed and resumable; see memos_cluster/bulk.py) and `--submit` (the same command
as a Ray job on a running cluster, through the job SDK, with its log followed)."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

from memos_cluster.cli.common import client_for
from memos_cluster.core.config import MemosConfig
from memos_cluster.core.errors import FailedPrecondition, InvalidArgument, NotFound

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

    from actors.bulk_ingest import bulk_ingest

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


def job_entrypoint(argv: list[str], mode_flag: str = "--bulk") -> str:
    """This command line as a job entrypoint: --submit (and --dashboard) dropped, `mode_flag`
    on (ingest's --bulk; "" adds none). Who calls it: cmd_submit, for ingest and reindex."""
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
    if mode_flag and mode_flag not in kept:
        kept.append(mode_flag)
    executable = Path(sys.executable).with_name("memos-cluster")
    return shlex.join([str(executable) if executable.exists() else "memos-cluster"] + kept)


def cmd_submit(args, config: MemosConfig, mode_flag: str = "--bulk") -> int:
    """This command line (`ingest ... --submit`, `reindex ... --submit`) as a Ray job on the
    cluster at --dashboard, its log followed; FailedPrecondition unless the job succeeded."""
    from actors.bulk_ingest import run_as_job

    address = args.dashboard or f"http://127.0.0.1:{config.ray.dashboard_port}"
    job_id, status = run_as_job(address, job_entrypoint(args.argv, mode_flag),
                                lambda text: print(text, end="", flush=True))
    if status != "SUCCEEDED":
        raise FailedPrecondition(f"job {job_id} {status}; rerun the same command to resume")
    return 0


def ingest_into(client, cube_id: str, items: list, batch_size: int, quiet: bool = False) -> int:
    """Create the cube if needed and add items in batches (two in flight) with a progress
    bar; returns how many were new."""
    from tqdm import tqdm

    try:
        client.get_cube(cube_id)
    except NotFound:
        client.create_cube(cube_id)
    with tqdm(total=len(items), desc=f"ingest {cube_id}", unit="item", disable=quiet) as bar:
        return client.add_many(cube_id, items, batch_size, on_batch=bar.update).num_inserted


def cmd_ingest(args, config: MemosConfig) -> int:
    from memos_cluster.data.records import detect_format, read_memories, with_position_id
    from memos_cluster.data.locomo import load_locomo, locomo_memories

    fmt = detect_format(args.file, args.format)
    if args.submit:
        return cmd_submit(args, config)
    if args.bulk:
        return cmd_bulk(args, config, fmt)
    client = client_for(args, config)
    conversations = [c for c in (args.conversations or "").split(",") if c]
    if not args.cube and fmt in ("json", "locomo"):
        for sample in load_locomo(args.file):
            if conversations and sample["sample_id"] not in conversations:
                continue
            cube_id = f"locomo-{sample['sample_id']}"
            memories = locomo_memories(sample, args.context_turns)
            inserted = ingest_into(client, cube_id, memories, args.batch_size)
            print(f"{cube_id}: {inserted} inserted")
        return 0
    if not args.cube:
        raise SystemExit("--cube is required for this format")
    items = list(read_memories(args.file, fmt, conversations or None, args.context_turns))
    # Records without an id get the file position as one (as --bulk does), so running the same
    # ingest again after a failure stores nothing twice.
    items = [with_position_id(m, args.id_prefix, i) for i, m in enumerate(items)]
    inserted = ingest_into(client, args.cube, items, args.batch_size)
    print(f"{args.cube}: {inserted} inserted, {len(items) - inserted} already present")
    return 0
