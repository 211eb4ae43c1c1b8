"""Whether a query is one a question adapter was trained on. Pure numpy.

A question adapter answers its cube's frequent questions from the question alone
(distill.py); for any other query it would answer from what it half-remembers. So memory_mode
auto applies it only when the query's embedding is within `parametric.gate_similarity`
(cosine) of one of the questions it was trained on (each question and its trained rewrites);
otherwise retrieval answers with the adapter off, so a question adapter can never make an
answer to another question worse.

Who uses it: `ActivationService` (memory_mode auto), with the query's and the questions'
embeddings from the plaintext tier's embedder; `bench parametric`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class GateDecision:
    admitted: bool
    similarity: float  # the cosine to the nearest trained question (-1 when it has none)
    nearest: int  # that question's index, -1 when none


def nearest_question(query: np.ndarray, questions: np.ndarray, threshold: float) -> GateDecision:
    """`query`: an L2-normalised vector [dim]; `questions`: normalised rows [n, dim]."""
    if questions.size == 0:
        return GateDecision(False, -1.0, -1)
    similarities = questions @ query
    index = int(np.argmax(similarities))
    best = float(similarities[index])
    return GateDecision(best >= threshold, best, index)


def stack(vectors: Sequence[Sequence[float]]) -> np.ndarray:
    """Rows of vectors as one float32 matrix (shape [0, 0] for none)."""
    if not len(vectors):
        return np.zeros((0, 0), dtype=np.float32)
    return np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1)
