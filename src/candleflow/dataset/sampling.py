"""Which windows a training epoch visits, and in which order: seeded permutations, class-balanced
draws and 'balanced' class weights. numpy only, shared by the Keras loaders and the adapters."""

from __future__ import annotations

import numpy as np


def class_weights(y: np.ndarray, n_classes: int = 3) -> np.ndarray:
    """'Balanced' weights n / (k * count_c), as scikit-learn computes them; 0 for absent classes."""
    counts = np.bincount(y[y >= 0], minlength=n_classes).astype(np.float64)
    w = np.zeros(n_classes)
    present = counts > 0
    w[present] = counts.sum() / (present.sum() * counts[present])
    return w


def epoch_order(n: int, shuffle: bool, seed: int, epoch: int) -> np.ndarray:
    """0..n-1, or their permutation by default_rng([seed, epoch]); int32 while n fits (half the memory)."""
    index = np.arange(n, dtype=np.int32 if n < 2**31 else np.int64)
    if shuffle:
        np.random.default_rng([seed, epoch]).shuffle(index)
    return index


def balanced_indices(y: np.ndarray, seed: int, epoch: int) -> np.ndarray:
    """len(y) indices drawn with equal odds per present class (then uniformly within the class),
    from default_rng([seed, epoch]): each epoch a fresh, class-balanced sample."""
    rng = np.random.default_rng([seed, epoch])
    classes = [np.flatnonzero(y == c) for c in np.unique(y[y >= 0])]
    pick = rng.integers(0, len(classes), y.shape[0])
    out = np.empty(y.shape[0], dtype=np.int64)
    for k, members in enumerate(classes):
        where = np.flatnonzero(pick == k)
        out[where] = members[rng.integers(0, members.size, where.size)]
    return out
