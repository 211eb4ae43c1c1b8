"""The `memos-cluster` command line.

  up       start a local Ray (or join one), serve the gRPC gateway, load a LoCoMo sample, serve
  demo     a scripted end-to-end run on a fresh temporary data directory (exit 0 = all behaved)
  ingest   load JSON/JSONL/Parquet/LoCoMo into a cube through a running gateway
  search   query one or more cubes
  status   shard health and cubes
  reindex  run the memory reader over a cube's stored memories (a Ray driver, resumable)
  entities, entity
           a cube's entity graph: its entities; one entity's relations, neighbours, memories
  whoami, user, key, share, unshare, access, audit
           users, API keys and cube grants (see docs/security.md)
  bench    benchmarks: `bench gateway` (ingest rate, Search vs no-op latency) and
           `bench locomo` (evidence recall@k on LoCoMo, with BM25 and dense baselines)

Every command takes `--config FILE` and `--set key=value` (e.g. `--set gateway.grpc_port=9001`);
`MEMOS__SECTION__KEY` environment variables override the file, and --set overrides both.
"""
from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import Optional

from memos_cluster.cli.auth import AUTH_COMMANDS, add_auth_commands
from memos_cluster.cli.bench import add_bench_command, cmd_bench
from memos_cluster.cli.chat import add_chat_command, cmd_chat
from memos_cluster.cli.common import client_for, default_locomo_path
from memos_cluster.cli.entities import add_entity_commands, cmd_entities, cmd_entity
from memos_cluster.cli.lifecycle import (
    add_feedback_command, add_search_lifecycle_options, cmd_feedback, search_filter)
from memos_cluster.cli.ingest import add_bulk_arguments, cmd_ingest, ingest_into
from memos_cluster.cli.mcp import add_mcp_command, cmd_mcp_config
from memos_cluster.cli.reindex import add_reindex_command, cmd_reindex
from memos_cluster.cli.shards import add_shards_command, cmd_shards
from memos_cluster.cli.tiers import (
    add_tier_commands, cmd_activate, cmd_adapters, cmd_generate, cmd_scheduler, cmd_tiers)
from memos_cluster.cli.transfer import add_transfer_commands, cmd_export, cmd_import
from memos_cluster.core.config import MemosConfig, load_config
from memos_cluster.core.errors import MemosError
from memos_cluster.core.types import SearchMode
from memos_cluster.data.locomo import LOCOMO_CONTEXT_TURNS, SAMPLE_CONVERSATION
from memos_cluster.deploy.serve_config import LOCAL_SERVE_CONFIG

STOP_POLL_S = 0.2  # how often `up` checks for a stop request (seconds)


def _print_hits(hits, width: int = 100) -> None:
    for rank, hit in enumerate(hits, 1):
        # Resolved dates beside their phrases, as prompts show them ("yesterday [7 May 2023]").
        text = hit.item.structure.annotate(hit.item.text)
        text = text if len(text) <= width else text[:width - 3] + "..."
        print(f"  {rank:2d}. [{hit.score:.4f}] {hit.item.cube_id}/{hit.item.id}: {text}")
        if hit.item.state != "active":  # asked for with --state or --as-of
            link = f" by {hit.item.superseded_by}" if hit.item.superseded_by else ""
            print(f"      {hit.item.state}{link}: {hit.item.state_reason}")
        if hit.explain is not None:
            print(f"      {explain_line(hit.explain)}")


def explain_line(parts) -> str:
    """One hit's ScoreParts on a line: the two retrievers' ranks (- where the hit was not
    their candidate), then the score's parts that are not zero."""
    ranks = (f"dense #{parts.dense_rank or '-'} ({parts.dense_score:.3f}), "
             f"bm25 #{parts.bm25_rank or '-'} ({parts.bm25_score:.2f})")
    added = [f"{name} {getattr(parts, name):+.3f}" for name in
             ("fused", "neighbour", "date", "when", "entity") if getattr(parts, name)]
    return ranks + ("; " + ", ".join(added) if added else "")


