"""Zero-copy sliding windows over the feature array, gathered into contiguous batches in one step;
where every window is cut: a series' (valid_window_ends, WindowDataset.from_arrays) and a panel's rows
(panel_row_ends)."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from numpy.lib.stride_tricks import as_strided

from candleflow.errors import DataError


def panel_row_ends(labels: np.ndarray, window: int, stride: int = 1) -> np.ndarray:
    """A panel's window ends (rows of its time axis): at least `window` rows in, and some ticker
    has a label there (`labels` (T, N), -1 or NaN: none); every `stride`-th of them."""
    rows = np.arange(window - 1, labels.shape[0])
    labelled = np.isfinite(labels[rows]) if np.issubdtype(labels.dtype, np.floating) else labels[rows] >= 0
    rows = rows[labelled.any(axis=1)]
    return rows[::stride]


def valid_window_ends(features: np.ndarray, labels: np.ndarray, segments: np.ndarray, window: int) -> np.ndarray:
    """Bars e whose `window` bars e-window+1 .. e lie in one segment, have finite features and e a label."""
    n = features.shape[0]
    bad = ~np.isfinite(features).all(axis=1)
    bad_before = np.concatenate([[0], np.cumsum(bad)])  # bad rows in [0, i)
    seg_start = np.repeat(segments[:, 0], segments[:, 1] - segments[:, 0])
    e = np.arange(window - 1, n)
    start = e - window + 1
    has = np.isfinite(labels[e]) if np.issubdtype(labels.dtype, np.floating) else labels[e] >= 0
    ok = (start >= seg_start[e]) & (bad_before[e + 1] - bad_before[start] == 0) & has
    return e[ok].astype(np.int64)


def covered_rows(ends: np.ndarray, span: int, n_rows: int) -> np.ndarray:
    """Rows of an (n_rows, ...) array that some window of `span` rows ending at `ends` reads."""
    delta = np.zeros(n_rows + 1, dtype=np.int64)
    np.add.at(delta, np.asarray(ends) - span + 1, 1)
    np.add.at(delta, np.asarray(ends) + 1, -1)
    return np.flatnonzero(np.cumsum(delta[:-1]) > 0)


class Windows(Protocol):
    """What a dataset of windows offers to the loaders, the fits and the scoring: its size and
    (windows, bars, features) shape, batches gathered by index, the labels (or regression
    targets) of its windows, a subset by position, and the training moments a network
    normalises its inputs with. WindowDataset (one series) and MultiWindowDataset (a universe's
    series stacked) both are; mypy checks every fit against this, not against one of them."""

    def __len__(self) -> int: ...

    @property
    def shape(self) -> tuple[int, int, int]: ...

    def gather(self, idx: np.ndarray) -> np.ndarray: ...

    def labels_at(self, idx: np.ndarray | slice | None = None) -> np.ndarray: ...

    def subset(self, idx: np.ndarray) -> Windows: ...

    def moments(self) -> tuple[np.ndarray, np.ndarray]: ...


def context_of(ds: Windows) -> np.ndarray | None:
    """The regression baselines' context rows of a dataset's windows; None where it keeps none
    (classes, or a dataset over many series)."""
    context_at = getattr(ds, "context_at", None)
    return None if context_at is None else context_at()


def ends_of(ds: Windows) -> np.ndarray:
    """Each window's last bar in its one series (what chart images and baselines read in time)."""
    ends = getattr(ds, "ends", None)
    if ends is None:
        raise TypeError(f"{type(ds).__name__}: windows over many series have no single series' bars")
    return np.asarray(ends)


