"""`memos-cluster bench ...`: one function a benchmark, each returning the figures it writes
with `--out`. The parser and the other commands live in `memos_cluster.cli.main`."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Optional

from memos_cluster.cli.common import client_for, default_locomo_path, gateway_address
from memos_cluster.core.config import MemosConfig, with_overrides
from memos_cluster.data.locomo import SAMPLE_CONVERSATION


def _needs(data: Optional[str]) -> str:
    if not data:
        raise SystemExit("no LoCoMo file: pass --data")
    return data


def _on_local_cluster(config: MemosConfig, work):
    """Run work(client) against a fresh local cluster on a temporary data dir and free ports
    (in `config` when work needs them), then stop it."""
    from actors.cluster import temporary_cluster
    from memos_cluster.core.netutil import free_port

    # The retrieval benches measure the plaintext path: no scheduler promoting memories (and
    # loading a model) in the middle of the timings.
    config = with_overrides(config, {"scheduler.enabled": False,
                                     "gateway.grpc_port": free_port(),
                                     "gateway.http_port": free_port()})
    with temporary_cluster(config, prefix="memos-bench-", free_ports=False) as client:
        return work(client, config)


def _on_client(args, config: MemosConfig, work: Callable[[Any, MemosConfig], dict]) -> dict:
    """work(client, config) against --address, or against a fresh local cluster (its config:
    the ports it was given)."""
    return work(client_for(args, config), config) if args.address \
        else _on_local_cluster(config, work)


def bench_gateway(args, config: MemosConfig, data: Optional[str]) -> dict:
    from memos_cluster.bench.gateway import run_gateway_bench
    from memos_cluster.client import MemosClient

    def work(client, running_config: MemosConfig):
        kind = client.address.split("://")[0] if "://" in client.address else "grpc"
        clients = {"http" if kind in ("http", "https") else kind: client}
        if not args.address:  # on our own local cluster: time HTTP and the Ray transport too
            gateway = running_config.gateway
            clients["http"] = MemosClient(f"http://{gateway.host}:{gateway.http_port}")
            clients["ray"] = MemosClient(f"ray://?app={gateway.app_name}")
        return run_gateway_bench(clients, _needs(data), args.conversation)
    return _on_client(args, config, work)


def bench_locomo(args, config: MemosConfig, data: Optional[str]) -> dict:
    from memos_cluster.bench.locomo import run_locomo_bench

    conversations = [c for c in (args.conversations or "").split(",") if c] or None
    if args.cross_validate:  # in-process: the engine's lists, every recipe scored offline
        from memos_cluster.bench.locomo_cv import run_cross_validation

        embedders = [e for e in args.embedders.split(",") if e]
        return run_cross_validation(_needs(data), config, config.model_cache_dir() / "crossval",
                                    embedders, conversations)
    ks = [int(k) for k in args.k.split(",")]
    return _on_client(args, config, lambda client, _: run_locomo_bench(
        client, _needs(data), conversations, ks))


def bench_kv(args, config: MemosConfig, data: Optional[str]) -> dict:
    """In-process: the activation engine on the configured model (no cluster needed)."""
    from memos_cluster.tiers.llm.model import default_device
    from memos_cluster.bench.kv import run_kv_bench
    from memos_cluster.tiers.activation.engine import segment_options
    from memos_cluster.data.locomo import locomo_texts

    return run_kv_bench(args.model or config.activation.model, config.model_cache_dir(),
                        default_device(args.device),
                        [int(t) for t in args.memory_tokens.split(",")]
                        if args.memory_tokens else None,
                        [int(t) for t in args.query_tokens.split(",")],
                        repeats=args.repeats, texts=locomo_texts(data) if data else [],
                        segments=segment_options(config.activation))


def bench_chat(args, config: MemosConfig, data: Optional[str]) -> dict:
    """In-process: multi-turn chats replayed from a LoCoMo conversation on the configured
    model, each turn cached against a full prefill (bench/chat.py)."""
    from memos_cluster.bench.chat import run_chat_bench
    from memos_cluster.tiers.llm.model import default_device

    plot = args.plot or (str(Path(args.out).with_suffix(".png")) if args.out else None)
    return run_chat_bench(config, _needs(data), args.conversation,
                          [int(t) for t in args.turns.split(",")], args.max_new_tokens,
                          default_device(args.device), plot=plot)


def bench_lora(args, config: MemosConfig, data: Optional[str]) -> dict:
    """In-process: the trainer on the configured model, through the real adapter store."""
    from memos_cluster.tiers.llm.model import default_device
    from memos_cluster.bench.lora import run_lora_bench
    from memos_cluster.data.locomo import locomo_texts
    from memos_cluster.tiers.parametric.service import lora_spec

    return run_lora_bench(args.model or config.activation.model, config.model_cache_dir(),
                          default_device(args.device), locomo_texts(_needs(data), first=1),
                          lora_spec(config.parametric))


def bench_qa(args, config: MemosConfig, data: Optional[str]) -> dict:
    """In-process: every memory tier answering LoCoMo questions on the configured model."""
    from memos_cluster.bench.qa import ARMS, run_qa_bench
    from memos_cluster.data.locomo import load_locomo
    from memos_cluster.tiers.llm.model import default_device

    wanted = [c for c in (args.conversations or "conv-26").split(",") if c]
    samples = [s for s in load_locomo(_needs(data)) if s["sample_id"] in wanted]
    if not samples:
        raise SystemExit(f"none of {wanted} is in {data}")
    plot = args.plot or (str(Path(args.out).with_suffix(".png")) if args.out else None)
    return run_qa_bench(config, args.model or config.activation.model,
                        default_device(args.device), samples, args.per_category, args.top_k,
                        plot_path=plot,
                        arms_run=[a for a in (args.arms or ",".join(ARMS)).split(",") if a],
                        categories=[c for c in (args.categories or "1,2,3,4").split(",") if c],
                        max_new_tokens=args.max_new_tokens)


def bench_fidelity(args, config: MemosConfig, data: Optional[str]) -> dict:
    """In-process: each activation-memory setting's logits against a full prefill's."""
    from memos_cluster.bench.fidelity import DEFAULT_ARMS, parse_arm, run_fidelity_bench
    from memos_cluster.data.locomo import load_locomo
    from memos_cluster.tiers.llm.model import default_device

    arms = [parse_arm(a) for a in (args.arms or DEFAULT_ARMS).split(",") if a]
    wanted = [c for c in (args.conversations or "").split(",") if c]
    samples = [s for s in load_locomo(_needs(data)) if not wanted or s["sample_id"] in wanted]
    if not samples or (args.holdout and args.holdout not in {s["sample_id"] for s in samples}):
        raise SystemExit(f"the conversations {wanted or 'asked for'} (holdout "
                         f"{args.holdout or 'none'}) are not all in {data}")
    return run_fidelity_bench(config, args.model or config.activation.model,
                              default_device(args.device), samples, args.pairs, args.top_k,
                              arms, args.holdout)


def bench_parametric(args, config: MemosConfig, data: Optional[str]) -> dict:
    """In-process: a question adapter trained on a conversation's frequent questions."""
    from memos_cluster.bench.parametric import run_parametric_bench
    from memos_cluster.data.locomo import load_locomo
    from memos_cluster.tiers.llm.model import default_device
    from memos_cluster.tiers.parametric.service import lora_spec

    wanted = [c for c in (args.conversations or "conv-26,conv-30").split(",") if c]
    found = {s["sample_id"]: s for s in load_locomo(_needs(data))}
    if len(wanted) != 2 or not set(wanted) <= set(found):
        raise SystemExit(f"parametric: --conversations names the cube's conversation and "
                         f"another one, both in {data} (got {wanted})")
    return run_parametric_bench(config, args.model or config.activation.model,
                                default_device(args.device), found[wanted[0]],
                                found[wanted[1]], args.pairs, args.top_k,
                                dataclasses.replace(lora_spec(config.parametric),
                                                    steps=args.steps))


