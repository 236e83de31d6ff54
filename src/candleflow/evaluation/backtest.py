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
def _exit(high, low, close, first, last, side, target, stop, stop_first):
    """Where a trade from bar `first` ends: (bar, price, reason) at the first bar whose range
    reaches its target (TP) or stop (SL), both in one bar resolved by `stop_first`, else at the
    close of bar `last` (HORIZON)."""
    for j in range(first, last + 1):
        hit_hi = high[j] >= (target if side > 0 else stop)
        hit_lo = low[j] <= (stop if side > 0 else target)
        hit_target = hit_hi if side > 0 else hit_lo
        hit_stop = hit_lo if side > 0 else hit_hi
        if hit_target and hit_stop:
            return (j, stop, SL) if stop_first else (j, target, TP)
        if hit_target:
            return j, target, TP
        if hit_stop:
            return j, stop, SL
    return last, close[last], HORIZON


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
    weights,
    cost,
    next_open,
    funding,
    capital,
    min_order,
):
    n = close.shape[0]
    m = bars.shape[0]
    pnl = np.zeros(n)
    position = np.zeros(n)
    entry = np.full(m, -1, np.int64)
    exit_ = np.full(m, -1, np.int64)
    ret = np.zeros(m)
    gross = np.zeros(m)
    paid = np.zeros(m)
    notional = np.zeros(m)
    reason = np.full(m, -1, np.int8)
    busy_until = -1
    below_minimum = 0
    equity, folded = 1.0, 0  # equity before bar `folded`: every bar before an entry is final by then
    for k in range(m):
        e = bars[k]
        side = sides[k]
        w = weights[k]
        b = e + 1 if next_open else e  # the entry bar: the next bar's open, or the signal bar's close
        if side == 0 or not w > 0 or e >= seg_stop[e] - 1:
            continue
        if single and (b <= busy_until if next_open else e < busy_until):
            continue
        while folded < b:
            equity *= 1.0 + pnl[folded]
            folded += 1
        size = capital * equity * w
        if size < min_order:  # the exchange's minimum order: the trade cannot be placed
            below_minimum += 1
            continue
        c = open_[b] if next_open else close[e]
        if side > 0:
            target, stop = c * up_tp[e], c * down_sl[e]
        else:
            target, stop = c * down_tp[e], c * up_sl[e]
        last = min(e + horizon, seg_stop[e] - 1)
        first = b if next_open else e + 1  # the first bar whose high and low the trade sees
        x, price, why = _exit(high, low, close, first, last, side, target, stop, stop_first)
        if why == HORIZON and e + horizon >= seg_stop[e]:
            why = CUT  # the segment ended before the horizon
        entry[k], exit_[k], reason[k], notional[k] = b, x, why, size
        pnl[b] -= w * cost
        prev = c
        charged = 0.0
        for j in range(first, x):  # held through bar j's close: marked there, funded at its fundings
            pnl[j] += w * side * (close[j] / prev - 1.0)
            pnl[j] -= w * side * funding[j]
            charged += side * funding[j]
            position[j] += w * side
            prev = close[j]
        pnl[x] += w * (side * (price / prev - 1.0) - cost)
        position[x] += w * side
        gross[k] = side * (price / c - 1.0)
        paid[k] = charged
        ret[k] = gross[k] - 2.0 * cost - charged
        busy_until = x
    return pnl, position, entry, exit_, ret, reason, gross, paid, notional, below_minimum


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
    gross_returns: np.ndarray | None = None  # each trade's price move (side x), before costs and funding
    funding_paid: np.ndarray | None = None  # each trade's funding (rates summed x side: > 0 paid)
    notional: np.ndarray | None = None  # each trade's size at entry, in the quote currency
    fractions: np.ndarray | None = None  # each trade's fraction of equity
    round_trip_cost: float = 0.0
    below_minimum: int = 0  # signals not traded: their order would be under backtest.min_order
    capital: float = 1.0

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
    fractions: np.ndarray | float | None = None,
    funding: np.ndarray | None = None,
    capital: float = 1.0,
    min_order: float = 0.0,
) -> BacktestResult:
    """Trade `sides[k]` (+1 long, -1 short, 0 none) signalled at bars[k] (increasing); returns over
    `span`. `fill`: next_open enters at the open of the bar after the signal (what a trader acting
    on a closed bar gets; barriers from that price, that bar's high and low count), close at the
    signal bar's close (the labels' own idealisation).

    `fractions`: each trade's share of equity (a number for all; default 1 in mode single and
    1/horizon in mode every; `position_fractions` sizes by volatility). `funding`: a rate per bar
    (`funding_per_bar`), charged to a position held through that bar's close (a long pays a
    positive rate). `capital` and `min_order` in the quote currency: a trade whose size at entry
    (capital x equity x fraction) is under `min_order` is not placed (counted in `below_minimum`)."""
    if fill not in ("next_open", "close"):
        raise DataError(f"backtest fill {fill!r}: expected next_open or close")
    bars = np.asarray(bars, dtype=np.int64)
    sides = np.asarray(sides, dtype=np.int8)
    if bars.size and np.any(np.diff(bars) < 0):
        raise DataError("signal bars must be in time order")
    if fractions is None:
        fractions = 1.0 if mode == "single" else 1.0 / labels.horizon
    weights = np.broadcast_to(np.asarray(fractions, dtype=np.float64), bars.shape).copy()
    if funding is None:
        funding = np.zeros(len(candles))
    elif np.asarray(funding).shape != (len(candles),):
        raise DataError(f"funding: {np.asarray(funding).shape} rates; expected one per bar ({len(candles)})")
    mults = [np.nan_to_num(m, nan=0.0) for m in barrier_multipliers(candles, labels)]
    seg_stop = candles.segments[candles.segment_id, 1]
    pnl, pos, entry, exit_, ret, reason, gross, paid, notional, below = _simulate(
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
        weights,
        fee + slippage,
        fill == "next_open",
        np.asarray(funding, dtype=np.float64),
        float(capital),
        float(min_order),
    )
    taken = entry >= 0
    start, stop = span if span is not None else (int(bars.min()) if bars.size else 0, len(candles))
    return BacktestResult(
        pnl[start:stop],
        pos[start:stop],
        start,
        stop,
        entry[taken],
        exit_[taken],
        ret[taken],
        reason[taken],
        gross[taken],
        paid[taken],
        notional[taken],
        weights[taken],
        2.0 * (fee + slippage),
        int(below),
        float(capital),
    )


