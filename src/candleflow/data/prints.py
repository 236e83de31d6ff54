"""Bad prints: one price of one bar at the wrong scale (a decimal point moved, a digit lost), as
real daily files hold them (a close printed at 1/100 of the bar's own open, high and low).

A bad print is told from a market move by where the rest of the bar and its neighbours are: a
crash moves open, high, low and close of the day and the next days together; a bad print leaves
the bar's other prices and its neighbours where they were. Each price is compared with the median
of six prices around it (the bar's four, the previous close and the next open), which a single bad
field cannot move; a price BAD_PRINT_FACTOR or more away from that median is a bad print. A stock
split is never one: every price of the split bar is at the new level, so the median is too."""

from __future__ import annotations

import numpy as np

BAD_PRINT_FACTOR = 3.0  # a price this many times above or below its bar's reference is a bad print
FIELDS = ("open", "high", "low", "close")


def print_reference(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """Per bar, the median of its four prices, the previous close and the next open (the bar's own
    close and open stand in at the ends). Rows are one series in time order."""
    if close.size == 0:
        return close.astype(np.float64)
    prev_close = np.concatenate([close[:1], close[:-1]])
    next_open = np.concatenate([open_[1:], open_[-1:]])
    return np.median(np.stack([open_, high, low, close, prev_close, next_open], axis=1), axis=1)


def bad_print_fields(
    open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray, factor: float = BAD_PRINT_FACTOR
) -> tuple[np.ndarray, np.ndarray]:
    """((n, 4) bool: which of open, high, low, close is a bad print, (n,) the reference price)."""
    ref = print_reference(open_, high, low, close)
    prices = np.stack([open_, high, low, close], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = prices / ref[:, None]
    bad = (ratio >= factor) | (ratio <= 1.0 / factor)
    return bad & np.isfinite(ratio), ref


def scale_name(ratio: float) -> str:
    """'1/100 of', '1/10 of', '10x', '3.25x': how far a bad price sits from its reference (a power
    of ten where it is within 10% of one: a decimal point moved)."""
    big = ratio if ratio >= 1 else 1 / ratio
    power = 10.0 ** round(np.log10(big))
    shown = f"{power:g}" if abs(big / power - 1) <= 0.1 else f"{big:.3g}"
    return f"{shown}x" if ratio >= 1 else f"1/{shown} of"


def describe(day: str, field: str, value: float, reference: float) -> str:
    """'2012-12-21: close 11.696, 1/10 of the level of the bar's other prices and its neighbours (~116)'."""
    return (
        f"{day}: {field} {value:g}, {scale_name(value / reference)} the level of the bar's other prices and "
        f"its neighbours (~{reference:.4g})"
    )


__all__ = ["BAD_PRINT_FACTOR", "FIELDS", "bad_print_fields", "describe", "print_reference", "scale_name"]
