"""Synthetic-vector seeding for the large-cube load scenario: items written straight to their
shard with random unit vectors (of the embedder's dimension) instead of embeddings, so a cube
of 100k+ items is ready in a minute instead of the embedder's ~7 minutes. Searches still embed
their queries for real; only what the cube holds is synthetic (retrieval quality is not what
such a run measures).

Who calls it: `memos-cluster bench load` on a cluster it runs as a driver of.
"""
from __future__ import annotations

import asyncio

import numpy as np

from memos_cluster.config import MemosConfig
from memos_cluster.embedder import MINILM_DIM
from memos_cluster.load_run import WriteEmbedded
from memos_cluster.types import NewMemory

from actors.services import memory_service




def synthetic_writer(config: MemosConfig, seed: int = 11) -> WriteEmbedded:
    """A WriteEmbedded over this driver's Ray connection (the cluster must be running)."""
    memory = memory_service(config)
    rng = np.random.default_rng(seed)

    def write(cube_id: str, items: list[NewMemory]) -> None:
        vectors = rng.standard_normal((len(items), MINILM_DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        asyncio.run(memory.add_embedded(cube_id, items, vectors.tolist()))
    return write
