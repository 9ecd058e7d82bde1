"""Face vectors: FaceNet embeddings as unit vectors, and the small numpy helpers every people module shares."""

from __future__ import annotations

import numpy as np

# FaceNet-128.
EMBEDDING_DIMS = 128


def normalise(embeddings: np.ndarray) -> np.ndarray:
    vectors = np.asarray(embeddings, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, np.finfo(np.float32).tiny)


def fingerprints(vectors: np.ndarray) -> np.ndarray:
    """One uint64 per row that changes when the row's values change: tells a face indexed with its current
    embedding from one re-embedded since (a new model, a re-run detector)."""
    bits = np.ascontiguousarray(vectors, dtype=np.float32).view(np.uint32).astype(np.uint64)
    multipliers = np.random.default_rng(0).integers(1, 2**63, size=bits.shape[1], dtype=np.uint64) | np.uint64(1)
    return (bits * multipliers).sum(axis=1, dtype=np.uint64)  # wraps modulo 2^64: a hash, not a sum


def sum_by(labels: np.ndarray, values: np.ndarray, groups: int) -> np.ndarray:
    """Rows of `values` summed per label (a sort and one reduceat: far faster than np.add.at on rows)."""
    order = np.argsort(labels, kind="stable")
    present, starts = np.unique(labels[order], return_index=True)
    result = np.zeros((groups, *values.shape[1:]), dtype=values.dtype)
    if len(order):
        result[present] = np.add.reduceat(values[order], starts, axis=0)
    return result
