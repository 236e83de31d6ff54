"""Zero-copy sliding windows over the feature array, gathered into contiguous batches in one step."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided


def valid_window_ends(features: np.ndarray, labels: np.ndarray, segments: np.ndarray,
                      window: int) -> np.ndarray:
    """Bars e whose window e-window+1 .. e lies in one segment, has finite features and a label."""
    n = features.shape[0]
    bad = ~np.isfinite(features).all(axis=1)
    bad_before = np.concatenate([[0], np.cumsum(bad)])  # bad rows in [0, i)
    seg_start = np.repeat(segments[:, 0], segments[:, 1] - segments[:, 0])
    e = np.arange(window - 1, n)
    start = e - window + 1
    ok = (start >= seg_start[e]) & (bad_before[e + 1] - bad_before[start] == 0) & (labels[e] >= 0)
    return e[ok].astype(np.int64)


class WindowDataset:
    """Windows of `window` bars over features (N, F); window i ends at bar ends[i], label labels[ends[i]].

    The windows are one strided view of `features` (no copy); `gather` builds a contiguous
    (B, window, F) float32 batch with a single fancy-indexing copy.
    """

    def __init__(self, features: np.ndarray, labels: np.ndarray, ends: np.ndarray, window: int):
        if features.ndim != 2 or features.dtype != np.float32:
            raise ValueError(f"features must be float32 (N, F), got {features.dtype} {features.shape}")
        if not features.flags.c_contiguous:
            raise ValueError("features must be C-contiguous")
        if labels.shape[0] != features.shape[0]:
            raise ValueError(f"labels have {labels.shape[0]} rows, features {features.shape[0]}")
        ends = np.asarray(ends, dtype=np.int64)
        if ends.size and (ends.min() < window - 1 or ends.max() >= features.shape[0]):
            raise ValueError("a window end lies outside the feature array")
        self.features = features
        self.labels = labels
        self.ends = ends
        self.window = window
        n, f = features.shape
        s0, s1 = features.strides
        self._view = as_strided(features, shape=(max(n - window + 1, 0), window, f),
                                strides=(s0, s0, s1), writeable=False)

    @classmethod
    def from_arrays(cls, features: np.ndarray, labels: np.ndarray, segments: np.ndarray,
                    window: int) -> "WindowDataset":
        """All valid windows: inside one segment, finite features, labelled end."""
        return cls(features, labels, valid_window_ends(features, labels, segments, window), window)

    def __len__(self) -> int:
        return int(self.ends.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self), self.window, self.features.shape[1])

    def window_view(self, i: int) -> np.ndarray:
        """Window i as a read-only view (W, F) of the feature array."""
        return self._view[self.ends[i] - self.window + 1]

    def gather(self, idx: np.ndarray) -> np.ndarray:
        """Contiguous float32 batch (len(idx), W, F) of windows idx, in one vectorised copy."""
        return self._view[self.ends[np.asarray(idx)] - self.window + 1]

    def labels_at(self, idx: np.ndarray | slice | None = None) -> np.ndarray:
        """Labels of windows idx (all windows when None)."""
        return self.labels[self.ends if idx is None else self.ends[idx]]

    def subset(self, idx: np.ndarray) -> "WindowDataset":
        """The same arrays with only windows idx (a split part, a stride, a sample)."""
        return WindowDataset(self.features, self.labels, self.ends[np.asarray(idx)], self.window)

    def materialised_nbytes(self) -> int:
        """Bytes a copy of every window would take (what the view saves)."""
        return len(self) * self.window * self.features.shape[1] * self.features.itemsize
