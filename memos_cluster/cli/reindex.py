"""`memos-cluster reindex --cube C`: the memory reader run again over a cube's stored memories
(resolved dates, entities, relations for memories stored before the reader existed), as a Ray
driver writing straight to the shards, with a progress bar, checkpointed after every batch and
resumable (actors/reindex.py); `--submit` runs the same command as a Ray job on a running
cluster (job SDK, as `ingest --submit` does), its log followed."""
from __future__ import annotations

from memos_cluster.cli.ingest import cmd_submit
from memos_cluster.core.config import MemosConfig
from memos_cluster.core.errors import InvalidArgument, Unavailable

# Memories per shard call: one batch's reading stays well inside cluster.call_timeout_s on a CPU.
DEFAULT_BATCH_SIZE = 128


def add_reindex_command(sub):
    """Who calls it: `memos_cluster.cli.main.build_parser`. Returns the parser."""
    reindex = sub.add_parser("reindex", help="run the memory reader over a cube's stored "
                                             "memories (resumable: rerun the same command)")
    reindex.add_argument("--cube", required=True)
    reindex.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                         help="memories per shard call")
    reindex.add_argument("--restart", action="store_true",
                         help="start a new pass from the first memory instead of resuming "
                              "from the checkpoint (data_dir/reindex/CUBE.checkpoint.json)")
    reindex.add_argument("--submit", action="store_true",
                         help="run it as a Ray job on the cluster (job SDK)")
    reindex.add_argument("--dashboard", help="submit: the Ray dashboard address "
                                             "(default http://127.0.0.1:ray.dashboard_port)")
    return reindex


def cmd_reindex(args, config: MemosConfig) -> int:
    """Who calls it: `memos-cluster reindex`, on the machine the user runs it on or, under
    --submit, as the Ray job's entrypoint (the same command line without --submit)."""
    if args.batch_size < 1:
        raise InvalidArgument("--batch-size must be at least 1", "batch_size")
    if args.submit:
        return cmd_submit(args, config, mode_flag="")
    from tqdm import tqdm

    from actors.reindex import checkpoint_path, reindex_cube

    with tqdm(unit="mem", desc=f"reindex {args.cube}", mininterval=1.0) as bar:

        def show(step, state) -> None:
            bar.total = state.total
            bar.n = state.num_read
            bar.set_postfix(changed=state.num_changed, refresh=False)
            bar.refresh()

        try:
            report = reindex_cube(config, args.cube, args.batch_size, args.restart,
                                  on_step=show)
        except Unavailable as exc:
            raise type(exc)(f"{exc.message}; rerun the same command to resume from "
                            f"{checkpoint_path(config, args.cube)} (with a smaller "
                            "--batch-size if batches time out)", exc.field) from exc
    print(summary(args.cube, report), flush=True)
    return 0


def summary(cube_id: str, report) -> str:
    """The line a run ends with, from its `actors.reindex.ReindexReport`."""
    state = report.state
    if report.already_complete:
        return (f"cube {cube_id} was reindexed already ({state.num_read} memories, "
                f"{state.num_changed} changed); --restart runs the reader over it again")
    line = (f"reindexed {state.num_read} memories of cube {cube_id}, {state.num_changed} "
            f"changed, in {state.seconds:.1f} s")
    if report.earlier_read:
        line += f" ({report.earlier_read} read by an earlier run)"
    return line
