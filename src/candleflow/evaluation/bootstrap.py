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


def block_resampled_sums(
    values: list[np.ndarray], block: int, resamples: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """For each array in `values` (all of length n), its sum over each resample of the moving block
    bootstrap `block_indices` draws (the same draws, the same sums), from prefix sums: memory of
    (resamples, n / block), not (resamples, n) (a pooled run's 800,000 windows x 1,000 resamples
    would be 6 GB of indices)."""
    n = int(values[0].shape[0])
    block = max(1, min(block, n))
    n_blocks = -(-n // block)
    starts = rng.integers(0, n - block + 1, size=(resamples, n_blocks))
    lengths = np.full(n_blocks, block)
    lengths[-1] = n - (n_blocks - 1) * block  # the last block is cut at n, as block_indices cuts it
    out = []
    for v in values:
        csum = np.concatenate([[0.0], np.cumsum(np.asarray(v, np.float64))])
        out.append((csum[starts + lengths[None, :]] - csum[starts]).sum(axis=1))
    return out


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


__all__ = ["block_resampled_sums", "balanced_accuracy_resampled", "block_indices", "ci95"]