class WindowDataset:
    """Windows of `window` rows over features (N, F); window i ends at bar ends[i], label labels[ends[i]].

    The windows are one strided view of `features` (no copy); `gather` builds a contiguous
    (B, window, F) float32 batch with a single fancy-indexing copy. With `rate` r a window takes
    every r-th bar (it spans (window - 1) * r + 1 bars). `features` may be a read-only memmap:
    the series then stays on disk and only the gathered batches are in memory.
    """

    def __init__(
        self,
        features: np.ndarray,
        labels: np.ndarray,
        ends: np.ndarray,
        window: int,
        rate: int = 1,
        context: np.ndarray | None = None,
    ):
        if features.ndim != 2 or features.dtype != np.float32:
            raise DataError(f"features must be float32 (N, F), got {features.dtype} {features.shape}")
        if not features.flags.c_contiguous:
            raise DataError("features must be C-contiguous")
        if labels.shape[0] != features.shape[0]:
            raise DataError(f"labels have {labels.shape[0]} rows, features {features.shape[0]}")
        if labels.ndim != 1:
            raise DataError(
                f"labels have shape {labels.shape}; expected one per row"
                + ("; one-hot rows? pass labels.argmax(axis=1) (class ids)" if labels.ndim == 2 else "")
            )
        # int32 positions while they fit: an index per window is the largest array beside the features
        ends = np.asarray(ends, dtype=np.int32 if features.shape[0] < 2**31 else np.int64)
        if rate < 1:
            raise DataError(f"rate must be >= 1, got {rate}")
        self.span = (window - 1) * rate + 1
        if ends.size and (ends.min() < self.span - 1 or ends.max() >= features.shape[0]):
            raise DataError("a window end lies outside the feature array")
        if context is not None and context.shape[0] != features.shape[0]:
            raise DataError(f"target context has {context.shape[0]} rows, features {features.shape[0]}")
        self.features = features
        self.labels = labels
        self.context = context  # regression targets: the baselines' causal inputs per bar
        self.ends = ends
        self.window = window
        self.rate = rate
        n, f = features.shape
        s0, s1 = features.strides
        self._view = as_strided(
            features, shape=(max(n - self.span + 1, 0), window, f), strides=(s0, s0 * rate, s1), writeable=False
        )

    @classmethod
    def from_arrays(
        cls,
        features: np.ndarray,
        labels: np.ndarray,
        segments: np.ndarray,
        window: int,
        rate: int = 1,
        stride: int = 1,
        context: np.ndarray | None = None,
    ) -> WindowDataset:
        """All valid windows (inside one segment, finite features, labelled end), every
        `stride`-th of them, each taking every `rate`-th bar."""
        span = (window - 1) * rate + 1
        ends = valid_window_ends(features, labels, segments, span)[::stride]
        return cls(features, labels, ends, window, rate, context)

    def __len__(self) -> int:
        return int(self.ends.shape[0])

    def __getitem__(self, key: int | slice | np.ndarray | list[int]) -> tuple[np.ndarray, Any]:
        """`ds[i]`: (window i as a read-only view (W, F), its label); `ds[a:b]`, `ds[idx]` or a
        boolean mask: (the gathered batch (n, W, F) float32, their labels), as a sequence
        generator hands them to a training loop."""
        n = len(self)
        if isinstance(key, (int, np.integer)):
            if not -n <= int(key) < n:
                raise IndexError(f"window {int(key)} out of range for {n} windows")
            i = int(key) % n
            return self.window_view(i), self.labels[self.ends[i]]
        if isinstance(key, slice):
            idx = np.arange(n)[key]
        else:
            idx = np.asarray(key)
            if idx.dtype == bool:
                if idx.shape != (n,):
                    raise IndexError(f"a boolean mask of {idx.shape} for {n} windows")
                idx = np.flatnonzero(idx)
            elif idx.size and (idx.min() < -n or idx.max() >= n):
                raise IndexError(f"window indices {int(idx.min())}..{int(idx.max())} out of range for {n} windows")
            idx = idx % max(n, 1)
        return self.gather(idx), self.labels_at(idx)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self), self.window, self.features.shape[1])

    def window_view(self, i: int) -> np.ndarray:
        """Window i as a read-only view (W, F) of the feature array."""
        return self._view[self.ends[i] - self.span + 1]

    def gather(self, idx: np.ndarray) -> np.ndarray:
        """Contiguous float32 batch (len(idx), W, F) of windows idx, in one vectorised copy (a
        parallel numba block copy was measured against it and was not reliably faster:
        docs/benchmarks.md)."""
        return self._view[self.ends[np.asarray(idx)] - self.span + 1]

    def labels_at(self, idx: np.ndarray | slice | None = None) -> np.ndarray:
        """Labels of windows idx (all windows when None)."""
        return self.labels[self.ends if idx is None else self.ends[idx]]

    def subset(self, idx: np.ndarray) -> WindowDataset:
        """The same arrays with only windows idx (a split part, a stride, a sample)."""
        return WindowDataset(
            self.features, self.labels, self.ends[np.asarray(idx)], self.window, self.rate, self.context
        )

    def context_at(self, idx: np.ndarray | slice | None = None) -> np.ndarray | None:
        """The regression baselines' context rows (len, len(targets.CONTEXT)) of windows idx, or None."""
        if self.context is None:
            return None
        return np.asarray(self.context[self.ends if idx is None else self.ends[idx]])

    def covered_rows(self) -> np.ndarray:
        """Feature rows some window reads (e.g. the only rows normalisation may be fitted on)."""
        return covered_rows(self.ends, self.span, self.features.shape[0])

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance (float64, per feature) over the rows these windows read: what
        normalisation may be fitted on."""
        return _row_moments(self)[:2]

    def materialised_nbytes(self) -> int:
        """Bytes a copy of every window would take (what the view saves)."""
        return len(self) * self.window * self.features.shape[1] * self.features.itemsize


def concat_datasets(datasets: list[WindowDataset], path: str | None = None) -> tuple[WindowDataset, np.ndarray]:
    """Many symbols (or sources) as one dataset: their feature arrays end to end (in memory, or
    written to the .npy at `path` and memory-mapped), windows offset so none crosses from one
    into the next; returns the dataset and each window's index into `datasets`."""
    if not datasets:
        raise DataError("no datasets to concatenate")
    window, rate = datasets[0].window, datasets[0].rate
    if any((d.window, d.rate, d.features.shape[1]) != (window, rate, datasets[0].features.shape[1]) for d in datasets):
        raise DataError("datasets differ in window, rate or feature count")
    rows = np.cumsum([0] + [d.features.shape[0] for d in datasets])
    if path is None:
        features = np.concatenate([d.features for d in datasets])
    else:
        from candleflow.fs.atomic import atomic_path

        with atomic_path(path, suffix=".npy") as tmp:
            out = np.lib.format.open_memmap(
                tmp, mode="w+", dtype=np.float32, shape=(int(rows[-1]), datasets[0].features.shape[1])
            )
            for d, lo in zip(datasets, rows):
                out[lo : lo + d.features.shape[0]] = d.features
            out.flush()
            del out
        features = np.load(path, mmap_mode="r")
    labels = np.concatenate([d.labels for d in datasets])
    ends = np.concatenate([d.ends + lo for d, lo in zip(datasets, rows)])
    which = np.concatenate([np.full(len(d), k, dtype=np.int32) for k, d in enumerate(datasets)])
    return WindowDataset(features, labels, ends, window, rate), which


