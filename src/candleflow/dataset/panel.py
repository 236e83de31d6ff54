"""Panel datasets: many series side by side on one shared time axis. Each window is
(window, tickers x features + tickers): every ticker's features, then a presence mask (1 where
the ticker has a bar); targets are one label per ticker (-1 where none), with forward returns R
per ticker for return-weighted losses and cross-sectional backtests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from candleflow.dataset.windows import covered_rows, panel_row_ends
from candleflow.errors import DataError

NO_LABEL_END = np.iinfo(np.int64).max


@dataclass(frozen=True)
class SeriesArrays:
    """One series as a panel takes it: bar open times, features, labels, label ends (bar index),
    closes, segments and the calendar its bars follow."""

    name: str
    times: np.ndarray  # (T_k,) int64 ns
    features: np.ndarray  # (T_k, F)
    labels: np.ndarray  # (T_k,) int8, -1 none
    t1: np.ndarray  # (T_k,) bar index of each label's last bar (-1 none)
    close: np.ndarray  # (T_k,) float64
    segments: np.ndarray  # (S, 2)
    calendar: str = "24/7"
    interval: str = ""  # the bar interval ('' where unknown)
    context: np.ndarray | None = None  # (T_k, len(targets.CONTEXT)): a regression target's baseline context


@dataclass(frozen=True)
class Panel:
    """Series aligned on the shared rows `times`: `values` (T, N*F + N) float32 holds each
    ticker's F features (0 where it has no bar) then the N presence flags; `labels` (T, N) int8
    (-1: none); `returns` (T, N) float32 forward return over the label horizon (NaN: none);
    `label_end` (T,) the latest time any label of the row looks at (for purging); `closes` (T, N)
    each ticker's close (NaN where it has no bar)."""

    times: np.ndarray
    names: list[str]
    values: np.ndarray
    labels: np.ndarray
    returns: np.ndarray
    label_end: np.ndarray
    n_features: int
    calendar: str
    closes: np.ndarray | None = None
    context: np.ndarray | None = None  # (T, N, C) a regression target's baseline context (NaN: no bar)

    @property
    def regression(self) -> bool:
        """Real-valued targets (NaN: none) rather than classes (-1: none)."""
        return bool(np.issubdtype(self.labels.dtype, np.floating))

    @property
    def n_tickers(self) -> int:
        return len(self.names)

    def present(self) -> np.ndarray:
        """(T, N) bool: the ticker has a bar (with finite features) in the row."""
        return self.values[:, self.n_tickers * self.n_features :] > 0.5


def align_panel(
    series: list[SeriesArrays], horizon: int, rule: Literal["same", "union", "intersection"] = "same"
) -> Panel:
    """Put series side by side. Rows are the union of their bar times (`same`: all must follow
    one calendar; `union`: any calendars) or only the times every series has (`intersection`)."""
    if not series:
        raise DataError("a panel needs at least one series")
    intervals = {s.interval for s in series if s.interval}
    if len(intervals) > 1:
        listed = ", ".join(f"{s.name}: {s.interval}" for s in series[:6])
        raise DataError(
            f"the panel's tickers have different bar intervals ({listed}); a panel puts bars of one interval "
            "side by side: choose tickers of one interval (or train them as a universe: dataset.layout series)"
        )
    cals = {s.calendar for s in series}
    if rule == "same" and len(cals) > 1:
        listed = ", ".join(f"{s.name} on {s.calendar}" for s in series[:6])
        raise DataError(
            f"the panel's tickers follow different calendars ({listed}); set dataset.panel_calendar: union "
            "(rows where any ticker trades) or intersection (rows where all trade)"
        )
    f = series[0].features.shape[1]
    for s in series[1:]:
        if s.features.shape[1] != f:
            raise DataError(f"{s.name} has {s.features.shape[1]} features, {series[0].name} has {f}")
    for s in series:
        if len(s.times) == 0:
            raise DataError(f"{s.name}: no bars; a panel ticker needs data")
    if rule == "intersection":
        times = series[0].times
        for s in series[1:]:
            times = np.intersect1d(times, s.times, assume_unique=True)
    else:
        times = np.unique(np.concatenate([s.times for s in series]))
    if times.size == 0:
        raise DataError("the panel's tickers share no bar time (intersection is empty)")
    n, t = len(series), times.size
    values = np.zeros((t, n * f + n), dtype=np.float32)
    regression = np.issubdtype(np.asarray(series[0].labels).dtype, np.floating)
    labels = np.full((t, n), np.nan, dtype=np.float32) if regression else np.full((t, n), -1, dtype=np.int8)
    with_context = regression and all(s.context is not None for s in series)
    context = np.full((t, n, series[0].context.shape[1]), np.nan, np.float32) if with_context else None  # type: ignore[union-attr]
    returns = np.full((t, n), np.nan, dtype=np.float32)
    closes = np.full((t, n), np.nan)
    label_end = np.full(t, np.iinfo(np.int64).min, dtype=np.int64)
    for k, s in enumerate(series):
        pos = np.searchsorted(times, s.times)
        on = (pos < t) & (times[np.minimum(pos, t - 1)] == s.times)  # intersection drops some bars
        rows, src = pos[on], np.flatnonzero(on)
        feats = np.asarray(s.features[src], dtype=np.float32)
        finite = np.isfinite(feats).all(axis=1)
        values[rows[finite], k * f : (k + 1) * f] = feats[finite]
        values[rows[finite], n * f + k] = 1.0
        lab = np.asarray(s.labels[src])
        labels[rows, k] = np.where(finite, lab, np.nan if regression else -1)
        if context is not None:
            context[rows, k] = np.asarray(s.context)[src]
        returns[rows, k] = forward_returns(s.close, s.segments, horizon)[src]
        closes[rows, k] = np.asarray(s.close)[src]
        t1 = np.asarray(s.t1[src], dtype=np.int64)
        ends = np.where(t1 >= 0, s.times[np.clip(t1, 0, len(s.times) - 1)], np.iinfo(np.int64).min)
        np.maximum.at(label_end, rows, ends)
    label_end = np.where(label_end == np.iinfo(np.int64).min, times, label_end)
    return Panel(
        times,
        [s.name for s in series],
        values,
        labels,
        returns,
        label_end,
        f,
        cals.pop() if len(cals) == 1 else "mixed",
        closes,
        context,
    )


