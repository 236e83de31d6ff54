"""Which inputs matter, for any family: permutation importance on the validation period. Each
feature's column is shuffled across the validation windows (every bar of a window keeps its
other features), the model predicts again, and the drop of the period's score is that
feature's importance. Bounded: at most `max_windows` windows, and features stop being measured
once `seconds` have passed (the ones left say so)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from candleflow.dataset.windows import Windows


class PermutedFeature:
    """A window dataset whose feature `column` comes from the windows `perm` points at: the
    same windows, one input shuffled across them. Reads like a WindowDataset (gather, shape,
    labels_at), so every family's own prediction path takes it."""

    def __init__(self, ds: Windows, column: int, perm: np.ndarray) -> None:
        self.ds, self.column, self.perm = ds, int(column), np.asarray(perm)
        self.shape = ds.shape

    def __len__(self) -> int:
        return len(self.ds)

    def gather(self, idx: Any) -> np.ndarray:
        idx = np.asarray(idx)
        x = np.array(self.ds.gather(idx), copy=True)
        x[:, :, self.column] = self.ds.gather(self.perm[idx])[:, :, self.column]
        return x

    def labels_at(self, idx: Any = None) -> np.ndarray:
        return self.ds.labels_at() if idx is None else self.ds.labels_at(idx)


def permutation_importance(
    ds: Windows,
    names: list[str],
    predict: Callable[[Any], np.ndarray],
    score: Callable[[np.ndarray, np.ndarray], float],
    seed: int = 0,
    seconds: float = 30.0,
    max_windows: int = 2000,
) -> dict[str, Any]:
    """{feature: score drop} (positive: the model needed it), the baseline score, and the
    features the time budget left unmeasured. `predict(ds)` gives the outputs that
    `score(outputs, labels)` rates; `ds` is the validation windows (subsampled evenly to
    `max_windows`)."""
    n = len(ds)
    if n > max_windows:
        ds = ds.subset(np.linspace(0, n - 1, max_windows).astype(np.int64)) if hasattr(ds, "subset") else ds
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    y = ds.labels_at()
    base = float(score(predict(ds), y))
    drops: dict[str, float] = {}
    left: list[str] = []
    for j, name in enumerate(names):
        if time.perf_counter() - t0 > seconds:
            left = list(names[j:])
            break
        drops[name] = base - float(score(predict(PermutedFeature(ds, j, rng.permutation(len(ds)))), y))
    return {
        "score": base,
        "windows": len(ds),
        "drop": dict(sorted(drops.items(), key=lambda kv: -kv[1])),
        "not_measured": left,
        "seconds": round(time.perf_counter() - t0, 1),
    }


__all__ = ["PermutedFeature", "permutation_importance"]
