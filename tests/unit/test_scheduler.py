"""The scheduler end to end in one process, on the real tiers (milvus-lite plaintext, the
activation engine, peft training) with an injected clock: hot memories are promoted and served
from activation memory, consolidated into an adapter, demoted when they cool; an oscillating
workload does not thrash; a restarted scheduler resumes with its frequencies."""
import asyncio

import pytest

from memos_cluster.core.config import MemosConfig, with_overrides
from memos_cluster.core.tier_types import GenerateCall, GenerateStats, SamplingParams
from memos_cluster.core.types import CubeSpec, NewMemory
from memos_cluster.embed import make_embedder
from memos_cluster.placement.shardmap import HashRing
from memos_cluster.scheduler.frequency import AccessEvent
from memos_cluster.scheduler.scheduler import Scheduler
from memos_cluster.tiers.activation.host import KVHost
from memos_cluster.tiers.activation.service import ActivationService
from memos_cluster.tiers.llm.model import load_causal_lm, resolve_model
from memos_cluster.tiers.parametric.service import ParametricService
from memos_cluster.tiers.parametric.store import AdapterStore
from memos_cluster.tiers.parametric.trainer import AdapterTrainer
from memos_cluster.tiers.plaintext.service import LocalShard, MemoryService
from memos_cluster.tiers.plaintext.tier import PlaintextTier

HALF_LIFE_S = 100.0


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


class LocalKV:
    """The KV port over an in-process KVHost (what the KV actor wraps)."""

    def __init__(self, host):
        self.host = host

    async def set_block(self, cube_id, memories):
        return await asyncio.to_thread(self.host.set_block, cube_id, memories)

    async def selection(self, cube_ids):
        return self.host.selection(cube_ids)

    async def generate(self, request, adapters=()):
        for event in self.host.generate(request, adapters):
            yield event

    async def invalidate(self, cube_id, memory_ids, deleted):
        return self.host.invalidate(cube_id, memory_ids, deleted)


class LocalTrainer:
    """The trainer port over an in-process AdapterTrainer (what the LoRA actor wraps)."""

    def __init__(self, trainer):
        self.trainer = trainer
        self.lessons = []  # what question runs were asked to learn

    async def start_questions(self, cube_id, lessons, spec):
        self.lessons = list(lessons)
        return self.trainer.start_questions(cube_id, lessons, spec)

    async def start(self, cube_id, memories, spec):
        return self.trainer.start(cube_id, memories, spec)

    async def job(self, job_id):
        return self.trainer.job(job_id)

    async def cancel(self, job_id):
        return self.trainer.cancel(job_id)


PORTS = {}


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    root = tmp_path_factory.mktemp("sched")
    # The reader in-process: a worker process a tier would cost seconds a test
    # (tests/unit/test_reader_process.py covers it).
    config = with_overrides(MemosConfig(), {"reader.own_process": False,
        "data_dir": str(root), "parametric.steps": 5, "parametric.rank": 4,
        # Scheduling mechanics only: the fast random-weight model.
        "activation.model": "builtin:tiny-llama",
        "scheduler.half_life_s": HALF_LIFE_S, "scheduler.promote_frequency": 3.0,
        "scheduler.demote_frequency": 1.0, "scheduler.min_residency_s": 50.0,
        "scheduler.consolidate_frequency": 4.0, "scheduler.consolidate_min_age_s": 150.0,
        "scheduler.stable_s": 150.0, "scheduler.min_retrain_interval_s": 10_000.0})
    clock = Clock()
    tier = PlaintextTier(config, "shard-0", make_embedder(config.embedder,
                                                          str(config.model_cache_dir())))
    tier.open()
    memory = MemoryService(config, HashRing(["shard-0"], 8), {"shard-0": LocalShard(tier)})
    host = KVHost(config, "kv-0", AdapterStore(config.adapter_store_uri()), device="cpu")
    path, identity = resolve_model(config.activation.model, config.model_cache_dir())
    base = load_causal_lm(path, "cpu")
    trainer = AdapterTrainer(lambda: (*base, identity), AdapterStore(config.adapter_store_uri()))
    parametric = ParametricService(config, memory, AdapterStore(config.adapter_store_uri()),
                                   LocalTrainer(trainer))
    activation = ActivationService(config, memory, HashRing(["kv-0"], 8),
                                   {"kv-0": LocalKV(host)}, adapters_for=parametric.current)
    make = lambda: Scheduler(config, activation, parametric,  # noqa: E731
                             config.scheduler_state_path(), clock, memory=memory)
    PORTS["trainer"] = parametric._trainer  # the LocalTrainer, for test_frequent_questions_...
    yield config, clock, memory, activation, trainer, make
    trainer.shutdown()
    tier.close()


def run(coroutine):
    return asyncio.run(coroutine)


def touch(scheduler, clock, cube, ids, times=1, query=""):
    """`times` requests, each reaching every memory of `ids` (with `query`, when given)."""
    for _ in range(times):
        scheduler.record([AccessEvent(cube, i, 1, "search", clock.now, query) for i in ids])
        clock.now += 0.001


