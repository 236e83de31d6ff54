"""Forward-looking trade labels (SHORT=0, HOLD=1, LONG=2, -1 = none): the TP/SL "competitive"
label, the triple barrier and the fixed horizon.

From the close of bar t a LONG and a SHORT are opened with take-profit and stop-loss barriers and
followed over bars t+1 .. t+horizon using each bar's high and low. LONG if only the long reaches
its take-profit first, SHORT if only the short does, HOLD otherwise (neither, or both). A bar that
touches a trade's TP and SL together resolves by `same_bar`: 'stop' (pessimistic) or 'target'.
`t1[t]` is the last bar the label looked at; the split purges on it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numba
import numpy as np

from candleflow.config import LabelConfig
from candleflow.config.intervals import interval_ns
from candleflow.data.candles import Candles
from candleflow.dataset.features import ewm_volatility
from candleflow.errors import ConfigError, DataError

log = logging.getLogger("candleflow")

SHORT, HOLD, LONG = 0, 1, 2
CLASS_NAMES = ("SHORT", "HOLD", "LONG")


@dataclass(frozen=True)
class Labels:
    """Class per bar (int8, -1 where no label exists) or a regression target (float32, NaN where
    none exists), the last bar each label looked at, and for regression targets the baselines'
    causal context (N, len(targets.CONTEXT))."""

    y: np.ndarray
    t1: np.ndarray
    context: np.ndarray | None = None

    @property
    def regression(self) -> bool:
        return bool(np.issubdtype(self.y.dtype, np.floating))

    def one_hot(self) -> np.ndarray:
        """(N, 3) float32; rows without a label are all zero."""
        return one_hot(self.y)

    def counts(self) -> dict[str, int]:
        if self.regression:
            return {"targets": int(np.isfinite(self.y).sum()), "none": int((~np.isfinite(self.y)).sum())}
        return {name: int((self.y == k).sum()) for k, name in enumerate(CLASS_NAMES)} | {
            "none": int((self.y < 0).sum())
        }


def has_label(y: np.ndarray) -> np.ndarray:
    """Where a label exists: class >= 0, or a finite regression target."""
    return np.isfinite(y) if np.issubdtype(y.dtype, np.floating) else y >= 0


def one_hot(y: np.ndarray, n_classes: int = 3) -> np.ndarray:
    """One-hot float32 rows for int labels; negative labels give zero rows."""
    out = np.zeros((y.shape[0], n_classes), dtype=np.float32)
    ok = y >= 0
    out[np.flatnonzero(ok), y[ok].astype(np.intp)] = 1.0
    return out


POINTER_CHUNK = 1 << 18
LABEL_CHUNK = 1 << 15  # bars per parallel task: its pointers stay in cache


@numba.njit(cache=True, parallel=True)
def jump_pointers(high: np.ndarray, low: np.ndarray, chunk: int = POINTER_CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """For each bar i: the first later bar with a higher high, and with a lower low (int32), or
    the end of i's chunk of `chunk` bars when there is none inside it. Every bar between i and
    its pointer has high <= high[i] (low >= low[i]), so a search for a level beyond bar i's may
    jump straight there; a pointer stopped at a chunk end only costs the search one extra stop."""
    n = high.shape[0]
    nh = np.empty(n, dtype=np.int32)
    nl = np.empty(n, dtype=np.int32)
    for c in numba.prange((n + chunk - 1) // chunk):
        lo, hi = c * chunk, min(n, (c + 1) * chunk)
        nh[lo:hi], nl[lo:hi] = _local_pointers(high, low, lo, hi)
    return nh, nl


@numba.njit(cache=True)
def _local_pointers(high, low, lo, hi):
    """jump_pointers for bars lo..hi-1 alone, as absolute bar numbers, hi where none."""
    m = hi - lo
    nh = np.empty(m, dtype=np.int32)
    nl = np.empty(m, dtype=np.int32)
    stack_h = np.empty(m, dtype=np.int32)
    stack_l = np.empty(m, dtype=np.int32)
    th = 0
    tl = 0
    for j in range(lo, hi):
        while th > 0 and high[stack_h[th - 1]] < high[j]:
            th -= 1
            nh[stack_h[th] - lo] = j
        stack_h[th] = j
        th += 1
        while tl > 0 and low[stack_l[tl - 1]] > low[j]:
            tl -= 1
            nl[stack_l[tl] - lo] = j
        stack_l[tl] = j
        tl += 1
    for k in range(th):
        nh[stack_h[k] - lo] = hi
    for k in range(tl):
        nl[stack_l[k] - lo] = hi
    return nh, nl


@numba.njit(cache=True, inline="always")
def _first_above(high, nxt, base, start, stop, near, far):
    """First bars in [start, stop) with high >= near and with high >= far (near <= far), stop
    where none; nxt[j - base] is bar j's next-higher pointer. Follows the next-higher chain: only the running maxima from `start` are
    visited (a handful of bars, not the whole horizon), and the far search goes on from the near hit."""
    j = start
    while j < stop and high[j] < near:
        j = nxt[j - base]
    first = min(j, stop)
    while j < stop and high[j] < far:
        j = nxt[j - base]
    return first, min(j, stop)


@numba.njit(cache=True, inline="always")
def _first_below(low, nxt, base, start, stop, near, far):
    """As _first_above for lows at or below `near` and `far` (near >= far)."""
    j = start
    while j < stop and low[j] > near:
        j = nxt[j - base]
    first = min(j, stop)
    while j < stop and low[j] > far:
        j = nxt[j - base]
    return first, min(j, stop)


@numba.njit(cache=True, inline="always")
def _up_first(fine_high, fine_low, fine_lo, fine_hi, j, up_level, down_level, default):
    """Coarse bar j touched both levels: did price reach `up_level` first? Decided by the finer
    candles inside bar j when there are any and one of them touches only one level; else `default`."""
    for f in range(fine_lo[j], fine_hi[j]):
        up = fine_high[f] >= up_level
        down = fine_low[f] <= down_level
        if up and down:
            return default
        if up or down:
            return up
    return default


@numba.njit(cache=True, parallel=True)
def _competitive(
    close,
    high,
    low,
    seg_ends,
    up_tp,
    down_sl,
    down_tp,
    up_sl,
    horizon,
    stop_first,
    fine_high,
    fine_low,
    fine_lo,
    fine_hi,
    chunk,
):
    """Chunks of bars in parallel; each chunk builds the jump pointers of its bars and the next
    `horizon` (cache-resident) and labels its bars with them."""
    n = close.shape[0]
    y = np.full(n, -1, dtype=np.int8)
    t1 = np.full(n, -1, dtype=np.int64)
    for c in numba.prange((n + chunk - 1) // chunk):
        lo, hi = c * chunk, min(n, (c + 1) * chunk)
        nh, nl = _local_pointers(high, low, lo, min(n, hi + horizon + 1))
        s = np.searchsorted(seg_ends, lo, side="right")
        for t in range(lo, hi):
            while seg_ends[s] <= t:
                s += 1
            end = t + horizon + 1
            m = t if up_tp.shape[0] > 1 else 0  # per-bar (volatility) or one (percent) multiplier
            if end > seg_ends[s] or not (up_tp[m] > 1.0) or not (up_sl[m] > 1.0):  # NaN: no volatility yet
                continue
            px = close[t]
            # the long: TP above, SL below; the short: TP below, SL above. end = never touched.
            long_tp_level, short_sl_level = px * up_tp[m], px * up_sl[m]
            long_sl_level, short_tp_level = px * down_sl[m], px * down_tp[m]
            if long_tp_level <= short_sl_level:
                l_tp, s_sl = _first_above(high, nh, lo, t + 1, end, long_tp_level, short_sl_level)
            else:
                s_sl, l_tp = _first_above(high, nh, lo, t + 1, end, short_sl_level, long_tp_level)
            if long_sl_level >= short_tp_level:
                l_sl, s_tp = _first_below(low, nl, lo, t + 1, end, long_sl_level, short_tp_level)
            else:
                s_tp, l_sl = _first_below(low, nl, lo, t + 1, end, short_tp_level, long_sl_level)
            jl = min(l_tp, l_sl)
            js = min(s_tp, s_sl)
            long_win = l_tp < l_sl
            if l_tp == l_sl and l_tp < end:
                long_win = _up_first(
                    fine_high, fine_low, fine_lo, fine_hi, l_tp, long_tp_level, long_sl_level, not stop_first
                )
            short_win = s_tp < s_sl
            if s_tp == s_sl and s_tp < end:
                short_win = not _up_first(
                    fine_high, fine_low, fine_lo, fine_hi, s_tp, short_sl_level, short_tp_level, stop_first
                )
            if long_win and not short_win:
                y[t] = 2
            elif short_win and not long_win:
                y[t] = 0
            else:
                y[t] = 1
            t1[t] = max(jl, js) if jl < end and js < end else end - 1
    return y, t1


@numba.njit(cache=True, inline="always")
def _first_exit(high, low, start, stop, up, down, long_side):
    """One trade over bars [start, stop): (exit bar, outcome) with outcome 1 = target first,
    0 = stop first, 2 = both in the exit bar; (-1, 0) when it never exits."""
    for j in range(start, stop):
        hit_up = high[j] >= up
        hit_down = low[j] <= down
        if hit_up or hit_down:
            if hit_up and hit_down:
                return j, 2
            return j, 1 if (hit_up if long_side else hit_down) else 0
    return -1, 0


@numba.njit(cache=True, parallel=True)
def _competitive_scan(
    close,
    high,
    low,
    seg_ends,
    up_tp,
    down_sl,
    down_tp,
    up_sl,
    horizon,
    stop_first,
    fine_high,
    fine_low,
    fine_lo,
    fine_hi,
    chunk,
):
    """The same labels as `_competitive` by a plain forward scan of each trade, bar by bar (the
    reference's loop, run on all cores in chunks of bars)."""
    n = close.shape[0]
    y = np.full(n, -1, dtype=np.int8)
    t1 = np.full(n, -1, dtype=np.int64)
    per_bar = 1 if up_tp.shape[0] > 1 else 0  # volatility: a multiplier per bar; percent: one
    for c in numba.prange((n + chunk - 1) // chunk):
        lo, hi = c * chunk, min(n, (c + 1) * chunk)
        s = np.searchsorted(seg_ends, lo, side="right")
        for t in range(lo, hi):
            while seg_ends[s] <= t:
                s += 1
            end = t + horizon + 1
            m = t * per_bar
            if end > seg_ends[s] or not (up_tp[m] > 1.0) or not (up_sl[m] > 1.0):
                continue
            px = close[t]
            long_tp_level, long_sl_level = px * up_tp[m], px * down_sl[m]
            short_sl_level, short_tp_level = px * up_sl[m], px * down_tp[m]
            jl, lo_out = _first_exit(high, low, t + 1, end, long_tp_level, long_sl_level, True)
            js, so_out = _first_exit(high, low, t + 1, end, short_sl_level, short_tp_level, False)
            long_win = lo_out == 1
            if lo_out == 2:
                long_win = _up_first(
                    fine_high, fine_low, fine_lo, fine_hi, jl, long_tp_level, long_sl_level, not stop_first
                )
            short_win = so_out == 1
            if so_out == 2:
                short_win = not _up_first(
                    fine_high, fine_low, fine_lo, fine_hi, js, short_sl_level, short_tp_level, stop_first
                )
            if long_win and not short_win:
                y[t] = 2
            elif short_win and not long_win:
                y[t] = 0
            else:
                y[t] = 1
            t1[t] = max(jl, js) if jl >= 0 and js >= 0 else end - 1
    return y, t1


@numba.njit(cache=True, parallel=True)
def _triple_barrier(
    close,
    high,
    low,
    seg_ends,
    upper,
    lower,
    horizon,
    stop_first,
    vertical_sign,
    fine_high,
    fine_low,
    fine_lo,
    fine_hi,
    chunk,
):
    n = close.shape[0]
    y = np.full(n, -1, dtype=np.int8)
    t1 = np.full(n, -1, dtype=np.int64)
    for c in numba.prange((n + chunk - 1) // chunk):
        lo, hi = c * chunk, min(n, (c + 1) * chunk)
        nh, nl = _local_pointers(high, low, lo, min(n, hi + horizon + 1))
        s = np.searchsorted(seg_ends, lo, side="right")
        for t in range(lo, hi):
            while seg_ends[s] <= t:
                s += 1
            end = t + horizon + 1
            m = t if upper.shape[0] > 1 else 0
            if end > seg_ends[s] or not (upper[m] > 1.0):
                continue
            up_level, down_level = close[t] * upper[m], close[t] * lower[m]
            ju, _ = _first_above(high, nh, lo, t + 1, end, up_level, up_level)
            jd, _ = _first_below(low, nl, lo, t + 1, end, down_level, down_level)
            if ju < jd:
                y[t], t1[t] = 2, ju
            elif jd < ju:
                y[t], t1[t] = 0, jd
            elif ju < end:  # both in one bar
                up = _up_first(fine_high, fine_low, fine_lo, fine_hi, ju, up_level, down_level, not stop_first)
                y[t], t1[t] = (2 if up else 0), ju
            else:  # the vertical barrier
                last = close[end - 1]
                y[t] = 1 if not vertical_sign or last == close[t] else (2 if last > close[t] else 0)
                t1[t] = end - 1
    return y, t1


def barrier_multipliers(candles: Candles, cfg: LabelConfig, compact: bool = False) -> tuple[np.ndarray, ...]:
    """Per-bar price multipliers of the entry close: (up by tp, down by sl, down by tp, up by sl).

    percent: the long's TP is close * (1 + tp/100), the short's TP close * (1 - tp/100).
    volatility: distances in log price, k * sigma * sqrt(horizon) with sigma the EWMA volatility
    of log returns, symmetric in log space so a driftless market gives LONG and SHORT equal odds.
    NaN where there is too little history for a volatility. `compact`: percent barriers as
    one-element arrays (the same for every bar) instead of n copies.
    """
    n = len(candles)
    if cfg.barrier == "percent":
        tp, sl, k = max(cfg.tp / 100.0, cfg.floor), cfg.sl / 100.0, 1 if compact else n
        return (np.full(k, 1 + tp), np.full(k, 1 - sl), np.full(k, 1 - tp), np.full(k, 1 + sl))
    vol = np.full(n, np.nan)
    for start, stop in candles.segments:
        vol[start:stop] = ewm_volatility(candles.close[start:stop], cfg.volatility_span)
    scale = vol * np.sqrt(cfg.horizon)
    tp_log = cfg.tp * scale
    if cfg.floor > 0:  # the take-profit never closer than the floor (NaN stays NaN)
        tp_log = np.where(np.isnan(tp_log), np.nan, np.maximum(tp_log, np.log1p(cfg.floor)))
    return (np.exp(tp_log), np.exp(-cfg.sl * scale), np.exp(-tp_log), np.exp(cfg.sl * scale))


def take_profit_distances(candles: Candles, cfg: LabelConfig) -> np.ndarray:
    """The long take-profit's distance from the entry close, as a fraction of it, per bar (NaN
    where there is too little history)."""
    up_tp = barrier_multipliers(candles, cfg)[0]
    return up_tp - 1.0


def competitive_labels(
    candles: Candles, cfg: LabelConfig | None = None, fine: Candles | None = None, kernel: str = "auto"
) -> Labels:
    """TP/SL competitive labels per bar; -1 where the forward window leaves the segment. With
    `fine` (finer candles of the same market), a bar touching a trade's TP and SL together is
    resolved by which the finer candles reach first. `kernel`: `scan` (each trade scanned bar by
    bar), `pointers` (jump-pointer chains: skips bars that cannot be a first touch), or `auto`:
    the faster one as measured (benchmarks/bench_labels.py): scan for volatility barriers, which
    trades usually reach within the horizon, pointers for percent barriers, which on quiet real
    1m data they often never reach. Both give identical labels (tests/test_labels.py)."""
    cfg = cfg or LabelConfig()
    if kernel == "auto":
        kernel = "scan" if cfg.barrier == "volatility" else "pointers"
    if kernel not in KERNELS:
        raise ValueError(f"labels kernel {kernel!r}: expected auto or one of {', '.join(KERNELS)}")
    y, t1 = KERNELS[kernel](
        candles.close,
        candles.high,
        candles.low,
        _segment_ends(candles),
        *barrier_multipliers(candles, cfg, compact=True),
        cfg.horizon,
        cfg.same_bar == "stop",
        *_fine_arrays(candles, fine),
        LABEL_CHUNK,
    )
    return Labels(y=y, t1=t1)


KERNELS = {"scan": _competitive_scan, "pointers": _competitive}


def triple_barrier_labels(candles: Candles, cfg: LabelConfig | None = None, fine: Candles | None = None) -> Labels:
    """Triple barrier (Lopez de Prado) from the close of each bar: LONG (+1) if the upper barrier
    (tp) is touched first, SHORT (-1) if the lower (sl), and at the vertical barrier (horizon)
    HOLD, or the sign of the return with `vertical: sign`. Same-bar touches as in the competitive label."""
    cfg = cfg or LabelConfig(kind="triple_barrier")
    up_tp, down_sl, _, _ = barrier_multipliers(candles, cfg, compact=True)
    y, t1 = _triple_barrier(
        candles.close,
        candles.high,
        candles.low,
        _segment_ends(candles),
        up_tp,
        down_sl,
        cfg.horizon,
        cfg.same_bar == "stop",
        cfg.vertical == "sign",
        *_fine_arrays(candles, fine),
        LABEL_CHUNK,
    )
    return Labels(y=y, t1=t1)


def fixed_horizon_labels(candles: Candles, cfg: LabelConfig | None = None) -> Labels:
    """LONG if the close `horizon` bars later is above close * up-by-tp, SHORT if below
    close * down-by-tp, HOLD between; t1 = t + horizon."""
    cfg = cfg or LabelConfig(kind="fixed_horizon")
    up_tp, _, down_tp, _ = barrier_multipliers(candles, cfg)
    n, h = len(candles), cfg.horizon
    y = np.full(n, -1, dtype=np.int8)
    t1 = np.full(n, -1, dtype=np.int64)
    t = np.arange(n - h) if n > h else np.zeros(0, dtype=np.int64)
    ok = (t + h < candles.segments[candles.segment_id, 1][t]) & np.isfinite(up_tp[t])
    t = t[ok]
    later, px = candles.close[t + h], candles.close[t]
    y[t] = np.where(later > px * up_tp[t], LONG, np.where(later < px * down_tp[t], SHORT, HOLD))
    t1[t] = t + h
    return Labels(y=y, t1=t1)


def season_bars(interval: str) -> int:
    """Bars per seasonal cycle: the week's bars for intraday and daily bars (168 for 1h, 7 for
    1d), multiplied by 5 for daily bars (a trading week of 5 days); 1 for longer bars."""
    step = interval_ns(interval)
    week = 7 * 24 * 3_600_000_000_000
    if step >= week or week % step:
        return 1
    return week // step * (5 if step == week // 7 else 1)


def unseasonal_block(block: int, interval: str) -> int:
    """The smallest block length >= `block` that shares no factor with the seasonal cycle's bars.

    A block shuffle whose blocks are a multiple of the day or the week (168 hourly bars) moves
    every label by whole weeks, so a label keeps its hour of the week and any seasonal forecast
    (persistence of a seasonal volatility) keeps its skill under the "null": the control is then
    biased by construction. Blocks coprime with the cycle land at every phase."""
    period = season_bars(interval)
    while period > 1 and math.gcd(block, period) != 1:
        block += 1
    return block


MIN_SHUFFLE_BLOCKS = 3  # labels.shuffle_blocks must cut the labels into at least this many blocks


def shuffled_in_blocks(y: np.ndarray, block: int, seed: int = 0, asked: int | None = None) -> np.ndarray:
    """`y` with its blocks of `block` consecutive labelled bars in a seeded random order (the control
    `labels.shuffle_blocks`: the labels keep their distribution and local autocorrelation but
    lose any link to the bars they sit on). Fewer than MIN_SHUFFLE_BLOCKS blocks is a ConfigError:
    a permutation of one or two blocks is often the identity, and the control would then keep
    the real labels and report the real edge; a permutation that comes out as the identity is
    rotated by one block, so no block stays where it was. `asked`: the length the user set, named
    in the error where `block` was raised from it (`unseasonal_block`)."""
    out = y.copy()
    at = np.flatnonzero(has_label(y))  # bars without a label keep none (their t1 is -1)
    starts = np.arange(0, at.size, block)
    if starts.size < MIN_SHUFFLE_BLOCKS:
        raise ConfigError(
            f"labels.shuffle_blocks={asked or block}"
            + (f" (blocks of {block}, coprime with the week)" if asked and asked != block else "")
            + f": the {at.size:,} labelled bars make {starts.size} block(s); the control "
            f"needs at least {MIN_SHUFFLE_BLOCKS} (a shuffle of fewer can leave the labels where they are); use at "
            f"most {max(at.size // MIN_SHUFFLE_BLOCKS, 1):,}"
        )
    order = np.random.default_rng(seed).permutation(starts.size)
    if np.array_equal(order, np.arange(starts.size)):
        order = np.roll(order, 1)
    if at.size:
        out[at] = np.concatenate([y[at[starts[k] : starts[k] + block]] for k in order])
    return out


def _segment_ends(candles: Candles) -> np.ndarray:
    """Each segment's stop row, in order (int64)."""
    return np.ascontiguousarray(candles.segments[:, 1], dtype=np.int64)


def _fine_arrays(candles: Candles, fine: Candles | None) -> tuple[np.ndarray, ...]:
    """(fine high, fine low, first and end fine row of each coarse bar): empty ranges without `fine`."""
    if fine is None:
        empty = np.zeros(len(candles), dtype=np.int64)
        return np.zeros(1), np.zeros(1), empty, empty
    step = interval_ns(candles.interval)
    if interval_ns(fine.interval) >= step:
        raise DataError(f"finer candles must have a shorter interval than {candles.interval}; got {fine.interval}")
    lo = np.searchsorted(fine.open_time, candles.open_time, side="left")
    hi = np.searchsorted(fine.open_time, candles.open_time + step, side="left")
    return fine.high, fine.low, lo.astype(np.int64), hi.astype(np.int64)