def position_fractions(
    candles: Candles, bars: np.ndarray, sizing: str, fraction: float, target_vol: float, lookback: int, cap: float
) -> np.ndarray:
    """Each signal's share of equity. `fixed`: `fraction`. `volatility`: `target_vol` (annualised)
    over the realised volatility of the `lookback` log returns up to the signal bar (causal),
    annualised on the calendar's bars a year, capped at `cap`; 0 (no trade) where the lookback
    does not yet have its returns or they do not move."""
    bars = np.asarray(bars, dtype=np.int64)
    if sizing == "fixed":
        return np.full(bars.shape, float(fraction))
    if sizing != "volatility":
        raise DataError(f"backtest sizing {sizing!r}: expected fixed or volatility")
    r = np.zeros(len(candles))
    r[1:] = np.diff(np.log(candles.close))
    r[1:][candles.segment_id[1:] != candles.segment_id[:-1]] = np.nan  # no return across a gap
    c1 = np.concatenate([[0.0], np.cumsum(np.nan_to_num(r))])
    c2 = np.concatenate([[0.0], np.cumsum(np.nan_to_num(r) ** 2)])
    bad = np.concatenate([[0], np.cumsum(~np.isfinite(r))])
    lo = bars - lookback + 1
    ok = (lo >= 1) & (bad[bars + 1] - bad[np.maximum(lo, 0)] == 0)
    lo = np.maximum(lo, 0)
    n = float(lookback)
    mean = (c1[bars + 1] - c1[lo]) / n
    var = np.maximum((c2[bars + 1] - c2[lo]) / n - mean**2, 0.0) * n / max(n - 1.0, 1.0)
    per_year = _YEAR_NS / interval_ns(candles.interval)
    annual = np.sqrt(var * per_year)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(ok & (annual > 0), np.minimum(cap, target_vol / annual), 0.0)
    return out * float(fraction)


