"""Regression targets: the forward log return and the log realised volatility of the next
`horizon` bars, and the causal context the quants' baselines read (momentum, persistence, EWMA,
HAR-RV's daily, weekly and monthly averages).

For the window ending at bar t (all within t's segment; NaN where the segment ends first):

- forward_return: log(close[t + h] / close[t]); t1 = t + h.
- volatility: 0.5 * log(sum of the per-bar variances of bars t+1 .. t+h); t1 = t + h. A bar's
  variance is its squared close-to-close log return (`estimator: close`; with finer candles, the
  sum of the finer bars' squared returns inside it), its Parkinson range variance
  ln(H/L)^2 / (4 ln 2), or its Garman-Klass variance 0.5 ln(H/L)^2 - (2 ln 2 - 1) ln(C/O)^2.
  A window whose next h bars have zero variance (a halted market) gets no target.

The context at bar t reads bars <= t of t's segment only, in the target's units: the last h bars'
log return (momentum), and the log volatility that h bars would have at the average variance of
the last h (persistence, HAR's daily term), 5h (weekly) and 22h (monthly) bars, and at an EWMA of
the variance (span `labels.volatility_span`). Near a segment's start the averages use the bars
there are. Beside them, for the stronger volatility baselines:

- slot: the forecast's seasonal slot, read from the time one interval after the bar opens
  (the next bar's nominal open; a one-to-one relabelling where markets close): its hour of the
  week (0 = Monday 00:00 UTC, 168 slots) for intraday bars, its weekday (7 slots) for daily
  bars, 0 for longer bars (no season). The seasonal HAR gives each slot its own intercept.
- jump_d: the share of the last h bars' variance that is jumps (Andersen, Bollerslev and
  Diebold's HAR-J): max(1 - BV / RV, 0), RV the sum of the bars' variances v and BV the bipower
  variation (pi / 2) * sum sqrt(v_i v_(i-1)) over consecutive pairs, scaled to the bars counted.
- quarticity_d: the relative measurement error of the daily term (Bollerslev, Patton and
  Quaedvlieg's HARQ): sqrt(RQ) / RV with RQ = (M / 3) * sum v^2 over the M bars counted. HARQ
  lets the weight of the daily term fall where it is measured with more noise.

The jump and quarticity terms read each bar's variance v as its squared return (exactly so for
`estimator: close`; for the range estimators and finer candles sqrt(v) stands for the bar's
absolute return).
"""

from __future__ import annotations

import numba
import numpy as np

from candleflow.config import LabelConfig
from candleflow.config.intervals import interval_ns
from candleflow.data.candles import Candles
from candleflow.errors import DataError

CONTEXT = ("momentum", "persistence", "ewma", "har_d", "har_w", "har_m", "slot", "jump_d", "quarticity_d")
HAR_SPANS = (1, 5, 22)  # HAR-RV's day, week and month, in multiples of the horizon
TWO_LN2_MINUS_1 = 2 * np.log(2.0) - 1
HOUR_NS = 3_600_000_000_000
DAY_NS = 24 * HOUR_NS
MONDAY_OFFSET_DAYS = 3  # 1970-01-01 (time 0) was a Thursday: Monday 00:00 UTC is 3 days after a week boundary


