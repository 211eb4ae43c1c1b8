"""LoRATrainerActor: trains cubes' adapters in the background (`memos_cluster.parametric`).

A thin wrapper around `AdapterTrainer`, on a GPU where the cluster has one. It loads the same
base model as the KV-cache actors (`activation.model`), once, on first use. Training runs in the
actor's threads, so its methods (start, job, cancel) answer while a run is in progress; serving
happens in the KV-cache actors and never waits for training. Jobs live in the actor: after a
restart their status is gone, while finished adapters stay in the store.
"""
from __future__ import annotations

import threading
from typing import Any, Optional, Sequence

import ray

from memos_cluster.core.config import MemosConfig
from memos_cluster.core.logs import configure_json_logging
from memos_cluster.core.tier_types import BlockMemory, TrainingJob
from memos_cluster.tiers.llm.model import default_device, load_causal_lm, resolve_model
from memos_cluster.tiers.parametric.store import AdapterStore
from memos_cluster.tiers.parametric.distill import Lesson
from memos_cluster.tiers.parametric.trainer import AdapterTrainer
from memos_cluster.tiers.parametric.training import LoraSpec

from actors import metrics
from actors.names import LORA_ACTOR_NAME



class LoRATrainerActor:
    def __init__(self, config: MemosConfig):
        configure_json_logging("lora-trainer")
        self._config = config
        self._base: Optional[tuple[Any, Any, Any]] = None
        self._lock = threading.Lock()
        self._trainer = AdapterTrainer(
            self._load_base, AdapterStore(config.adapter_store_uri()),
            on_finished=lambda job: metrics.inc("memos_training_runs_total",
                                                outcome=job.status))

    def _load_base(self):
        with self._lock:
            if self._base is None:
                device = default_device()
                path, identity = resolve_model(self._config.activation.model,
                                               self._config.model_cache_dir())
                model, tokenizer = load_causal_lm(path, device)
                self._base = (model, tokenizer, identity)
            return self._base

    def start(self, cube_id: str, memories: Sequence[BlockMemory], spec: LoraSpec) -> TrainingJob:
        return self._trainer.start(cube_id, memories, spec)

    def start_questions(self, cube_id: str, lessons: Sequence[Lesson],
                        spec: LoraSpec) -> TrainingJob:
        return self._trainer.start_questions(cube_id, lessons, spec)

    def job(self, job_id: str) -> TrainingJob:
        return self._trainer.job(job_id)

    def cancel(self, job_id: str) -> TrainingJob:
        return self._trainer.cancel(job_id)


def create_lora_actor(config: MemosConfig):
    """Get or create the named trainer, on a GPU where the cluster has one."""
    has_gpu = ray.cluster_resources().get("GPU", 0) >= 1
    return ray.remote(LoRATrainerActor).options(
        name=LORA_ACTOR_NAME, namespace=config.ray.namespace, lifetime="detached",
        get_if_exists=True, max_restarts=-1, max_task_retries=0, max_concurrency=8,
        num_cpus=0, num_gpus=0.5 if has_gpu else 0,  # shares a GPU with a KV-cache actor
    ).remote(config)
