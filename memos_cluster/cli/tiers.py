"""CLI commands of the activation and parametric tiers (`activate`, `generate`, `adapters`);
the parser and the rest live in `memos_cluster.cli.main`."""
from __future__ import annotations

import time

from memos_cluster.cli.common import client_for
from memos_cluster.core.config import MemosConfig


def cmd_activate(args, config: MemosConfig) -> int:
    stats = client_for(args, config).activate(args.cube, args.ids, replace=args.replace)
    print(f"{args.cube}: block of {stats.num_tokens} tokens, {stats.prefill_tokens} prefilled, "
          f"{stats.reused_tokens} reused" + (f" (cache {stats.cache_id})" if stats.cache_id
                                             else " (a cache per memory)"))
    return 0


def cmd_generate(args, config: MemosConfig) -> int:
    from memos_cluster.core.tier_types import TokenEvent

    # Any explicit flag asks for explicit mode; none lets the system choose (auto).
    explicit = args.retrieve or args.no_activation or args.adapters
    events = client_for(args, config).generate(
        args.cube, args.query, max_new_tokens=args.max_new_tokens,
        temperature=args.temperature, use_activation_memory=not args.no_activation,
        use_retrieved_memories=args.retrieve, use_parametric_memory=args.adapters,
        memory_mode="explicit" if explicit else "auto")
    for event in events:
        if isinstance(event, TokenEvent):
            print(event.text, end="", flush=True)
        else:
            adapters = f"; adapters {', '.join(event.adapters_used)}" \
                if event.adapters_used else ""
            print(f"\n[{event.num_generated} tokens, {event.finish_reason}; first token after "
                  f"{event.ttft_ms:.1f} ms; {event.prefill_tokens_saved} of "
                  f"{event.prompt_tokens} prompt tokens from activation memory{adapters}]")
            if event.memories:
                print("[memories: " + ", ".join(f"{m.memory_id} ({m.tier})"
                                                for m in event.memories) + "]")
    return 0


def cmd_adapters(args, config: MemosConfig) -> int:
    """train | list | show | delete | job | cancel (see build_parser)."""
    client = client_for(args, config)
    if args.action == "train":
        job = client.train_adapter(args.cube, args.ids, rank=args.rank, steps=args.steps,
                                   learning_rate=args.learning_rate,
                                   questions=args.question or ())
        print(f"training job {job.job_id} for {args.cube}: {job.status}")
        if args.wait:
            job = _follow_job(client, job.job_id)
            print(f"{job.status}" + (f": adapter v{job.version}" if job.version else "")
                  + (f" ({job.error})" if job.error else ""))
            return 0 if job.status == "succeeded" else 1
    elif args.action in ("job", "cancel"):
        job = (client.training_job if args.action == "job" else client.cancel_training)(
            args.ids[0])
        print(f"{job.job_id} {job.cube_id}: {job.status}, step {job.step}/{job.steps}, "
              f"loss {job.loss:.3f}" + (f", adapter v{job.version}" if job.version else "")
              + (f", {job.error}" if job.error else ""))
    elif args.action == "delete":
        client.delete_adapter(args.cube, args.version)
        print(f"deleted {args.cube} adapter v{args.version}")
    else:
        listing = client.adapters(args.cube)
        for record in listing.adapters:
            if args.action == "show" and record.version != args.version:
                continue
            mark = "current" if record.version == listing.current_version else (
                "stale" if record.stale else "rejected" if record.rejected else "")
            metrics = ", ".join(f"{k} {v:g}" for k, v in sorted(record.metrics.items()))
            print(f"v{record.version} {mark:<7} {len(record.memories)} memories"
                  + (f", {len(record.questions)} questions" if record.questions else "")
                  + f"; {metrics}")
            if args.action == "show":
                print("  base: " + ", ".join(f"{k}={v}" for k, v in record.base.items()))
                print("  trained on: " + ", ".join(f"{m}@{n}" for m, n in record.memories))
                for question in record.questions:
                    print(f"  answers: {question}")
    return 0