def bench_tiers(args, config: MemosConfig, data: Optional[str]) -> dict:
    from memos_cluster.bench.qa import qa_questions
    from memos_cluster.bench.tiers import ARMS, run_tiers_bench
    from memos_cluster.data.locomo import load_locomo, locomo_memories

    samples = [s for s in load_locomo(_needs(data)) if s["sample_id"] == args.conversation]
    if not samples:
        raise SystemExit(f"{args.conversation} is not in {data}")
    run = dict(memories=locomo_memories(samples[0]), questions=qa_questions(samples[0]),
               arms=[a for a in (args.arms or ",".join(ARMS)).split(",") if a],
               num_requests=args.requests, top_k=args.top_k)
    if args.address:
        return run_tiers_bench(client_for(args, config), **run)
    from actors.cluster import temporary_cluster

    # Cycles every 2 s and a 2-minute half-life, so a run of a few minutes shows the
    # scheduler's whole behaviour.
    fast = with_overrides(config, {"scheduler.interval_s": 2.0, "scheduler.half_life_s": 120.0,
                                   "scheduler.min_residency_s": 30.0,
                                   "scheduler.max_block_memories": args.block_memories
                                   or config.scheduler.max_block_memories})
    with temporary_cluster(fast, prefix="memos-bench-") as client:
        result = run_tiers_bench(client, **run)
    return {**result, "compose": fast.activation.compose,
            "block_memories": fast.scheduler.max_block_memories}


