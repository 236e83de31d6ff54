"""Backtest of LONG/SHORT signals with the labels' own TP, SL and horizon rules, fees and slippage.

A signal at bar e enters at the next bar's open (`fill: next_open`, the default: a decision made
on a closed bar is acted on in the next; barriers from that price, and that bar's high and low
count) or at close[e] (`fill: close`, the labels' idealisation), and exits at the first barrier
touched by bar e+horizon (at the barrier price; a bar touching both resolves by the same-bar rule), else at the
close of bar e+horizon, or, when the data or the segment ends first, at the last close (a cut
trade). Costs: `fee + slippage` (fractions of notional) on entry and again on exit.
Mode 'single' holds one position at a time (signals during a trade are skipped); mode 'every'
opens every signal as its own trade with 1/horizon of the capital, so the book is fully invested
when every bar signals. Per-bar returns are marked to market on closes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from candleflow.config import LabelConfig
from candleflow.config.intervals import interval_ns
from candleflow.data.candles import Candles
from candleflow.dataset.labels import barrier_multipliers
from candleflow.errors import DataError

TP, SL, HORIZON, CUT = 0, 1, 2, 3
REASONS = ("take_profit", "stop_loss", "horizon", "cut")
_YEAR_NS = 365 * 86_400 * 1_000_000_000


@numba.njit(cache=True)
def _simulate(
    open_,
    close,
    high,
    low,
    seg_stop,
    bars,
    sides,
    up_tp,
    down_sl,
    down_tp,
    up_sl,
    horizon,
    stop_first,
    single,
    weight,
    cost,
    next_open,
):
    n = close.shape[0]
    m = bars.shape[0]
    pnl = np.zeros(n)
    position = np.zeros(n)
    entry = np.full(m, -1, np.int64)
    exit_ = np.full(m, -1, np.int64)
    ret = np.zeros(m)
    reason = np.full(m, -1, np.int8)
    busy_until = -1
    for k in range(m):
        e = bars[k]
        side = sides[k]
        b = e + 1 if next_open else e  # the entry bar: the next bar's open, or the signal bar's close
        if side == 0 or e >= seg_stop[e] - 1 or (single and (b <= busy_until if next_open else e < busy_until)):
            continue
        c = open_[b] if next_open else close[e]
        if side > 0:
            target, stop = c * up_tp[e], c * down_sl[e]
        else:
            target, stop = c * down_tp[e], c * up_sl[e]
        last = min(e + horizon, seg_stop[e] - 1)
        x, price, why = last, close[last], HORIZON if e + horizon < seg_stop[e] else CUT
        first = b if next_open else e + 1  # the first bar whose high and low the trade sees
        for j in range(first, last + 1):
            hit_hi = high[j] >= (target if side > 0 else stop)
            hit_lo = low[j] <= (stop if side > 0 else target)
            hit_target = hit_hi if side > 0 else hit_lo
            hit_stop = hit_lo if side > 0 else hit_hi
            if hit_target and hit_stop:
                if stop_first:
                    x, price, why = j, stop, SL
                else:
                    x, price, why = j, target, TP
                break
            if hit_target:
                x, price, why = j, target, TP
                break
            if hit_stop:
                x, price, why = j, stop, SL
                break
        entry[k], exit_[k], reason[k] = b, x, why
        ret[k] = side * (price / c - 1.0) - 2.0 * cost
        pnl[b] -= weight * cost
        prev = c
        for j in range(first, x):
            pnl[j] += weight * side * (close[j] / prev - 1.0)
            position[j] += weight * side
            prev = close[j]
        pnl[x] += weight * (side * (price / prev - 1.0) - cost)
        position[x] += weight * side
        busy_until = x
    return pnl, position, entry, exit_, ret, reason


@dataclass
class BacktestResult:
    """Per-bar returns and position over [start, stop), and the trades that were taken."""

    bar_returns: np.ndarray
    position: np.ndarray
    start: int
    stop: int
    entry: np.ndarray
    exit: np.ndarray
    trade_returns: np.ndarray
    reason: np.ndarray

    @property
    def equity(self) -> np.ndarray:
        return np.cumprod(1.0 + self.bar_returns)


def backtest(
    candles: Candles,
    bars: np.ndarray,
    sides: np.ndarray,
    labels: LabelConfig,
    fee: float = 0.001,
    slippage: float = 0.0005,
    mode: str = "single",
    span: tuple[int, int] | None = None,
    fill: str = "next_open",
) -> BacktestResult:
    """Trade `sides[k]` (+1 long, -1 short, 0 none) signalled at bars[k] (increasing); returns over
    `span`. `fill`: next_open enters at the open of the bar after the signal (what a trader acting
    on a closed bar gets; barriers from that price, that bar's high and low count), close at the
    signal bar's close (the labels' own idealisation)."""
    if fill not in ("next_open", "close"):
        raise DataError(f"backtest fill {fill!r}: expected next_open or close")
    bars = np.asarray(bars, dtype=np.int64)
    sides = np.asarray(sides, dtype=np.int8)
    if bars.size and np.any(np.diff(bars) < 0):
        raise DataError("signal bars must be in time order")
    mults = [np.nan_to_num(m, nan=0.0) for m in barrier_multipliers(candles, labels)]
    seg_stop = candles.segments[candles.segment_id, 1]
    weight = 1.0 if mode == "single" else 1.0 / labels.horizon
    pnl, pos, entry, exit_, ret, reason = _simulate(
        candles.open,
        candles.close,
        candles.high,
        candles.low,
        seg_stop,
        bars,
        sides,
        *mults,
        labels.horizon,
        labels.same_bar == "stop",
        mode == "single",
        weight,
        fee + slippage,
        fill == "next_open",
    )
    taken = entry >= 0
    start, stop = span if span is not None else (int(bars.min()) if bars.size else 0, len(candles))
    return BacktestResult(
        pnl[start:stop], pos[start:stop], start, stop, entry[taken], exit_[taken], ret[taken], reason[taken]
    )


def buy_and_hold(
    candles: Candles, span: tuple[int, int], fee: float = 0.001, slippage: float = 0.0005
) -> BacktestResult:
    """Long from the close of the span's first bar to its last, flat across segment gaps."""
    start, stop = span
    c = candles.close
    r = np.zeros(stop - start)
    r[1:] = c[start + 1 : stop] / c[start : stop - 1] - 1.0
    seg = candles.segment_id[start:stop]
    r[1:][seg[1:] != seg[:-1]] = 0.0
    r[0] -= fee + slippage
    r[-1] -= fee + slippage
    pos = np.ones(stop - start)
    pos[0] = 0
    return BacktestResult(
        r,
        pos,
        start,
        stop,
        np.array([start]),
        np.array([stop - 1]),
        np.array([c[stop - 1] / c[start] - 1 - 2 * (fee + slippage)]),
        np.array([HORIZON], np.int8),
    )