def _follow_job(client, job_id: str):
    from tqdm import tqdm

    job = client.training_job(job_id)
    with tqdm(total=job.steps, desc=f"train {job.cube_id}", unit="step") as bar:
        while job.status in ("queued", "running"):
            time.sleep(0.5)
            job = client.training_job(job_id)
            bar.update(job.step - bar.n)
            bar.set_postfix(loss=f"{job.loss:.3f}", status=job.status)
    return job


def cmd_tiers(args, config: MemosConfig) -> int:
    status = client_for(args, config).tier_status(args.cube)
    for row in sorted(status.memories, key=lambda r: -r.frequency):
        print(f"{row.memory_id:<24} v{row.version:<3} {row.frequency:8.3f}  {'+'.join(row.tiers)}")
    for move in status.migrations[-args.last:]:
        when = time.strftime("%H:%M:%S", time.localtime(move.time_s))
        print(f"  {when} {move.action:<12} {move.memory_id} {move.detail}".rstrip())
    return 0


def cmd_scheduler(args, config: MemosConfig) -> int:
    s = client_for(args, config).scheduler(args.action)
    print(f"scheduler {'paused' if s.paused else 'running'}: {s.events} events "
          f"({s.dropped} dropped), {s.tracked} memories tracked; last cycle: {s.promoted} "
          f"promoted, {s.demoted} demoted, {s.consolidations} consolidations, "
          f"{s.retired} retired")
    return 0


def add_tier_commands(sub) -> tuple:
    """Who calls it: `memos_cluster.cli.build_parser`. Returns the three parsers."""
    activate = sub.add_parser("activate", help="promote memories into a cube's KV cache")
    activate.add_argument("ids", nargs="+", help="memory ids, appended in this order")
    activate.add_argument("--cube", required=True)
    activate.add_argument("--replace", action="store_true", help="the block becomes these ids")
    generate = sub.add_parser("generate", help="answer from memory, streamed (memory mode auto "
                                               "unless a flag below is given)")
    generate.add_argument("query")
    generate.add_argument("--cube", action="append", required=True)
    generate.add_argument("--max-new-tokens", type=int, default=0)
    generate.add_argument("--temperature", type=float, default=0.0)
    generate.add_argument("--retrieve", action="store_true",
                          help="explicit mode: add retrieved memories")
    generate.add_argument("--no-activation", action="store_true",
                          help="explicit mode: do not use the cubes' activation memory")
    generate.add_argument("--adapters", action="store_true",
                          help="explicit mode: apply the cubes' current LoRA adapters")
    adapters = sub.add_parser("adapters", help="parametric memory: train, list, show, delete "
                                               "adapters; follow or cancel training jobs")
    adapters.add_argument("action", choices=["train", "list", "show", "delete", "job", "cancel"])
    adapters.add_argument("ids", nargs="*", help="train: memory ids; job/cancel: the job id")
    adapters.add_argument("--cube")
    adapters.add_argument("--version", type=int, default=0, help="show/delete: which version")
    adapters.add_argument("--rank", type=int, default=0)
    adapters.add_argument("--steps", type=int, default=0)
    adapters.add_argument("--learning-rate", type=float, default=0.0)
    adapters.add_argument("--wait", action="store_true", help="train: follow it to the end")
    adapters.add_argument("--question", action="append",
                          help="train: a question adapter answering this question without "
                               "retrieval (repeat it; no memory ids then)")
    tiers = sub.add_parser("tiers", help="a cube's memories by tier and access frequency")
    tiers.add_argument("cube")
    tiers.add_argument("--last", type=int, default=20, help="recent migrations to show")
    scheduler = sub.add_parser("scheduler", help="the tier scheduler: status, pause, resume, "
                                                 "run a cycle now")
    scheduler.add_argument("action", choices=["status", "pause", "resume", "run"],
                           nargs="?", default="status")
    return activate, generate, adapters, tiers, scheduler
