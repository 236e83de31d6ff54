"""The moving-block bootstrap every interval in candleflow comes from (a single run's edge, a
walk-forward study's): resamples of consecutive windows, so the overlap of neighbouring windows'
labels is kept inside each block instead of being mistaken for independent evidence."""

from __future__ import annotations

import numpy as np


def block_indices(n: int, block: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples, n) indices of a moving block bootstrap: blocks of `block` consecutive windows."""
    block = max(1, min(block, n))
    n_blocks = -(-n // block)
    starts = rng.integers(0, n - block + 1, size=(resamples, n_blocks))
    idx = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(resamples, -1)[:, :n]
    return idx.astype(np.int32)


def ci95(values: np.ndarray) -> list[float]:
    """The 2.5% and 97.5% quantiles."""
    return [float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))]


def balanced_accuracy_resampled(y: np.ndarray, pred: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Balanced accuracy of `pred` on each bootstrap resample (rows of idx), vectorised."""
    r = idx.shape[0]
    codes = (np.arange(r)[:, None] * 9 + y[idx].astype(np.int64) * 3 + pred[idx].astype(np.int64)).ravel()
    cm = np.bincount(codes, minlength=r * 9).reshape(r, 3, 3).astype(np.float64)
    support = cm.sum(axis=2)
    recall = np.divide(np.diagonal(cm, axis1=1, axis2=2), support, out=np.zeros((r, 3)), where=support > 0)
    present = (support > 0).sum(axis=1)
    return recall.sum(axis=1) / np.maximum(present, 1)


__all__ = ["balanced_accuracy_resampled", "block_indices", "ci95"]
