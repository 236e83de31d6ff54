"""Cross-sectional features of a universe (`features.cross_section`): at each time, a feature's
mean or median across the assets present then (the market's return, the market's volatility),
or each asset's rank or z-score among them. Registered here by name like the per-series
features; the columns are named `cs_STAT(FEATURE)` and come after the per-series ones.

Causal: the value at time t reads every asset's feature at t, each computed from bars <= t, and
nothing later; an asset absent at t is not counted (never filled). With one asset present the
rank is 0.5 and the z-score 0, so an early stretch with few assets still has inputs.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from candleflow.config.feature_names import CROSS_SECTION_STAT_NAMES, parse_cross_section


def _mean(m: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a time without any asset: NaN, as meant
        return np.broadcast_to(np.nanmean(m, axis=1, keepdims=True), m.shape)


def _median(m: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.broadcast_to(np.nanmedian(m, axis=1, keepdims=True), m.shape)


def _rank(m: np.ndarray) -> np.ndarray:
    """Each cell's place among the row's finite cells, (rank - 0.5) / n in (0, 1) (ties: average)."""
    from scipy.stats import rankdata

    ok = np.isfinite(m)
    ranks = rankdata(np.where(ok, m, np.inf), axis=1, method="average")
    n = ok.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, (ranks - 0.5) / n, np.nan)


def _z(m: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(m, axis=1, keepdims=True)
        sd = np.nanstd(m, axis=1, keepdims=True)
        return np.where(sd > 0, (m - mean) / np.where(sd > 0, sd, 1.0), np.where(np.isfinite(m), 0.0, np.nan))


# every cross-sectional statistic by name: (times x assets, NaN = absent) -> the same shape
CROSS_SECTION_STATS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mean": _mean,
    "median": _median,
    "rank": _rank,
    "z": _z,
}
if set(CROSS_SECTION_STATS) != set(CROSS_SECTION_STAT_NAMES):  # the config names what this computes
    raise ImportError("cross-sectional statistics and their names in config.feature_names differ")


def cross_section_names(specs: list[str]) -> list[str]:
    """The columns' names: cs_rank(log_return), ..."""
    return [f"cs_{s.replace(' ', '')}" for s in specs]


def cross_section_columns(
    times: list[np.ndarray], features: list[np.ndarray], columns: list[str], specs: list[str]
) -> list[np.ndarray]:
    """Per series, its (rows, len(specs)) float32 cross-sectional columns: `times` each series'
    bar open times (int64 ns), `features` its (rows, columns) per-series features."""
    parsed = [parse_cross_section(s, columns) for s in specs]
    union = np.unique(np.concatenate([np.asarray(t, np.int64) for t in times]))
    where = [np.searchsorted(union, np.asarray(t, np.int64)) for t in times]
    out = [np.empty((t.shape[0], len(specs)), np.float32) for t in times]
    for j, (stat, feature) in enumerate(parsed):
        col = columns.index(feature)
        grid = np.full((union.size, len(times)), np.nan)
        for k, (pos, f) in enumerate(zip(where, features, strict=True)):
            grid[pos, k] = f[:, col]
        value = CROSS_SECTION_STATS[stat](grid)
        for k, pos in enumerate(where):
            out[k][:, j] = value[pos, k]
    return out


__all__ = [
    "CROSS_SECTION_STATS",
    "cross_section_columns",
    "cross_section_names",
    "parse_cross_section",
]
