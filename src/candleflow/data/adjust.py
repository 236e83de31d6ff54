"""Corporate actions in stock files: prices back-adjusted by an adjusted-close column where a file
has one, and splits that a file without one still shows found and reported.

A 2:1 split halves an unadjusted price overnight. Fed to features and labels as it is, it reads
as a -50% return that never reverts (the spike check looks for moves that revert, so it cannot
see one). With an adjusted close (Yahoo's and Quandl's `Adj Close`), every bar is scaled by
adjusted / close, which removes splits and dividends and keeps real moves: a real crash falls in
the adjusted close too. Without one, a bar that opens at a split ratio of the previous close
(within SPLIT_TOLERANCE), with the whole bar and the bars after it at the new level, is a
suspected split; a one-day bad print (data/prints.py) is not."""

from __future__ import annotations

import numpy as np

ADJ_CLOSE = "adj_close"
SPLIT_RATIOS = (1 / 10, 1 / 5, 1 / 4, 1 / 3, 1 / 2, 2 / 3, 3 / 2, 2.0, 3.0, 4.0, 5.0, 10.0)
SPLIT_TOLERANCE = 0.025  # the opening gap's relative distance to a split ratio
STAY_BARS = 5  # the next bars' median close must stay at the new level (a split does not revert)
LEVEL_BARS = 3  # the whole bars move: the median of their four prices on each side of the split ...
LEVEL_TOLERANCE = 0.15  # ... within 15% of the ratio


def back_adjust(columns: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
    """Open, high, low and close scaled by adj_close / close and volume by its inverse (the
    traded value stays), the adj_close column dropped; returns the columns and how many rows had
    a factor other than 1. Rows whose factor is not a positive finite number keep their prices."""
    adj, close = columns[ADJ_CLOSE], columns["close"]
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = adj / close
    factor = np.where(np.isfinite(factor) & (factor > 0), factor, 1.0)
    out = {k: v for k, v in columns.items() if k != ADJ_CLOSE}
    for name in ("open", "high", "low", "close"):
        out[name] = columns[name] * factor
    out["volume"] = columns["volume"] / factor
    return out, int((np.abs(factor - 1.0) > 1e-9).sum())


def suspected_splits(
    open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray
) -> list[tuple[int, float]]:
    """(row, ratio) for each bar that opens within SPLIT_TOLERANCE of a split ratio times the
    previous close, whose next STAY_BARS closes stay near that level (their median within 15%),
    and where the whole bar moved with it: the median of the four prices of the LEVEL_BARS bars
    from it is within LEVEL_TOLERANCE of the ratio times that of the LEVEL_BARS bars before, and
    neither the bar nor the one before holds a bad print (data/prints.py). A bad print (one price
    of one bar at 1/10 of the rest) moves neither its bar's other prices nor its neighbours, so it
    is never read as a split. Rows are in time order, one series."""
    from candleflow.data.prints import bad_print_fields

    if close.size < 2:
        return []
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = open_[1:] / close[:-1]
    ratios = np.asarray(SPLIT_RATIOS)
    prices = np.stack([open_, high, low, close], axis=1)
    out = []
    candidates = np.flatnonzero(np.isfinite(gap) & ((gap < 0.85) | (gap > 1.4))) + 1
    for i in (int(c) for c in candidates):
        k = int(np.argmin(np.abs(gap[i - 1] / ratios - 1)))
        if abs(gap[i - 1] / ratios[k] - 1) > SPLIT_TOLERANCE:
            continue
        lo = max(0, i - 2)  # bars i-1 and i with their neighbours: a bad print there is not a split
        near = slice(lo, i + 2)
        bad = np.asarray(bad_print_fields(open_[near], high[near], low[near], close[near])[0].any(axis=1), dtype=bool)
        if bad[i - 1 - lo] or bad[i - lo]:
            continue
        stays = abs(np.median(close[i : i + STAY_BARS]) / (ratios[k] * close[i - 1]) - 1) <= 0.15
        before = np.median(prices[max(0, i - LEVEL_BARS) : i])
        after = np.median(prices[i : i + LEVEL_BARS])
        if stays and abs(after / (ratios[k] * before) - 1) <= LEVEL_TOLERANCE:
            out.append((i, float(ratios[k])))
    return out


def split_name(ratio: float) -> str:
    """'2:1' for a price halved, '1:2' for a reverse split that doubles it, '3:2' ..."""
    from fractions import Fraction

    f = Fraction(ratio).limit_denominator(10)
    return f"{f.denominator}:{f.numerator}"


def adjust_for_splits(columns: dict[str, np.ndarray], splits: list[tuple[int, float]]) -> dict[str, np.ndarray]:
    """Bars before each split scaled by its ratio (prices) and its inverse (volume), so the
    series is continuous at the split as an adjusted one would be."""
    out = dict(columns)
    factor = np.ones(columns["close"].size)
    for i, ratio in splits:
        factor[:i] *= ratio
    for name in ("open", "high", "low", "close"):
        out[name] = columns[name] * factor
    out["volume"] = columns["volume"] / factor
    return out


__all__ = ["ADJ_CLOSE", "adjust_for_splits", "back_adjust", "split_name", "suspected_splits"]