def bench_cluster(args, config: MemosConfig, data: Optional[str]) -> dict:
    from actors.cluster import simulated_cluster
    from memos_cluster.bench.cluster import run_cluster_bench
    from memos_cluster.data.locomo import locomo_texts

    texts = locomo_texts(_needs(data), first=1)
    config = with_overrides(config, {"cluster.num_shards": 1, "scheduler.enabled": False})
    with simulated_cluster(config, workers=2, prefix="memos-bench-") as sim:
        return run_cluster_bench(sim, texts)


def bench_load(args, config: MemosConfig, data: Optional[str]) -> dict:
    """A scenario file's load (load_tests/scenarios/), against --address or a fresh local
    cluster (which synthetic-vector scenarios need: they seed as a Ray driver)."""
    from memos_cluster.bench.load import load_scenario
    from memos_cluster.bench.load_run import run_load

    if not args.scenario:
        raise SystemExit("bench load needs --scenario FILE (see load_tests/scenarios/)")
    scenario = load_scenario(args.scenario)
    if args.clients:  # e.g. one client, for latency without queueing
        scenario = dataclasses.replace(scenario, clients=args.clients)
    plot = args.plot or (str(Path(args.out).with_suffix(".png")) if args.out else None)
    if args.address:
        return run_load(gateway_address(args, config), scenario, config.gateway.app_name,
                        plot_path=plot)
    from actors.cluster import temporary_cluster
    from memos_cluster.bench.ray_ops import synthetic_writer

    config = with_overrides(config, {"scheduler.enabled": False})
    with temporary_cluster(config, prefix="memos-load-") as client:
        # The running cluster's directory and shards (they exist: the config's paths are not
        # used to find them, its namespace and limits are).
        writer = synthetic_writer(config) if scenario.vectors == "synthetic" else None
        return run_load(client.address, scenario, config.gateway.app_name, writer, plot)


def bench_drills(args, config: MemosConfig, data: Optional[str]) -> dict:
    """The failure drills on a fresh local cluster: two gateway replicas (a lost one is the
    drill), small KV budgets (so activation memory overflows them), the scheduler on."""
    from actors.cluster import temporary_cluster
    from memos_cluster.bench.ray_ops import drill_ops
    from memos_cluster.bench.drills import run_drills

    config = with_overrides(config, {
        "gateway.num_replicas": 2, "activation.device_budget_bytes": 2 * 1024 * 1024,
        "activation.host_budget_bytes": 4 * 1024 * 1024, "scheduler.interval_s": 5})
    with temporary_cluster(config, prefix="memos-drills-") as client:
        return run_drills(client.address, drill_ops(config))


def bench_lifecycle(args, config: MemosConfig, data: Optional[str]) -> dict:
    """The changing-facts bench on a fresh local cluster, the scheduler on (cycles every 2 s),
    or against --address."""
    from memos_cluster.bench.lifecycle import run_lifecycle_bench
    from memos_cluster.data.locomo import load_locomo, locomo_memories

    samples = load_locomo(_needs(data))
    distractors = [locomo_memories(s) for s in samples if s["sample_id"] == args.conversation]
    run = dict(distractors=distractors[0] if distractors else [], samples=samples,
               memories_of=locomo_memories, generate_changes=args.pairs,
               steps=args.steps)
    if args.address:
        return run_lifecycle_bench(client_for(args, config), **run)
    from actors.cluster import temporary_cluster

    fast = with_overrides(config, {"scheduler.interval_s": 2.0})
    with temporary_cluster(fast, prefix="memos-bench-") as client:
        return run_lifecycle_bench(client, **run)


