"""`memos-cluster shards`: the shard layout (cubes and items per shard, the node each runs on,
rebalance progress), and adding or removing shards (`--add N`, `--remove ID`), which moves the
cubes whose owner changes while reads and writes go on."""
from __future__ import annotations

import re
import time

from memos_cluster.cli.common import client_for
from memos_cluster.core.config import MemosConfig
from memos_cluster.core.errors import FailedPrecondition, InvalidArgument
from memos_cluster.core.types import ShardsStatus

POLL_S = 0.5


def print_shards(status: ShardsStatus) -> None:
    print(f"layout epoch {status.epoch}; {status.pending_moves} cubes waiting to move")
    for shard in status.shards:
        role = "" if shard.in_ring else "  (leaving)"
        if not shard.is_ok:
            print(f"{shard.shard_id:<12} DOWN: {shard.detail}{role}")
            continue
        items = sum(shard.cube_items.values())
        print(f"{shard.shard_id:<12} node {shard.node_id[:12]:<12} {len(shard.cube_items):>6} "
              f"cubes {items:>9} memories{role}")
    r = status.rebalance
    if r.state != "idle":
        print(f"rebalance {r.state}: {r.moves_done}/{r.moves_total} cubes moved"
              + (f", now {r.current}" if r.current else "") + (f"; {r.error}" if r.error else ""))


def next_shard_ids(current: tuple[str, ...], add: int, remove: list[str]) -> tuple[str, ...]:
    """The ring after adding `add` shards (named shard-N after the highest number in use) and
    removing `remove`."""
    unknown = sorted(set(remove) - set(current))
    if unknown:
        raise InvalidArgument(f"not in the ring: {unknown}", "remove")
    numbers = [int(m.group(1)) for s in current if (m := re.fullmatch(r"shard-(\d+)", s))]
    start = max(numbers, default=-1) + 1
    kept = tuple(s for s in current if s not in remove)
    return kept + tuple(f"shard-{start + i}" for i in range(add))


def cmd_shards(args, config: MemosConfig) -> int:
    from tqdm import tqdm

    client = client_for(args, config)
    status = client.shards()
    if not args.add and not args.remove:
        print_shards(status)
        return 0
    ring = tuple(s.shard_id for s in status.shards if s.in_ring)
    status = client.reshard(next_shard_ids(ring, args.add, args.remove or []))
    with tqdm(total=status.rebalance.moves_total, unit="cube", desc="moving cubes") as bar:
        while status.rebalance.state == "running":
            bar.update(status.rebalance.moves_done - bar.n)
            time.sleep(POLL_S)
            status = client.shards()
        bar.update(status.rebalance.moves_done - bar.n)
    print_shards(status)
    if status.rebalance.state == "failed":
        raise FailedPrecondition(f"rebalance failed: {status.rebalance.error} (run the same "
                                 "command again to resume)")
    return 0


def add_shards_command(sub):
    """Who calls it: `memos_cluster.cli.build_parser`."""
    shards = sub.add_parser("shards", help="cubes and items per shard; add or remove shards")
    shards.add_argument("--add", type=int, default=0, help="add this many shards")
    shards.add_argument("--remove", action="append", help="remove this shard (repeatable)")
    return shards