def forward_returns(close: np.ndarray, segments: np.ndarray, horizon: int) -> np.ndarray:
    """close[i + horizon] / close[i] - 1 inside the bar's segment, NaN where it leaves it."""
    out = np.full(close.shape[0], np.nan)
    for a, b in np.asarray(segments):
        if b - a > horizon:
            out[a : b - horizon] = close[a + horizon : b] / close[a : b - horizon] - 1.0
    return out


def panel_window_ends(panel: Panel, window: int, stride: int = 1) -> np.ndarray:
    """The panel's window ends, cut where every window is cut (`windows.panel_row_ends`)."""
    return panel_row_ends(panel.labels, window, stride)


class PanelDataset:
    """Windows over a Panel ending at rows `ends`: zero-copy views, one gather per batch."""

    def __init__(self, panel: Panel, ends: np.ndarray, window: int):
        self.panel, self.ends, self.window = panel, np.asarray(ends, dtype=np.int64), window
        if self.ends.size and (self.ends.min() < window - 1 or self.ends.max() >= panel.times.size):
            raise DataError(f"window ends outside rows {window - 1}..{panel.times.size - 1}")
        # (T - window + 1, window, C) view: window i covers rows i .. i + window - 1
        self._view = np.lib.stride_tricks.sliding_window_view(panel.values, window, axis=0).transpose(0, 2, 1)

    def __len__(self) -> int:
        return int(self.ends.size)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self), self.window, self.panel.values.shape[1])

    def gather(self, idx: np.ndarray) -> np.ndarray:
        """(len(idx), window, C) float32 contiguous: one fancy-index copy."""
        return np.ascontiguousarray(self._view[self.ends[np.asarray(idx)] - self.window + 1])

    def labels_at(self, idx: np.ndarray | slice | None = None) -> np.ndarray:
        """(n, tickers) labels at the window ends: int8 classes (-1: none) or float32 targets (NaN: none)."""
        return self.panel.labels[self.ends if idx is None else self.ends[idx]]

    def context_at(self, idx: np.ndarray | slice | None = None) -> np.ndarray | None:
        """(n, tickers, C) the baselines' context at the window ends (a regression panel), or None."""
        c = self.panel.context
        return None if c is None else c[self.ends if idx is None else self.ends[idx]]

    def returns_at(self, idx: np.ndarray | slice | None = None) -> np.ndarray:
        """(n, tickers) float32 forward returns at the window ends (NaN: none)."""
        return self.panel.returns[self.ends if idx is None else self.ends[idx]]

    def end_times(self) -> np.ndarray:
        return self.panel.times[self.ends]

    def label_end_times(self) -> np.ndarray:
        return self.panel.label_end[self.ends]

    def subset(self, idx: np.ndarray) -> PanelDataset:
        return PanelDataset(self.panel, self.ends[np.asarray(idx)], self.window)

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance per column over the rows these windows read (normalisation may be
        fitted on those only); presence columns get mean 0 and variance 1 (left as they are)."""
        p = self.panel
        rows = covered_rows(self.ends, self.window, p.times.size)
        n, f = p.n_tickers, p.n_features
        mean, var = np.zeros(p.values.shape[1]), np.ones(p.values.shape[1])
        values = p.values[rows]  # one copy of the covered rows, not one per ticker
        present = values[:, n * f :] > 0.5
        for k in range(n):
            x = values[present[:, k], k * f : (k + 1) * f].astype(np.float64)
            if x.shape[0] > 1:
                mean[k * f : (k + 1) * f] = x.mean(axis=0)
                var[k * f : (k + 1) * f] = np.maximum(x.var(axis=0), 1e-12)
        return mean, var

    def batch(self, idx: np.ndarray, with_returns: bool = False):
        """(X, labels) or, with returns, (X, {labels, returns R, mask}) for batch `idx`."""
        x, y = self.gather(idx), self.labels_at(np.asarray(idx))
        if not with_returns:
            return x, y
        r = self.returns_at(np.asarray(idx))
        return x, {"labels": y, "returns": np.nan_to_num(r), "mask": (y >= 0) & np.isfinite(r)}
