"""Windows and a purged split from arrays the user brings: the one-call path when candles,
features and labels come from elsewhere."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from candleflow.dataset.split import Split, chronological_split
from candleflow.dataset.windows import WindowDataset
from candleflow.errors import DataError


@dataclass(frozen=True)
class ArrayDataset:
    """Windows over the user's arrays and their chronological split; `part(name)` is the subset
    of windows in 'train', 'val' or 'test'."""

    dataset: WindowDataset
    split: Split
    t1: np.ndarray

    def part(self, name: str) -> WindowDataset:
        """The windows of one split part, as a dataset with the same interface."""
        if name not in self.split.parts:
            raise DataError(f"split part {name!r}: expected one of {', '.join(self.split.parts)}")
        return self.dataset.subset(self.split[name])


def dataset_from_arrays(
    features: np.ndarray,
    labels: np.ndarray,
    window: int = 120,
    *,
    horizon: int = 1,
    val_fraction: float = 0.2,
    test_fraction: float = 0.0,
    embargo: int = 0,
    segments: np.ndarray | None = None,
    t1: np.ndarray | None = None,
    rate: int = 1,
    stride: int = 1,
) -> ArrayDataset:
    """Sliding windows of `window` rows over `features` (N, F) with `labels` (N,) (int, -1 for
    none), split in time into train / val [/ test] with look-ahead purged.

    A label at row i is taken to look `horizon` rows ahead (its end `t1[i] = i + horizon`,
    clipped to the last row), unless `t1` is given; windows whose label end reaches the next part
    (plus `embargo` rows) are purged. `segments` (K, 2) [start, stop) marks contiguous runs (no
    window crosses a boundary); by default the rows are one series without gaps.
    """
    x = np.ascontiguousarray(features, dtype=np.float32)
    y = np.asarray(labels)
    if x.ndim != 2:
        raise DataError(f"features have shape {x.shape}; expected (rows, features)")
    n = x.shape[0]
    if y.shape != (n,):
        hint = ""
        if y.ndim == 2 and y.shape[0] == n and y.shape[1] > 1:  # the seeds' one-hot rows
            hint = "; one-hot rows (as the original design stores them)? pass labels.argmax(axis=1) (class ids; -1 for rows without a label)"
        raise DataError(f"labels have shape {y.shape}; expected ({n},), one per feature row{hint}")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"labels have dtype {y.dtype}; expected integers (class ids, -1 for no label)")
    if window < 1 or window > n:
        raise DataError(f"window={window}: expected 1 <= window <= {n} rows")
    if horizon < 0:
        raise DataError(f"horizon={horizon}: expected >= 0 rows")
    segs = np.array([[0, n]], dtype=np.int64) if segments is None else np.asarray(segments, dtype=np.int64)
    if segs.ndim != 2 or segs.shape[1] != 2 or np.any(segs[:, 0] >= segs[:, 1]) or segs.min() < 0 or segs.max() > n:
        raise DataError(f"segments must be (K, 2) [start, stop) row ranges inside 0..{n}; got shape {segs.shape}")
    if t1 is None:
        label_end = np.minimum(np.arange(n, dtype=np.int64) + horizon, n - 1)
    else:
        label_end = np.asarray(t1, dtype=np.int64)
        if label_end.shape != (n,) or np.any(label_end < np.arange(n)):
            raise DataError(f"t1 must be ({n},) with t1[i] >= i (the last row each label looks at)")
    ds = WindowDataset.from_arrays(x, y, segs, window, rate, stride)
    if len(ds) == 0:
        raise DataError(f"no complete {window}-row window with a finite row and a label >= 0 in {n} rows")
    split = chronological_split(ds.ends, label_end, val_fraction, test_fraction, embargo)
    return ArrayDataset(ds, split, label_end)