BENCHES = {"gateway": bench_gateway, "lifecycle": bench_lifecycle, "locomo": bench_locomo,
           "kv": bench_kv, "chat": bench_chat, "lora": bench_lora, "qa": bench_qa, "fidelity": bench_fidelity,
           "parametric": bench_parametric, "tiers": bench_tiers, "cluster": bench_cluster,
           "load": bench_load, "drills": bench_drills}


def cmd_bench(args, config: MemosConfig) -> int:
    from memos_cluster.bench.stats import write_json

    write_json(BENCHES[args.which](args, config, args.data or default_locomo_path()), args.out)
    return 0


def add_bench_command(sub):
    """Who calls it: `memos_cluster.cli.build_parser`."""
    bench = sub.add_parser("bench", help="benchmarks: gateway (latency), locomo (retrieval), "
                                         "kv (activation memory), chat (multi-turn reuse), "
                                         "lora (parametric memory), "
                                         "qa (answers with each tier), fidelity (tiers against a full "
                                         "prefill), tiers (scheduler), "
                                         "cluster (shards, rebalance, failures), load, drills, "
                                         "lifecycle (facts that change)")
    bench.add_argument("which", choices=sorted(BENCHES))
    bench.add_argument("--data", help="LoCoMo file")
    bench.add_argument("--conversation", default=SAMPLE_CONVERSATION,
                       help="gateway, tiers, chat: which one")
    bench.add_argument("--turns", default="5,10,20", help="chat: turns of each conversation")
    bench.add_argument("--conversations", help="locomo, fidelity: sample ids, comma-separated "
                                               "(all); qa: (conv-26)")
    bench.add_argument("--per-category", type=int, default=0,
                       help="qa: questions of each category 1-4 per conversation (0: all)")
    bench.add_argument("--k", default="5,10,25,50", help="locomo: turn budgets")
    bench.add_argument("--cross-validate", action="store_true",
                       help="locomo: leave-one-conversation-out cross-validation of the "
                            "search's choices, in-process (bench/locomo_cv.py)")
    bench.add_argument("--embedders", default="minilm",
                       help="locomo --cross-validate: dense models to try (minilm, e5)")
    bench.add_argument("--out", help="write the figures as JSON here")
    bench.add_argument("--model", help="kv, lora: model (default: activation.model)")
    bench.add_argument("--device", help="kv, lora: cpu or cuda (default: cuda if available)")
    bench.add_argument("--memory-tokens", default="",
                       help="kv: block sizes (default: 512, 2048 and the largest that fits "
                            "the model's context)")
    bench.add_argument("--query-tokens", default="32,512", help="kv: query sizes")
    bench.add_argument("--repeats", type=int, default=3, help="kv: timed runs per size")
    bench.add_argument("--requests", type=int, default=200, help="tiers: Generate requests an arm")
    bench.add_argument("--top-k", type=int, default=4,
                       help="tiers, qa, fidelity: memories retrieved a request")
    bench.add_argument("--block-memories", type=int, default=0,
                       help="tiers: scheduler.max_block_memories for the local cluster "
                            "(0: the configured one)")
    bench.add_argument("--scenario", help="load: a scenario file (load_tests/scenarios/*.yaml)")
    bench.add_argument("--clients", type=int, default=0,
                       help="load: concurrent clients (default: the scenario's)")
    bench.add_argument("--steps", type=int, default=150,
                       help="parametric, lifecycle: LoRA steps (of parametric.batch_size "
                            "examples; parametric.steps is the cluster's)")
    bench.add_argument("--max-new-tokens", type=int, default=16,
                       help="qa, chat: tokens an answer may have (LoCoMo's gold answers are "
                            "short)")
    bench.add_argument("--categories",
                       help="qa: LoCoMo question categories to answer, e.g. 2 (temporal); "
                            "default 1,2,3,4")
    bench.add_argument("--plot", help="load, qa, chat: a PNG (default: --out with .png)")
    bench.add_argument("--arms", help="comma-separated; fidelity: compose[+anchor][@ratio]"
                                      "[:rule] (bench/fidelity.py); qa, tiers: arm "
                                      "names (all; plaintext / off always runs)")
    bench.add_argument("--pairs", type=int, default=40,
                       help="fidelity: (memories, question) pairs per conversation; "
                            "parametric: questions a split; lifecycle: changes asked with "
                            "Generate after their old facts were promoted")
    bench.add_argument("--holdout", help="fidelity: the conversation reported apart from the "
                                         "others (tune on those, report this one)")
    return bench
