"""Serving adapters: one base model with any number of cubes' LoRA adapters loaded onto it, and
per request the set that applies (several at once: peft sums the active adapters' deltas).

peft injects its layers into the base model's modules and the active set is state of the model,
so every forward pass runs under one lock: requests on one KV actor are serialized. That is
correct first; per-row adapters in batched decoding would lift it.

Who uses it: `ActivationEngine` (every prefill and decode goes through `using`) and the KV-cache
actor (`load` before a request that names adapters).
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from memos_cluster.core.errors import FailedPrecondition


class AdapterHost:
    def __init__(self, base_model: Any):
        self.base = base_model
        self._peft: Any = None
        self._loaded: set[str] = set()
        self._lock = threading.RLock()

    @property
    def loaded(self) -> frozenset[str]:
        return frozenset(self._loaded)

    def load(self, name: str, path: Path) -> None:
        """Load an adapter (a peft directory) under `name`, once."""
        with self._lock:
            if name in self._loaded:
                return
            if self._peft is None:
                from peft import PeftModel

                self._peft = PeftModel.from_pretrained(self.base, str(path), adapter_name=name)
                self._peft.eval()
            else:
                self._peft.load_adapter(str(path), adapter_name=name)
            self._loaded.add(name)

    @contextmanager
    def using(self, names: Sequence[str]) -> Iterator[Any]:
        """The model to call with exactly these adapters active (none: the plain base)."""
        missing = [n for n in names if n not in self._loaded]
        if missing:
            raise FailedPrecondition(f"adapters {missing} are not loaded")
        with self._lock:
            if self._peft is None:
                yield self.base
            elif names:
                self._peft.base_model.set_adapter(list(names))
                yield self._peft
            else:
                with self._peft.disable_adapter():
                    yield self._peft
