"""Training jobs: a cube's memories become a new adapter version, in the background.

One job runs at a time (they share one base model, which peft modifies while it trains); others
wait as `queued`. A cube has at most one unfinished job. A job that fails or is cancelled writes
nothing, so the cube's previous adapter keeps serving. Progress (step, loss) is readable while it
runs.

Who uses it: the LoRA trainer actor (`actors/lora.py`) holds one and forwards to it.
"""
from __future__ import annotations

import tempfile
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from memos_cluster.core.errors import FailedPrecondition, InvalidArgument, NotFound
from memos_cluster.core.tier_types import AdapterRecord, BlockMemory, TrainingJob
from memos_cluster.tiers.llm.model import ModelIdentity
from memos_cluster.tiers.parametric.distill import (
    Lesson, agreement, distill_lora, layout_of, learned, teach)
from memos_cluster.tiers.parametric.store import AdapterStore, local_size_bytes
from memos_cluster.tiers.parametric.training import (
    LoraSpec, TrainingCancelled, mean_token_loss, timed, train_lora)

UNFINISHED = ("queued", "running")


BaseLoader = Callable[[], tuple[Any, Any, ModelIdentity]]  # -> (model, tokenizer, identity)


class AdapterTrainer:
    def __init__(self, load_base: BaseLoader, store: AdapterStore,
                 clock: Callable[[], float] = time.time,
                 on_finished: Optional[Callable[[TrainingJob], None]] = None):
        """on_finished: called with each job once it has ended (succeeded, failed or
        cancelled), from the job's thread; the actor counts runs with it."""
        self._load_base = load_base
        self._store = store
        self._clock = clock
        self._on_finished = on_finished
        self._jobs: dict[str, TrainingJob] = {}
        self._cancel: dict[str, threading.Event] = {}
        self._lock = threading.Lock()  # guards _jobs
        self._train_lock = threading.Lock()  # one training run at a time

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _set(self, job_id: str, **changes: Any) -> TrainingJob:
        with self._lock:
            self._jobs[job_id] = replace(self._jobs[job_id], **changes)
            return self._jobs[job_id]

    def start(self, cube_id: str, memories: Sequence[BlockMemory], spec: LoraSpec) -> TrainingJob:
        """Queue a run on these memories (current versions) and return at once."""
        return self._queue(cube_id, spec, lambda job_id, stop: self._train_and_save(
            job_id, tuple(memories), spec, stop))

    def start_questions(self, cube_id: str, lessons: Sequence[Lesson],
                        spec: LoraSpec) -> TrainingJob:
        """Queue a question adapter's run (distill.py): the lessons' questions answered as
        the base model answers them with their memories, from the question alone."""
        if not lessons:
            raise InvalidArgument("no questions to learn", "questions")
        return self._queue(cube_id, spec, lambda job_id, stop: self._distill_and_save(
            job_id, tuple(lessons), spec, stop))

    def _queue(self, cube_id: str, spec: LoraSpec,
               work: Callable[[str, threading.Event], int]) -> TrainingJob:
        spec.check()
        with self._lock:
            busy = [j for j in self._jobs.values()
                    if j.cube_id == cube_id and j.status in UNFINISHED]
            if busy:
                raise FailedPrecondition(f"cube {cube_id!r} already has training job "
                                         f"{busy[0].job_id} ({busy[0].status})", "cube_id")
            job = TrainingJob(uuid.uuid4().hex[:12], cube_id, "queued", steps=spec.steps,
                              created_at_ms=self._now_ms())
            self._jobs[job.job_id] = job
            self._cancel[job.job_id] = threading.Event()
        threading.Thread(target=self._run, args=(job.job_id, work),
                         name=f"train-{job.job_id}", daemon=True).start()
        return job

    def job(self, job_id: str) -> TrainingJob:
        with self._lock:
            if job_id not in self._jobs:
                raise NotFound(f"no training job {job_id!r}", "job_id")
            return self._jobs[job_id]

    def jobs(self, cube_id: Optional[str] = None) -> list[TrainingJob]:
        with self._lock:
            return [j for j in self._jobs.values() if cube_id is None or j.cube_id == cube_id]

    def cancel(self, job_id: str) -> TrainingJob:
        job = self.job(job_id)
        if job.status in UNFINISHED:
            self._cancel[job_id].set()
        return self.job(job_id)

    def wait(self, job_id: str, timeout_s: float) -> TrainingJob:
        """Block until the job has finished (tests, bench)."""
        deadline = time.monotonic() + timeout_s
        while self.job(job_id).status in UNFINISHED and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.job(job_id)

    def shutdown(self, timeout_s: float = 60.0) -> None:
        """Cancel every unfinished job and wait for their threads to stop. Who calls it: whoever
        owns the trainer, before the process exits (a thread killed inside torch at interpreter
        exit aborts the process)."""
        for job in self.jobs():
            if job.status in UNFINISHED:
                self.cancel(job.job_id)
                self.wait(job.job_id, timeout_s)

    def _run(self, job_id: str, work: Callable[[str, threading.Event], int]) -> None:
        """The job's thread: failures end up in the job's status and error, which is how they
        are reported (nothing is written to the store unless the run succeeds)."""
        try:
            self._train_job(job_id, work)
        finally:
            if self._on_finished is not None:
                self._on_finished(self.job(job_id))

    def _train_job(self, job_id: str, work: Callable[[str, threading.Event], int]) -> None:
        stop = self._cancel[job_id]
        with self._train_lock:
            if stop.is_set():
                self._set(job_id, status="cancelled", finished_at_ms=self._now_ms())
                return
            self._set(job_id, status="running")
            try:
                version = work(job_id, stop)
            except TrainingCancelled:
                self._set(job_id, status="cancelled", finished_at_ms=self._now_ms())
            except Exception as exc:  # reported through the job, see docstring
                self._set(job_id, status="failed", error=f"{type(exc).__name__}: {exc}",
                          finished_at_ms=self._now_ms())
            else:
                self._set(job_id, status="succeeded", version=version,
                          finished_at_ms=self._now_ms())

    def _train_and_save(self, job_id: str, memories: tuple[BlockMemory, ...], spec: LoraSpec,
                        stop: threading.Event) -> int:
        model, tokenizer, identity = self._load_base()
        cube_id = self.job(job_id).cube_id
        texts = [m.text for m in memories]
        times = [m.event_time_ms for m in memories]  # shown as dates, as prompts show them
        base_loss = mean_token_loss(model, tokenizer, texts, spec.max_tokens, times)
        peft_model, train_s = timed(lambda: train_lora(
            model, tokenizer, texts, spec,
            on_step=lambda step, loss: self._set(job_id, step=step, loss=loss),
            should_stop=stop.is_set, times=times))
        try:
            adapter_loss = mean_token_loss(peft_model, tokenizer, texts, spec.max_tokens, times)
            with tempfile.TemporaryDirectory(prefix="memos-adapter-") as scratch:
                peft_model.save_pretrained(scratch)
                record = AdapterRecord(
                    cube_id=cube_id, version=self._store.next_version(cube_id),
                    base=identity.as_metadata(),
                    memories=tuple((m.memory_id, m.version) for m in memories),
                    spec=spec.as_dict(),
                    metrics={"base_loss": round(base_loss, 4),
                             "adapter_loss": round(adapter_loss, 4),
                             "train_s": round(train_s, 2),
                             "adapter_bytes": local_size_bytes(Path(scratch))},
                    created_at_ms=self._now_ms())
                if stop.is_set():
                    raise TrainingCancelled("cancelled before saving")
                return self._store.save(record, Path(scratch)).version
        finally:
            peft_model.unload()  # the base model is plain again for the next job

    def _distill_and_save(self, job_id: str, lessons: tuple[Lesson, ...], spec: LoraSpec,
                          stop: threading.Event) -> int:
        """Teacher targets, the student trained, judged on held-out rewrites against the
        cube's current question adapter, and saved: as current when it agrees with the teacher
        at least as well, else as rejected (kept with its figures, never served)."""
        model, tokenizer, identity = self._load_base()
        cube_id = self.job(job_id).cube_id
        layout = layout_of(model, tokenizer)
        (targets, dropped), teach_s = timed(lambda: teach(model, layout, lessons))
        base = {"trained": agreement(model, layout, targets, False),
                "held_out": agreement(model, layout, targets, True)}
        peft_model, train_s = timed(lambda: distill_lora(
            model, layout, targets, spec,
            on_step=lambda step, loss: self._set(job_id, step=step, loss=loss),
            should_stop=stop.is_set))
        try:
            held_out = agreement(peft_model, layout, targets, True)
            answered, trained = learned(peft_model, layout, targets)
            previous = self._store.current(cube_id)
            bar = previous.metrics.get("held_out_agreement", 0.0) \
                if previous is not None and previous.spec.get("kind") == "questions" else 0.0
            memories = {(m.memory_id, m.version) for lesson in lessons for m in lesson.memories
                        if any(t.question == lesson.question for t in targets)}
            with tempfile.TemporaryDirectory(prefix="memos-adapter-") as scratch:
                peft_model.save_pretrained(scratch)
                record = AdapterRecord(
                    cube_id=cube_id, version=self._store.next_version(cube_id),
                    base=identity.as_metadata(), memories=tuple(sorted(memories)),
                    spec={**spec.as_dict(), "kind": "questions"},
                    metrics={"questions": len(targets), "dropped_questions": dropped,
                             "learned_texts": len(answered),
                             "trained_agreement": trained,
                             "held_out_agreement": held_out,
                             "base_trained_agreement": base["trained"],
                             "base_held_out_agreement": base["held_out"],
                             "bar": bar, "teach_s": round(teach_s, 2),
                             "train_s": round(train_s, 2),
                             "adapter_bytes": local_size_bytes(Path(scratch))},
                    created_at_ms=self._now_ms(), rejected=held_out < bar,
                    questions=tuple(answered))
                if stop.is_set():
                    raise TrainingCancelled("cancelled before saving")
                return self._store.save(record, Path(scratch)).version
        finally:
            peft_model.unload()