class MultiWindowDataset:
    """Windows over several series (each its own feature array, typically a memmap of a store
    entry): window i is window `local[i]` of series `which[i]`. It has WindowDataset's interface
    (gather, labels_at, subset, moments), so loaders and adapters take either."""

    def __init__(
        self,
        parts: list[WindowDataset],
        which: np.ndarray,
        local: np.ndarray,
        names: list[str] | None = None,
        times: list[np.ndarray] | None = None,
        t1: list[np.ndarray] | None = None,
        _labels: list[np.ndarray] | None = None,
        scales: list[tuple[np.ndarray, np.ndarray]] | None = None,
    ):
        if not parts:
            raise DataError("no series")
        first = parts[0]
        if any(
            (p.window, p.rate, p.features.shape[1]) != (first.window, first.rate, first.features.shape[1])
            for p in parts
        ):
            raise DataError("series differ in window, rate or feature count")
        self.parts, self.names = parts, names or [str(k) for k in range(len(parts))]
        self.times, self.t1 = times, t1  # per series: open time of each bar, last bar each label looked at
        self.which = np.asarray(which, dtype=np.int32)
        self.local = np.asarray(local, dtype=np.int64 if max(len(p) for p in parts) >= 2**31 else np.int32)
        self.window, self.rate, self.span = first.window, first.rate, first.span
        self._labels = _labels if _labels is not None else [p.labels_at() for p in parts]
        self.scales = scales  # per series (mean, std) its features are standardised by in gather
        self.pooled_scale: tuple[np.ndarray, np.ndarray] | None = None  # every training row's, with scales
        self.identity = False  # each window also carries its series' one-hot identity (asset embedding)

    def _derived(
        self,
        which: np.ndarray | None = None,
        local: np.ndarray | None = None,
        labels: list[np.ndarray] | None = None,
        scales: list[tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> MultiWindowDataset:
        """A copy with some of its arrays replaced and every other setting kept."""
        out = MultiWindowDataset(
            self.parts,
            self.which if which is None else which,
            self.local if local is None else local,
            self.names,
            self.times,
            self.t1,
            self._labels if labels is None else labels,
            self.scales if scales is None else scales,
        )
        out.pooled_scale, out.identity = self.pooled_scale, self.identity
        return out

    def with_identity(self) -> MultiWindowDataset:
        """These windows with each series' one-hot identity appended to every row (len(parts)
        columns after the features): a network's first layer over them is a learned embedding of
        the asset (a dense map of a one-hot is an embedding lookup), and a tree can split on it."""
        out = self._derived()
        out.identity = True
        return out

    @classmethod
    def from_parts(
        cls,
        parts: list[WindowDataset],
        names: list[str] | None = None,
        times: list[np.ndarray] | None = None,
        t1: list[np.ndarray] | None = None,
    ) -> MultiWindowDataset:
        """Every window of every series, series after series."""
        which = np.repeat(np.arange(len(parts), dtype=np.int32), [len(p) for p in parts])
        local = np.concatenate([np.arange(len(p)) for p in parts])
        return cls(parts, which, local, names, times, t1)

    def __len__(self) -> int:
        return int(self.which.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        extra = len(self.parts) if self.identity else 0
        return (len(self), self.window, self.parts[0].features.shape[1] + extra)

    def _by_series(self, idx, out: np.ndarray, fn) -> np.ndarray:
        """out[j] = fn(k, local positions)[...] for the windows idx, grouped by series k in one sort."""
        which, local = self.which[idx], self.local[idx]
        order = np.argsort(which, kind="stable")
        ks, starts = np.unique(which[order], return_index=True)
        for k, lo, hi in zip(ks, starts, [*starts[1:], order.size]):
            sel = order[lo:hi]
            out[sel] = fn(int(k), local[sel])
        return out

    def gather(self, idx: np.ndarray) -> np.ndarray:
        """Contiguous float32 batch (len(idx), W, F): one vectorised copy per series in the batch."""
        idx = np.asarray(idx)
        out = np.empty((idx.shape[0], *self.shape[1:]), dtype=np.float32)
        scales, n = self.scales, len(self.parts)

        def rows(k: int, pos: np.ndarray) -> np.ndarray:
            x = self.parts[k].gather(pos)
            if scales is not None:
                x = (x - scales[k][0]) / scales[k][1]
            if not self.identity:
                return x
            one_hot = np.zeros((*x.shape[:2], n), np.float32)
            one_hot[..., k] = 1.0
            return np.concatenate([x, one_hot], axis=2)

        return self._by_series(idx, out, rows)

    def scaled_by_series(self, train: MultiWindowDataset, columns: int | None = None) -> MultiWindowDataset:
        """These windows with each series' features standardised by that series' own moments over
        the rows `train`'s windows of it read (a pooled model sees every asset on one scale; a
        series without training windows keeps the pooled training moments). Causal: only the
        training rows are read. Only the first `columns` features are scaled (default all): the
        cross-sectional ones after them compare assets at one time, and a per-asset scale would
        erase what they compare (a small stock's size rank is always low)."""
        width = self.parts[0].features.shape[1]
        mean, var = (a[:width] for a in train.moments())
        n = width if columns is None else columns
        keep = np.arange(width) >= n

        def scale(m: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            sd = np.sqrt(np.maximum(v, 1e-12))
            return np.where(keep, 0.0, m).astype(np.float32), np.where(keep, 1.0, sd).astype(np.float32)

        pooled = scale(mean, var)
        scales = []
        for k in range(len(self.parts)):
            mine = train.local[train.which == k]
            if mine.size == 0:
                scales.append(pooled)
                continue
            m, v, _ = _row_moments(self.parts[k].subset(mine))
            scales.append(scale(m, v))
        out = self._derived(scales=scales)
        out.pooled_scale = pooled
        return out

    def labels_at(self, idx: np.ndarray | slice | None = None) -> np.ndarray:
        """Labels of windows idx (all windows when None)."""
        idx = slice(None) if idx is None else idx
        out = np.empty(self.which[idx].shape[0], dtype=self._labels[0].dtype)  # classes int8, targets float
        return self._by_series(idx, out, lambda k, pos: self._labels[k][pos])

    def context_at(self, idx: np.ndarray | slice | None = None) -> np.ndarray | None:
        """The regression baselines' context rows of windows idx (every series' own), or None
        where a series keeps none."""
        if any(p.context is None for p in self.parts):
            return None
        idx = slice(None) if idx is None else idx
        out = np.empty((self.which[idx].shape[0], self.parts[0].context.shape[1]), dtype=np.float32)  # type: ignore[union-attr]
        return self._by_series(idx, out, lambda k, pos: self.parts[k].context_at(pos))

    @property
    def series_labels(self) -> list[np.ndarray]:
        """Each series' labels (or targets), one per window of it (what `with_labels` takes)."""
        return self._labels

    def with_labels(self, labels: list[np.ndarray]) -> MultiWindowDataset:
        """The same windows with other per-series label arrays (one value per window of each series):
        a cross-sectionally transformed target (`evaluation.pooled.cross_section_target`)."""
        return self._derived(labels=labels)

    def end_times(self) -> np.ndarray:
        """Open time (int64 ns) of each window's last bar; needs `times`."""
        times = self._need_times()[0]
        return self._per_window(lambda k, e: times[k][e])

    def series_ends(self) -> np.ndarray:
        """Each window's last bar as a row index within its own series (int64)."""
        return self._per_window(lambda k, e: e.astype(np.int64))

    def label_end_times(self, embargo: int = 0) -> np.ndarray:
        """Open time of the last bar each window's label looked at, `embargo` bars later (int64
        max where that lies past the series' end); needs `times` and `t1`."""
        times, t1 = self._need_times()

        def at(k: int, e: np.ndarray) -> np.ndarray:
            last = t1[k][e].astype(np.int64) + embargo
            inside = last < times[k].shape[0]
            return np.where(inside, times[k][np.minimum(last, times[k].shape[0] - 1)], np.iinfo(np.int64).max)

        return self._per_window(at)

    def _need_times(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        if self.times is None or self.t1 is None:
            raise DataError("this dataset was built without open times and label ends")
        return self.times, self.t1

    def _per_window(self, fn) -> np.ndarray:
        out = np.empty(len(self), dtype=np.int64)
        return self._by_series(slice(None), out, lambda k, pos: fn(k, np.asarray(self.parts[k].ends[pos])))

    def subset(self, idx: np.ndarray) -> MultiWindowDataset:
        """The same series with only windows idx, in that order."""
        idx = np.asarray(idx)
        return self._derived(which=self.which[idx], local=self.local[idx])

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance (float64, per feature) over the rows these windows read, pooled over series."""
        stats = []
        for k in np.unique(self.which):
            m, v, rows = _row_moments(self.parts[k].subset(self.local[self.which == k]))
            if self.scales is not None:  # the moments of what gather gives
                mu, sd = (a.astype(np.float64) for a in self.scales[k])
                m, v = (m - mu) / sd, v / sd**2
            stats.append((m, v, rows))
        n = np.array([s[2] for s in stats], dtype=np.float64)
        means = np.stack([s[0] for s in stats])
        mean = (n[:, None] * means).sum(axis=0) / n.sum()
        var = (n[:, None] * (np.stack([s[1] for s in stats]) + (means - mean) ** 2)).sum(axis=0) / n.sum()
        if self.identity:  # the one-hot columns are left as they are by a network's normalisation
            mean = np.concatenate([mean, np.zeros(len(self.parts))])
            var = np.concatenate([var, np.ones(len(self.parts))])
        return mean, var

    def materialised_nbytes(self) -> int:
        """Bytes a copy of every window would take (what the views save)."""
        return len(self) * self.window * self.parts[0].features.shape[1] * self.parts[0].features.itemsize


def _row_moments(ds: WindowDataset) -> tuple[np.ndarray, np.ndarray, int]:
    rows = ds.covered_rows()
    values = ds.features[rows]
    return values.mean(axis=0, dtype=np.float64), values.var(axis=0, dtype=np.float64), int(rows.size)
