"""What both walk-forward studies (one series, a panel) share: the result, the baselines'
names, and the moving-block bootstrap."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

BASELINES = ("majority", "always_hold", "stratified")


@dataclass
class WalkForwardResult:
    """A finished study: its folder and the summary written to walkforward.json."""

    folder: Path
    summary: dict[str, Any]


def _block_indices(n: int, block: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples, n) indices of a moving block bootstrap: blocks of `block` consecutive windows."""
    block = min(block, n)
    n_blocks = -(-n // block)
    starts = rng.integers(0, n - block + 1, size=(resamples, n_blocks))
    idx = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(resamples, -1)[:, :n]
    return idx.astype(np.int32)


def _ci(values: np.ndarray) -> list[float]:
    return [float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))]


def load_fold(path: Path) -> dict[str, np.ndarray]:
    """A walk-forward fold file's arrays (plain npz, no pickle)."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