def performance(res: BacktestResult, interval: str, per_year: float | None = None) -> dict[str, Any]:
    """Return, risk and trading statistics of a backtest, annualised with `per_year` bars a year
    (default: 365 days of the interval, a 24/7 market; see `calendar.bars_per_year`)."""
    r = res.bar_returns
    n = max(r.size, 1)
    per_year = per_year or _YEAR_NS / interval_ns(interval)
    equity = np.cumprod(1.0 + r) if r.size else np.ones(1)
    total = float(equity[-1] - 1.0)
    sd = float(r.std()) if r.size > 1 else 0.0
    downside = float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2))) if r.size else 0.0
    peak = np.maximum.accumulate(equity)
    years = n / per_year
    trades = res.trade_returns
    return {
        "total_return": total,
        "annual_return": float(equity[-1] ** (1.0 / years) - 1.0) if equity[-1] > 0 else -1.0,
        "annual_volatility": sd * float(np.sqrt(per_year)),
        "sharpe": float(r.mean() / sd * np.sqrt(per_year)) if sd > 0 else 0.0,
        "sortino": float(r.mean() / downside * np.sqrt(per_year)) if downside > 0 else 0.0,
        "max_drawdown": float(np.max(1.0 - equity / peak)),
        "trades": int(trades.size),
        "hit_rate": float(np.mean(trades > 0)) if trades.size else 0.0,
        "average_trade": float(trades.mean()) if trades.size else 0.0,
        "exposure": float(np.mean(res.position != 0)),
        "turnover": float(np.abs(np.diff(np.concatenate([[0.0], res.position, [0.0]]))).sum() / years),
        "exits": {name: int((res.reason == k).sum()) for k, name in enumerate(REASONS)},
    }