def seasonal_slots(open_time: np.ndarray, interval: str) -> tuple[np.ndarray, int]:
    """(the seasonal slot of the forecast made at each bar's close, the number of slots): the hour
    of the week the next bar opens in for intraday bars (168), its weekday for daily bars (7), one
    slot for longer bars."""
    step = interval_ns(interval)
    nxt = np.asarray(open_time, np.int64) + step
    if step < DAY_NS:
        return (nxt // HOUR_NS + MONDAY_OFFSET_DAYS * 24) % 168, 168
    if step == DAY_NS:
        return (nxt // DAY_NS + MONDAY_OFFSET_DAYS) % 7, 7
    return np.zeros(len(nxt), np.int64), 1


def bar_variance(candles: Candles, estimator: str = "close", fine: Candles | None = None) -> np.ndarray:
    """Each bar's variance (float64, NaN where it cannot be measured: a segment's first bar for
    close-to-close returns, a coarse bar no finer candle covers)."""
    o, h, lo, c = candles.open, candles.high, candles.low, candles.close
    if estimator == "parkinson":
        return np.log(h / lo) ** 2 / (4 * np.log(2.0))
    if estimator == "garman_klass":
        return np.maximum(0.5 * np.log(h / lo) ** 2 - TWO_LN2_MINUS_1 * np.log(c / o) ** 2, 0.0)
    if estimator != "close":
        raise DataError(f"labels.estimator {estimator!r}: expected close, parkinson or garman_klass")
    if fine is not None:
        return _fine_variance(candles, fine)
    v = np.full(len(candles), np.nan)
    v[1:] = np.log(c[1:] / c[:-1]) ** 2
    v[candles.segments[:, 0]] = np.nan  # no return across a gap
    return v


def _fine_variance(candles: Candles, fine: Candles) -> np.ndarray:
    step = interval_ns(candles.interval)
    if interval_ns(fine.interval) >= step:
        raise DataError(f"finer candles must have a shorter interval than {candles.interval}; got {fine.interval}")
    r2 = np.zeros(len(fine))
    r2[1:] = np.log(fine.close[1:] / fine.close[:-1]) ** 2
    r2[fine.segments[:, 0]] = 0.0  # a gap in the finer candles adds nothing
    lo = np.searchsorted(fine.open_time, candles.open_time, side="left")
    hi = np.searchsorted(fine.open_time, candles.open_time + step, side="left")
    csum = np.concatenate([[0.0], np.cumsum(r2)])
    v = csum[hi] - csum[lo]
    v[hi <= lo] = np.nan
    return v


def _segment_start(candles: Candles) -> np.ndarray:
    return np.repeat(candles.segments[:, 0], candles.segments[:, 1] - candles.segments[:, 0])


def _segment_stop(candles: Candles) -> np.ndarray:
    return np.repeat(candles.segments[:, 1], candles.segments[:, 1] - candles.segments[:, 0])


def forward_return_target(candles: Candles, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """(y float32 with NaN = none, t1 int64 with -1 = none): log(close[t+h] / close[t])."""
    n = len(candles)
    y = np.full(n, np.nan, np.float32)
    t1 = np.full(n, -1, np.int64)
    t = np.arange(n)
    ok = t + horizon < _segment_stop(candles)
    t = t[ok]
    y[t] = np.log(candles.close[t + horizon] / candles.close[t])
    t1[t] = t + horizon
    return y, t1


def volatility_target(candles: Candles, horizon: int, variance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(y float32 with NaN = none, t1): 0.5 * log of the summed variance of bars t+1 .. t+h."""
    n = len(candles)
    filled = np.where(np.isfinite(variance), variance, 0.0)
    csum = np.concatenate([[0.0], np.cumsum(filled)])
    missing = np.concatenate([[0], np.cumsum(~np.isfinite(variance))])
    y = np.full(n, np.nan, np.float32)
    t1 = np.full(n, -1, np.int64)
    t = np.arange(n)
    t = t[t + horizon < _segment_stop(candles)]
    rv = csum[t + horizon + 1] - csum[t + 1]
    ok = (missing[t + horizon + 1] - missing[t + 1] == 0) & (rv > 0)
    t = t[ok]
    y[t] = 0.5 * np.log(rv[ok])
    t1[t] = t + horizon
    return y, t1


def _trailing_mean(values: np.ndarray, start: np.ndarray, length: int) -> np.ndarray:
    """Mean of the finite values among the last `length` bars <= t of t's segment (NaN: none)."""
    finite = np.isfinite(values)
    csum = np.concatenate([[0.0], np.cumsum(np.where(finite, values, 0.0))])
    count = np.concatenate([[0], np.cumsum(finite)])
    t = np.arange(values.shape[0])
    lo = np.maximum(t - length + 1, start)
    k = count[t + 1] - count[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(k > 0, (csum[t + 1] - csum[lo]) / np.maximum(k, 1), np.nan)


@numba.njit(cache=True)
def _segment_ewma(values: np.ndarray, start: np.ndarray, alpha: float) -> np.ndarray:
    out = np.full(values.shape[0], np.nan)
    acc = np.nan
    for i in range(values.shape[0]):
        if i == start[i]:
            acc = np.nan
        v = values[i]
        if np.isfinite(v):
            acc = v if not np.isfinite(acc) else (1.0 - alpha) * acc + alpha * v
        out[i] = acc
    return out


def _log_vol(mean_variance: np.ndarray, horizon: int) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 0.5 * np.log(mean_variance * horizon)
    out[~np.isfinite(out)] = np.nan
    return out


def _trailing_sum(values: np.ndarray, start: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """(sum, count) of the finite values among the last `length` bars <= t of t's segment."""
    finite = np.isfinite(values)
    csum = np.concatenate([[0.0], np.cumsum(np.where(finite, values, 0.0))])
    count = np.concatenate([[0], np.cumsum(finite)])
    t = np.arange(values.shape[0])
    lo = np.maximum(t - length + 1, start)
    return csum[t + 1] - csum[lo], count[t + 1] - count[lo]


def jump_and_quarticity(variance: np.ndarray, start: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """(jump_d, quarticity_d) over the last `horizon` bars of each bar's segment (see the module);
    NaN where no variance is measured there."""
    v = np.asarray(variance, np.float64)
    rv, m = _trailing_sum(v, start, horizon)
    pair = np.full(v.shape[0], np.nan)
    pair[1:] = np.sqrt(v[1:] * v[:-1])
    pair[start] = np.nan  # no pair across a segment's start
    # a pair (i-1, i) lies inside the last h bars when i-1 does too: h - 1 pairs end at bars t-h+2 .. t
    bv_raw, pairs = _trailing_sum(pair, start, max(horizon - 1, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        bv = np.pi / 2 * bv_raw * np.where(pairs > 0, m / np.maximum(pairs, 1), np.nan)
        jump = np.where((rv > 0) & (pairs > 0), np.maximum(1.0 - bv / rv, 0.0), np.nan)
        v2, _ = _trailing_sum(v * v, start, horizon)
        quart = np.where(rv > 0, np.sqrt(m / 3.0 * v2) / rv, np.nan)
    return jump, quart


def target_context(candles: Candles, cfg: LabelConfig, variance: np.ndarray | None = None) -> np.ndarray:
    """(N, len(CONTEXT)) float32: the causal inputs of the baselines, per bar (see the module)."""
    h = cfg.horizon
    v = bar_variance(candles, cfg.estimator) if variance is None else variance
    start = _segment_start(candles)
    out = np.full((len(candles), len(CONTEXT)), np.nan, np.float32)
    t = np.arange(len(candles))
    back = np.maximum(t - h, start)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[:, 0] = np.where(back < t, np.log(candles.close / candles.close[back]), np.nan)
    d = _log_vol(_trailing_mean(v, start, h), h)
    out[:, 1] = d
    alpha = 2.0 / (cfg.volatility_span + 1.0)
    out[:, 2] = _log_vol(_segment_ewma(v.astype(np.float64), start.astype(np.int64), alpha), h)
    out[:, 3] = d
    out[:, 4] = _log_vol(_trailing_mean(v, start, HAR_SPANS[1] * h), h)
    out[:, 5] = _log_vol(_trailing_mean(v, start, HAR_SPANS[2] * h), h)
    out[:, 6] = seasonal_slots(candles.open_time, candles.interval)[0]
    out[:, 7], out[:, 8] = jump_and_quarticity(v, start, h)
    return out


def regression_target(
    candles: Candles, cfg: LabelConfig, fine: Candles | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y, t1, context) for `cfg.kind` forward_return or volatility."""
    if cfg.kind == "forward_return":
        y, t1 = forward_return_target(candles, cfg.horizon)
        return y, t1, target_context(candles, cfg)
    if cfg.kind != "volatility":
        raise DataError(f"labels.kind {cfg.kind!r} is not a regression target")
    v = bar_variance(candles, cfg.estimator, fine)
    y, t1 = volatility_target(candles, cfg.horizon, v)
    return y, t1, target_context(candles, cfg, v)


__all__ = [
    "CONTEXT",
    "bar_variance",
    "forward_return_target",
    "jump_and_quarticity",
    "regression_target",
    "seasonal_slots",
    "target_context",
    "volatility_target",
]