def buy_and_hold(
    candles: Candles,
    span: tuple[int, int],
    fee: float = 0.001,
    slippage: float = 0.0005,
    funding: np.ndarray | None = None,
    capital: float = 1.0,
) -> BacktestResult:
    """Long from the close of the span's first bar to its last, flat across segment gaps; on a
    futures market it pays the funding of every bar it holds through (`funding`, per bar)."""
    start, stop = span
    c = candles.close
    r = np.zeros(stop - start)
    r[1:] = c[start + 1 : stop] / c[start : stop - 1] - 1.0
    seg = candles.segment_id[start:stop]
    r[1:][seg[1:] != seg[:-1]] = 0.0
    paid = 0.0
    if funding is not None:
        held = np.asarray(funding[start : stop - 1], dtype=np.float64)  # held through these bars' closes
        r[: stop - start - 1] -= held
        paid = float(held.sum())
    r[0] -= fee + slippage
    r[-1] -= fee + slippage
    pos = np.ones(stop - start)
    pos[0] = 0
    gross = c[stop - 1] / c[start] - 1
    return BacktestResult(
        r,
        pos,
        start,
        stop,
        np.array([start]),
        np.array([stop - 1]),
        np.array([gross - 2 * (fee + slippage) - paid]),
        np.array([HORIZON], np.int8),
        np.array([gross]),
        np.array([paid]),
        np.array([capital]),
        np.array([1.0]),
        2.0 * (fee + slippage),
        0,
        float(capital),
    )


def configured_backtest(
    candles: Candles,
    bars: np.ndarray,
    sides: np.ndarray,
    cfg: Any,
    span: tuple[int, int] | None = None,
    cost: float = 1.0,
    funding: np.ndarray | None = None,
) -> BacktestResult:
    """`backtest` as a run's config (`backtest.*`, `labels.*`) asks for it, with costs times `cost`."""
    bt = cfg.backtest
    fractions = position_fractions(
        candles, bars, bt.sizing, bt.fraction, bt.target_vol, bt.vol_lookback, bt.max_leverage
    )
    if bt.mode == "every":
        fractions = fractions / cfg.labels.horizon
    return backtest(
        candles,
        bars,
        sides,
        cfg.labels,
        bt.fee * cost,
        bt.slippage * cost,
        bt.mode,
        span,
        bt.fill,
        fractions,
        funding,
        bt.capital,
        bt.min_order,
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
        **trade_statistics(res),
    }


def trade_statistics(res: BacktestResult) -> dict[str, Any]:
    """What explains a backtest's P&L beside its accuracy: average win and loss, the price moves
    the trades caught before costs, what costs and funding took, and their share of the gross.
    Trade figures are fractions of the trade's notional; `cost_share` is costs over the gross
    moves (None where the gross is not positive: costs did not turn a profit into a loss)."""
    t = res.trade_returns
    gross = res.gross_returns if res.gross_returns is not None else t + res.round_trip_cost
    w = res.fractions if res.fractions is not None else np.ones(t.size)
    costs = float(np.sum(w * res.round_trip_cost))
    funding = float(np.sum(w * res.funding_paid)) if res.funding_paid is not None else 0.0
    gross_sum = float(np.sum(w * gross))
    equity = float(np.prod(1.0 + res.bar_returns)) if res.bar_returns.size else 1.0
    return {
        "average_win": float(t[t > 0].mean()) if np.any(t > 0) else 0.0,
        "average_loss": float(t[t <= 0].mean()) if np.any(t <= 0) else 0.0,
        "gross_move": gross_sum,
        "costs": costs,
        "funding": funding,
        "cost_share": (costs + max(funding, 0.0)) / gross_sum if gross_sum > 0 else None,
        "average_fraction": float(w.mean()) if w.size else 0.0,
        "below_minimum": int(res.below_minimum),
        "final_capital": res.capital * equity,
    }