def test_hot_memories_flow_through_the_tiers(system):
    config, clock, memory, activation, trainer, make = system
    run(memory.create_cube(CubeSpec("team")))
    run(memory.add("team", [NewMemory(f"Note {i}: the {w} is in the {p}", id=f"n{i}")
                            for i, (w, p) in enumerate([("key", "drawer"), ("map", "car"),
                                                        ("torch", "shed"), ("rope", "boat")])]))
    scheduler = make()
    touch(scheduler, clock, "team", ["n0", "n1"], times=5)
    touch(scheduler, clock, "team", ["n2"])
    plan = run(scheduler.cycle())
    assert set(plan.promoted) == {("team", "n0"), ("team", "n1")}
    assert run(activation.selections(["team"])) == {"team": ["n0", "n1"]}

    async def generate():
        events = [e async for e in activation.generate(GenerateCall(
            ("team",), "where is the key?", SamplingParams(max_new_tokens=3)))]
        return events[-1]
    stats = run(generate())
    assert isinstance(stats, GenerateStats) and stats.prefill_tokens_saved > 0

    # Still hot and now old and stable enough: consolidated into the cube's adapter.
    for _ in range(4):
        clock.now += 50
        touch(scheduler, clock, "team", ["n0", "n1"], times=2)
    plan = run(scheduler.cycle())
    assert plan.consolidate == {"team": ("n0", "n1")}
    job_id = scheduler._jobs["team"]
    assert trainer.wait(job_id, 300).status == "succeeded"
    run(scheduler.cycle())  # notices the finished run
    status = run(scheduler.tier_status("team"))
    log = status.migrations
    tiers = {r.memory_id: r.tiers for r in status.memories}
    assert tiers["n0"] == ("plaintext", "activation", "parametric")
    assert tiers["n2"] == ("plaintext",)
    assert [m.action for m in log].count("consolidated") == 1

    # Cooling: several half-lives without access demote them.
    clock.now += 6 * HALF_LIFE_S
    plan = run(scheduler.cycle())
    assert set(plan.demoted) == {("team", "n0"), ("team", "n1")}
    assert run(activation.selections(["team"])) == {"team": []}

    # A restart resumes with the frequencies (checkpoint -> restore).
    touch(scheduler, clock, "team", ["n3"], times=4)
    scheduler.checkpoint()
    restarted = make()
    assert restarted.restore()
    assert restarted.frequency("team", "n3") == pytest.approx(scheduler.frequency("team", "n3"))
    assert restarted.frequency("team", "n3") > 3


def test_an_oscillating_workload_does_not_thrash(system):
    config, clock, memory, activation, _, make = system
    run(memory.create_cube(CubeSpec("osc")))
    run(memory.add("osc", [NewMemory("the tide table for the harbour", id="tide")]))
    scheduler = make()
    moves = 0
    for cycle in range(20):  # bursts every other 40 s period
        if cycle % 2 == 0:
            touch(scheduler, clock, "osc", ["tide"], times=2)
        plan = run(scheduler.cycle())
        moves += len(plan.promoted) + len(plan.demoted)
        clock.now += 40
    assert moves == 1  # promoted once, then held by hysteresis
    assert run(activation.selections(["osc"])) == {"osc": ["tide"]}


def test_paused_scheduler_plans_nothing(system):
    _, clock, _, _, _, make = system
    scheduler = make()
    touch(scheduler, clock, "team", ["n0"], times=10)
    scheduler.paused = True
    assert run(scheduler.cycle()).is_empty


def test_near_duplicates_are_merged_with_lineage(system):
    _, clock, memory, _, _, make = system
    run(memory.create_cube(CubeSpec("dups")))
    run(memory.add("dups", [NewMemory("The spare key is under the blue flower pot", id="k1"),
                            NewMemory("The spare key is under the blue flower pot.", id="k2"),
                            NewMemory("Lunch is at noon on Fridays", id="lunch")]))
    scheduler = make()
    touch(scheduler, clock, "dups", ["k1"], times=3)
    touch(scheduler, clock, "dups", ["k2"])
    clock.now += 1000  # past stable_s, still warm
    plan = run(scheduler.cycle())
    assert plan.merge == (("dups", "k1", ("k2",)),)
    assert run(memory.get("dups", ["k1", "k2", "lunch"])).missing_ids == ("k2",)
    (archived,) = run(memory.history("dups", "k2"))
    assert archived.metadata["merged_into"] == "k1"
    kept = run(memory.get("dups", ["k1"])).items[0]
    assert kept.metadata["merged_from"] == ["k2@1"]
    assert run(scheduler.cycle()).merge == ()  # nothing left to merge


def test_frequent_questions_become_a_question_adapter(system):
    """Consolidation of a cube asked the same question often trains a question adapter on
    it (the question and its retrieved memories), not a memory-recall one; a question asked
    too rarely is not learnt."""
    _, clock, memory, _, trainer, make = system
    run(memory.create_cube(CubeSpec("asked")))
    run(memory.add("asked", [NewMemory("The spare key is in the kitchen drawer", id="key"),
                             NewMemory("The bikes are in the garden shed", id="bikes")]))
    scheduler = make()
    for _ in range(4):  # hot, old and stable enough to consolidate (see the fixture)
        touch(scheduler, clock, "asked", ["key"], times=2, query="Where is the spare key?")
        clock.now += 50
    touch(scheduler, clock, "asked", ["key"], times=3, query="Where is the spare key?")
    touch(scheduler, clock, "asked", ["bikes"], query="Where are the bikes?")
    plan = run(scheduler.cycle())
    assert "asked" in plan.consolidate
    (lesson,) = PORTS["trainer"].lessons
    assert lesson.question == "Where is the spare key?"
    assert "key" in [m.memory_id for m in lesson.memories]
    log = run(scheduler.tier_status("asked")).migrations
    assert "on 1 questions" in [m for m in log if m.action == "consolidate"][-1].detail
    # The random-weight model's answers share no word with the memory: nothing learnt, and
    # the run says so when the scheduler next looks.
    job = trainer.wait(scheduler._jobs["asked"], 300)
    assert job.status == "failed" and "answered from its memories" in job.error