def wait_for_stop_signal(poll_s: float = STOP_POLL_S) -> int:
    """Block until SIGINT or SIGTERM; returns the signal. Who calls it: `up`, on the main thread.
    The handler only appends to a list: it may run again while the main thread is inside it
    (Ctrl-C twice, or SIGINT from a wrapper as well), so it must take no lock (Event.set does,
    and deadlocked that way). The previous handlers are restored on return."""
    requests: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: requests.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not requests:
            time.sleep(poll_s)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return requests[0]


def check_data_dir(config: MemosConfig) -> None:
    """Refuse, before anything starts, shard directories the embedded engine cannot read
    (written by milvus-lite 3.x): StorageRefused names the directory and the way to migrate."""
    from memos_cluster.tiers.plaintext.schema import check_lite_path

    if config.storage.milvus_uri is None:
        for db_path in sorted((config.data_root() / "shards").glob("*/milvus.db")):
            check_lite_path(db_path)


def cmd_up(args, config: MemosConfig) -> int:
    from actors import cluster

    check_data_dir(config)
    running = cluster.start(config, args.serve_config)
    try:
        client = client_for(args, config)
        client.wait_ready()
        print(f"memos-cluster gateway ready: gRPC {running.grpc_address}, "
              f"health http://{running.http_address}/-/healthz, data in {config.data_dir}")
        print(f"web console http://{running.http_address}/console/ (sign in with an API key), "
              f"API docs http://{running.http_address}/docs")
        if config.auth.enabled:
            print(f"auth on: the admin key is ${config.auth.admin_key_env} or "
                  f"{config.admin_key_path()}; this machine's commands use it, other clients "
                  "send their own key (MEMOS_API_KEY)")
        sample = args.sample or default_locomo_path()
        if sample and not args.no_sample:
            _load_sample(client, sample)
        else:
            print("no LoCoMo sample found (set MEMOS_LOCOMO or --sample); skipping the demo load")
        print("serving; press Ctrl-C to stop", flush=True)
        wait_for_stop_signal()
    finally:
        print("stopping ...", flush=True)
        cluster.stop(config, running)
    return 0


def cmd_k8s(args, config: MemosConfig) -> int:
    from memos_cluster.deploy.k8s import RAYCLUSTER, RAYSERVICE, sync

    agreed = sync(args.check)
    print(f"{RAYSERVICE}, {RAYCLUSTER}: {'up to date' if agreed else 'rewritten'}")
    return 0


def _load_sample(client, path: str) -> None:
    from memos_cluster.data.locomo import load_locomo, locomo_memories

    sample = next(s for s in load_locomo(path) if s["sample_id"] == SAMPLE_CONVERSATION)
    cube_id = f"locomo-{SAMPLE_CONVERSATION}"
    memories = locomo_memories(sample)
    inserted = ingest_into(client, cube_id, memories, batch_size=128)
    print(f"cube {cube_id}: {inserted} new of {len(memories)} turns (ids make reloads no-ops)")
    for qa in [q for q in sample["qa"] if q.get("evidence")][:3]:
        print(f"\nQ: {qa['question']}  (evidence {', '.join(qa['evidence'])})")
        _print_hits(client.search(cube_id, qa["question"], top_k=3))


def cmd_demo(args, config: MemosConfig) -> int:
    from memos_cluster.cli.demo import main_demo

    return main_demo(config)


def cmd_search(args, config: MemosConfig) -> int:
    hits = client_for(args, config).search(args.cube, args.query, top_k=args.top_k,
                                           mode=SearchMode(args.mode) if args.mode else None,
                                           filter=search_filter(args), explain=args.explain)
    _print_hits(hits)
    return 0


