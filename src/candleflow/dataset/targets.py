"""The targets (`labels.kind`), registered in one place, and the regression kernels: the forward log return and the log realised volatility of the next
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

The cross-section's own signals (scored across the assets of a universe as Qlib and the factor
literature score them; `evaluation.pooled`), in days of bars (a day is one daily bar, 24 hourly
bars of a 24/7 market, 86400 s / the interval for other intraday bars):

- ret_1: the last bar's log return (1-bar reversal is minus it);
- mom_12_1: log(close 21 days ago / close 252 days ago), 12-1 month momentum;
- vol_20d: the standard deviation of the last 20 days' bar log returns (low volatility is minus it);
- dollar_volume: log of the mean close x volume over the last 20 days (size or liquidity).

The jump and quarticity terms read each bar's variance v as its squared return (exactly so for
`estimator: close`; for the range estimators and finer candles sqrt(v) stands for the bar's
absolute return).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numba
import numpy as np

from candleflow.config import LabelConfig
from candleflow.config.intervals import interval_ns
from candleflow.config.target_names import Task, declare, forget
from candleflow.data.candles import Candles
from candleflow.dataset.labels import (
    Labels,
    competitive_labels,
    fixed_horizon_labels,
    season_bars,
    shuffled_in_blocks,
    triple_barrier_labels,
    unseasonal_block,
)
from candleflow.errors import ConfigError, DataError

log = logging.getLogger("candleflow")

CONTEXT = (
    "momentum",
    "persistence",
    "ewma",
    "har_d",
    "har_w",
    "har_m",
    "slot",
    "jump_d",
    "quarticity_d",
    "ret_1",
    "mom_12_1",
    "vol_20d",
    "dollar_volume",
)
# the cross-section's known signals, in days (bars of a day: 1 for daily bars, 24 for hourly 24/7 bars)
MOMENTUM_DAYS = (252, 21)  # 12-1 month momentum: the return from 12 months to 1 month ago
VOLATILITY_DAYS = 20  # low volatility: the last 20 days' returns
DOLLAR_VOLUME_DAYS = 20  # size / illiquidity: the last 20 days' traded value
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
    out[:, 9:13] = cross_section_signals(candles, start)
    return out


def bars_per_day(interval: str) -> int:
    """Bars in a day of the interval: 1 for daily and longer bars, 86400 s / the interval below."""
    step = interval_ns(interval) if interval else DAY_NS
    return max(1, DAY_NS // step) if step < DAY_NS else 1


def cross_section_signals(candles: Candles, start: np.ndarray | None = None) -> np.ndarray:
    """(N, 4) float64: ret_1, mom_12_1, vol_20d and dollar_volume at each bar, from bars <= t of
    t's segment (NaN where the segment is too short so far; see the module)."""
    n = len(candles)
    start = _segment_start(candles) if start is None else start
    day = bars_per_day(candles.interval)
    t = np.arange(n)
    close = np.asarray(candles.close, np.float64)
    out = np.full((n, 4), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.full(n, np.nan)
        r[1:] = np.log(close[1:] / close[:-1])
        r[start] = np.nan  # no return across a segment's start
        out[:, 0] = r
        far, near = (d * day for d in MOMENTUM_DAYS)
        ok = t - far >= start
        out[ok, 1] = np.log(close[t[ok] - near] / close[t[ok] - far])
        m1, k = _trailing_sum(r, start, VOLATILITY_DAYS * day)
        m2, _ = _trailing_sum(r * r, start, VOLATILITY_DAYS * day)
        full = k >= VOLATILITY_DAYS * day - 1
        var = m2 / np.maximum(k, 1) - (m1 / np.maximum(k, 1)) ** 2
        out[:, 2] = np.where(full, np.sqrt(np.maximum(var, 0.0)), np.nan)
        value = close * np.asarray(candles.volume, np.float64)
        dv, kv = _trailing_sum(value, start, DOLLAR_VOLUME_DAYS * day)
        out[:, 3] = np.where((kv >= DOLLAR_VOLUME_DAYS * day) & (dv > 0), np.log(dv / np.maximum(kv, 1)), np.nan)
    return out


def lagged_context(candles: Candles, y: np.ndarray, t1: np.ndarray, cfg: LabelConfig) -> np.ndarray:
    """The baselines' context of a registered target that brings none, from the target itself:
    at bar t, the latest target whose window had ended by t in t's segment (z) stands in for
    momentum, persistence and HAR's daily term; its trailing means over 5 and 22 horizons for
    HAR's weekly and monthly terms; its EWMA (span `labels.volatility_span`) for ewma; the
    seasonal slot and the cross-section's signals as for the built-ins. No jump or quarticity
    terms (NaN)."""
    n, h = len(candles), cfg.horizon
    start = _segment_start(candles)
    lab = np.flatnonzero(np.isfinite(y) & (t1 >= 0))
    order = lab[np.argsort(t1[lab], kind="stable")]
    k = np.searchsorted(t1[order], np.arange(n), side="right") - 1
    src = np.where(k >= 0, order[np.maximum(k, 0)], -1)
    z = np.where((src >= 0) & (src >= start), y[np.maximum(src, 0)].astype(np.float64), np.nan)
    out = np.full((n, len(CONTEXT)), np.nan, np.float32)
    for col in ("momentum", "persistence", "har_d"):
        out[:, CONTEXT.index(col)] = z
    out[:, CONTEXT.index("har_w")] = _trailing_mean(z, start, HAR_SPANS[1] * h)
    out[:, CONTEXT.index("har_m")] = _trailing_mean(z, start, HAR_SPANS[2] * h)
    alpha = 2.0 / (cfg.volatility_span + 1.0)
    out[:, CONTEXT.index("ewma")] = _segment_ewma(z, start.astype(np.int64), alpha)
    out[:, CONTEXT.index("slot")] = seasonal_slots(candles.open_time, candles.interval)[0]
    out[:, CONTEXT.index("ret_1") :] = cross_section_signals(candles, start)
    return out


# What a target's `make` returns: classes (Labels, bars the finer candles changed) come from the
# class kernels; a regression returns (y, t1) or (y, t1, context) and the registry adds the rest.
MakeLabels = Callable[[Candles, LabelConfig, "Candles | None"], Any]


@dataclass(frozen=True)
class Target:
    """A kind of label (`labels.kind`): how it is made from candles, and how its forecasts are
    judged. Every module that trains, scores, reports or predicts asks the target; none branches
    on its name.

    - task: classify (LONG / HOLD / SHORT) or regress (a real-valued forecast).
    - make(candles, cfg, fine): classes return (Labels, bars the finer candles changed); a
      regression returns (y float, t1 int) or (y, t1, context), y NaN and t1 -1 where a bar has
      no target. Without a context the baselines read the target's own past (`lagged_context`).
    - units: what a forecast is in (shown beside every forecast).
    - loss: the training loss `labels.loss: auto` resolves to (mse or huber).
    - baselines: the forecasts it is judged against (names in `evaluation.baselines`).
    - losses: the per-window losses forecasts are compared on (`evaluation.forecast_tests`).
    - r2_reference: what R^2 is against: zero (a return's naive forecast) or the period's mean.
    - columns: the metrics its tables show, in order.
    - trades_sign: trading the forecast's sign means something (hit rate, P&L of the sign);
      across a universe, its cross-sectional rank is a book (quantile and top-k books), and the
      best of its cross-section baselines is the one with the highest validation rank IC (else
      the smallest validation MSE).
    - pooled_baselines: what it is judged against across a universe's assets (names in
      `evaluation.baselines.POOLED_BASELINES`: the cross-section's known effects, per-asset HARs).
    - plain: a forecast in plain words (given the horizon), beside the number.
    """

    name: str
    task: Task
    make: MakeLabels
    description: str = ""
    units: str = ""
    loss: str = "mse"
    baselines: tuple[str, ...] = ()
    losses: tuple[str, ...] = ("mse",)
    r2_reference: Literal["zero", "period_mean"] = "period_mean"
    columns: tuple[str, ...] = ("r2", "mse", "mse_ratio", "dm_t_mse", "ic", "rank_ic")
    trades_sign: bool = False
    pooled_baselines: tuple[str, ...] = ()
    plain: Callable[[float, int], str] | None = None

    @property
    def regress(self) -> bool:
        return self.task == "regress"

    def labels(self, candles: Candles, cfg: LabelConfig, fine: Candles | None = None) -> tuple[Labels, int]:
        """The labels of every bar, and how many the finer candles changed (0 for a regression)."""
        made = self.make(candles, cfg, fine)
        if not self.regress:
            return made
        y, t1, *rest = made
        y, t1 = np.asarray(y, np.float32), np.asarray(t1, np.int64)
        if y.shape != (len(candles),) or t1.shape != (len(candles),):
            raise DataError(
                f"target {self.name!r} made {y.shape[0]} targets for {len(candles)} bars: expected one per bar"
            )
        context = rest[0] if rest and rest[0] is not None else lagged_context(candles, y, t1, cfg)
        return Labels(y=y, t1=t1, context=np.asarray(context, np.float32)), 0


def _classes(build: Callable[..., Labels], uses_fine: bool) -> MakeLabels:
    def make(candles: Candles, cfg: LabelConfig, fine: Candles | None) -> tuple[Labels, int]:
        if not uses_fine:
            return build(candles, cfg), 0
        labels = build(candles, cfg, fine)
        changed = 0 if fine is None else int(np.count_nonzero(labels.y != build(candles, cfg).y))
        return labels, changed

    return make


def _forward_return(candles: Candles, cfg: LabelConfig, fine: Candles | None) -> tuple[np.ndarray, ...]:
    y, t1 = forward_return_target(candles, cfg.horizon)
    return y, t1, target_context(candles, cfg)


def _volatility(candles: Candles, cfg: LabelConfig, fine: Candles | None) -> tuple[np.ndarray, ...]:
    v = bar_variance(candles, cfg.estimator, fine)
    y, t1 = volatility_target(candles, cfg.horizon, v)
    return y, t1, target_context(candles, cfg, v)


RETURN_BASELINES = ("zero", "mean", "momentum", "reversal")
VOLATILITY_BASELINES = ("mean", "persistence", "ewma", "har", "har_seasonal", "har_j", "harq", "har_rolling")
POOLED_RETURN_BASELINES = ("reversal_1", "reversal", "momentum_12_1", "low_volatility", "size")
POOLED_VOLATILITY_BASELINES = ("persistence", "har", "har_asset", "har_seasonal_asset")
_BUILTIN = (
    Target("competitive", "classify", _classes(competitive_labels, True), "LONG and SHORT trades race"),
    Target("triple_barrier", "classify", _classes(triple_barrier_labels, True), "one long trade's barriers"),
    Target("fixed_horizon", "classify", _classes(fixed_horizon_labels, False), "the close horizon bars later"),
    Target(
        "forward_return",
        "regress",
        _forward_return,
        "the log return from the window's last close to the close horizon bars later",
        units="log return",
        loss="huber",  # fat tails
        baselines=RETURN_BASELINES,
        r2_reference="zero",
        columns=("ic", "rank_ic", "icir", "r2", "hit_rate", "pnl_per_trade", "trades", "mse", "mse_ratio", "dm_t_mse"),
        trades_sign=True,
        pooled_baselines=POOLED_RETURN_BASELINES,
    ),
    Target(
        "volatility",
        "regress",
        _volatility,
        "the log realised volatility of the next horizon bars",
        units="log realised volatility",
        baselines=VOLATILITY_BASELINES,
        pooled_baselines=POOLED_VOLATILITY_BASELINES,
        plain=lambda f, h: f"volatility {100 * math.exp(f):.2f}% over {h} bars",
        losses=("mse", "qlike"),
        columns=(
            "r2",
            "qlike",
            "mse",
            "qlike_ratio",
            "dm_t_qlike",
            "mse_ratio",
            "dm_t_mse",
            "ic",
            "r2_train_mean",
            "r2_prevailing_mean",
        ),
    ),
)
_USER: dict[str, Target] = {}  # registered in this process


def target(name: str) -> Target:
    """The target `name` (built-in or registered), or a one-line error listing those that exist."""
    for t in _BUILTIN:
        if t.name == name:
            return t
    if name in _USER:
        return _USER[name]
    raise ConfigError(f"labels.kind {name!r}: expected one of {', '.join(sorted(target_names()))}")


def target_names() -> list[str]:
    return [t.name for t in _BUILTIN] + list(_USER)


def register_target(spec: Target, replace: bool = False) -> Target:
    """Make a target available as `labels.kind: NAME` in this process (the config accepts the name
    from now on). A built-in name, or a registered one without `replace`, is refused."""
    if not _NAME.match(spec.name):
        raise ConfigError(f"target name {spec.name!r}: expected lower case letters, digits and _ (a config value)")
    if spec.task not in ("classify", "regress"):
        raise ConfigError(f"target {spec.name!r}: task {spec.task!r}, expected classify or regress")
    if any(t.name == spec.name for t in _BUILTIN) or (spec.name in _USER and not replace):
        raise ConfigError(f"target {spec.name!r} exists; pass replace=True to change a registered one")
    _USER[spec.name] = spec
    declare(spec.name, spec.task)
    return spec


def unregister_target(name: str) -> None:
    """Remove a registered target (a test's)."""
    _USER.pop(name, None)
    forget(name)


def training_loss(cfg: LabelConfig) -> str:
    """The regression loss, `labels.loss: auto` resolved by the target."""
    return cfg.loss if cfg.loss != "auto" else target(cfg.kind).loss


def make_labels(candles: Candles, cfg: LabelConfig | None = None, fine: Candles | None = None) -> tuple[Labels, int]:
    """The labels `cfg.kind` asks for, and how many of them the finer candles changed (0 without);
    `labels.shuffle_blocks` shuffles them in blocks that share no factor with the week."""
    cfg = cfg or LabelConfig()
    labels, changed = target(cfg.kind).labels(candles, cfg, fine)
    if cfg.shuffle_blocks:
        block = unseasonal_block(cfg.shuffle_blocks, candles.interval)
        if block != cfg.shuffle_blocks:
            log.info(
                "labels.shuffle_blocks=%d: blocks of %d bars instead, which share no factor with the %d-bar week, "
                "so no shuffled block keeps its hour of the day or day of the week",
                cfg.shuffle_blocks,
                block,
                season_bars(candles.interval),
            )
        labels = Labels(
            shuffled_in_blocks(labels.y, block, cfg.shuffle_seed, cfg.shuffle_blocks), labels.t1, labels.context
        )
    return labels, changed


_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

__all__ = [
    "bars_per_day",
    "cross_section_signals",
    "CONTEXT",
    "RETURN_BASELINES",
    "Target",
    "VOLATILITY_BASELINES",
    "bar_variance",
    "forward_return_target",
    "jump_and_quarticity",
    "lagged_context",
    "make_labels",
    "register_target",
    "seasonal_slots",
    "target",
    "target_context",
    "target_names",
    "training_loss",
    "unregister_target",
    "volatility_target",
]