def cmd_status(args, config: MemosConfig) -> int:
    client = client_for(args, config)
    for shard in client.health():
        print(f"{shard.shard_id}: {'ok' if shard.is_ok else 'DOWN'} {shard.detail}")
    for cube in client.list_cubes():
        stats = client.get_cube(cube.cube_id)
        print(f"  cube {cube.cube_id}: {stats.num_memories} memories, "
              f"{stats.num_history_versions} old versions, on {stats.shard_id}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="memos-cluster", description=__doc__.split("\n")[0])
    parser.add_argument("--config", help="YAML config file")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a config key, e.g. gateway.grpc_port=9001")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start and serve until interrupted")
    up.add_argument("--sample", help="LoCoMo file to load a sample conversation from")
    up.add_argument("--no-sample", action="store_true", help="do not load the LoCoMo sample")
    up.add_argument("--serve-config", default=str(LOCAL_SERVE_CONFIG),
                    help="the Serve config to deploy (rendered with this config's gateway ports "
                         "and settings)")
    sub.add_parser("demo", help="scripted end-to-end run on a temporary data dir")
    ingest = sub.add_parser("ingest", help="load a file into a cube")
    ingest.add_argument("file")
    ingest.add_argument("--cube", help="target cube (LoCoMo files default to one per conversation)")
    ingest.add_argument("--format", default="auto", help="auto, jsonl, json, parquet, locomo")
    ingest.add_argument("--conversations", help="LoCoMo sample ids, comma-separated")
    ingest.add_argument("--batch-size", type=int, default=128)
    ingest.add_argument("--context-turns", type=int, default=LOCOMO_CONTEXT_TURNS,
                        help="LoCoMo: preceding turns indexed as each turn's context")
    add_bulk_arguments(ingest)
    search = sub.add_parser("search", help="search one or more cubes")
    search.add_argument("query")
    search.add_argument("--cube", action="append", required=True)
    search.add_argument("--top-k", type=int, default=5)
    search.add_argument("--mode", choices=[m.value for m in SearchMode])
    search.add_argument("--explain", action="store_true",
                        help="show each hit's dense and BM25 ranks and its score's parts")
    add_search_lifecycle_options(search)
    feedback = add_feedback_command(sub)
    sub.add_parser("status", help="shard health and cubes")
    add_reindex_command(sub)
    entity_commands = add_entity_commands(sub)
    activate, generate, adapters, tiers, scheduler = add_tier_commands(sub)
    chat = add_chat_command(sub)
    bench = add_bench_command(sub)
    shards = add_shards_command(sub)
    add_transfer_commands(sub)
    add_mcp_command(sub)
    k8s = sub.add_parser("k8s", help="copy serve_configs/serve-prod.yaml into the KubeRay "
                                     "RayService, and its cluster into k8s/standalone/")
    k8s.add_argument("--check", action="store_true", help="only check that they agree")
    for command in [ingest, search, sub.choices["status"], bench, activate, generate, chat,
                    adapters, tiers, scheduler, shards, feedback, *entity_commands] \
            + add_auth_commands(sub):
        command.add_argument(
            "--address", help="gateway host:port, grpc://host:port, grpcs://host:port (TLS), "
                              "http://host:port (the HTTP/JSON API) or ray:// (default: config)")
        command.add_argument("--tls-ca", help="grpcs://: PEM roots for the gateway's certificate")
        command.add_argument("--tls-cert", help="grpcs://: this client's PEM certificate (mTLS)")
        command.add_argument("--tls-key", help="grpcs://: its PEM private key")
    return parser


COMMANDS = {"up": cmd_up, "demo": cmd_demo, "ingest": cmd_ingest, "search": cmd_search,
            "status": cmd_status, "bench": cmd_bench, "activate": cmd_activate,
            "generate": cmd_generate, "chat": cmd_chat, "adapters": cmd_adapters, "tiers": cmd_tiers,
            "scheduler": cmd_scheduler, "shards": cmd_shards, "k8s": cmd_k8s,
            "export": cmd_export, "import": cmd_import, "mcp-config": cmd_mcp_config,
            "reindex": cmd_reindex, "entities": cmd_entities, "entity": cmd_entity,
            "feedback": cmd_feedback,
            **AUTH_COMMANDS}


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    # `ingest --submit` and `reindex --submit` re-run it as a Ray job
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        config = load_config(args.config, sets=args.set)
        return COMMANDS[args.command](args, config)
    except MemosError as exc:
        print(f"memos-cluster {args.command}: {type(exc).__name__}: {exc.message}",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
