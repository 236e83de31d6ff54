"""Forward-looking trade labels: the TP/SL "competitive" label (SHORT=0, HOLD=1, LONG=2, -1 = none).

From the close of bar t a LONG and a SHORT are opened with take-profit and stop-loss barriers and
followed over bars t+1 .. t+horizon using each bar's high and low. LONG if only the long reaches
its take-profit first, SHORT if only the short does, HOLD otherwise (neither, or both). A bar that
touches a trade's TP and SL together resolves by `same_bar`: 'stop' (pessimistic) or 'target'.
`t1[t]` is the last bar the label looked at; the split purges on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from .candles import Candles
from .config import LabelConfig
from .features import ewm_volatility

SHORT, HOLD, LONG = 0, 1, 2
CLASS_NAMES = ("SHORT", "HOLD", "LONG")


@dataclass(frozen=True)
class Labels:
    """Class per bar (int8, -1 where no label exists) and the last bar each label looked at."""

    y: np.ndarray
    t1: np.ndarray

    def one_hot(self) -> np.ndarray:
        """(N, 3) float32; rows without a label are all zero."""
        return one_hot(self.y)

    def counts(self) -> dict[str, int]:
        return {name: int((self.y == k).sum()) for k, name in enumerate(CLASS_NAMES)} | {
            "none": int((self.y < 0).sum())}


def one_hot(y: np.ndarray, n_classes: int = 3) -> np.ndarray:
    """One-hot float32 rows for int labels; negative labels give zero rows."""
    out = np.zeros((y.shape[0], n_classes), dtype=np.float32)
    ok = y >= 0
    out[np.flatnonzero(ok), y[ok].astype(np.intp)] = 1.0
    return out


@numba.njit(cache=True)
def _first_exit(high, low, start, stop, up, down, long_side, stop_first):
    """Scan bars start..stop-1; return (exit bar, won) for one trade, exit=-1 if none."""
    for j in range(start, stop):
        hit_up = high[j] >= up
        hit_down = low[j] <= down
        if hit_up or hit_down:
            target = hit_up if long_side else hit_down
            stop_hit = hit_down if long_side else hit_up
            if target and stop_hit:
                return j, not stop_first
            return j, target
    return -1, False


@numba.njit(cache=True)
def _competitive(close, high, low, seg_stop, up_tp, down_sl, down_tp, up_sl, horizon, stop_first):
    n = close.shape[0]
    y = np.full(n, -1, dtype=np.int8)
    t1 = np.full(n, -1, dtype=np.int64)
    for t in range(n):
        end = t + horizon + 1
        if end > seg_stop[t] or not (up_tp[t] > 1.0) or not (up_sl[t] > 1.0):
            continue
        c = close[t]
        jl, long_win = _first_exit(high, low, t + 1, end, c * up_tp[t], c * down_sl[t], True, stop_first)
        js, short_win = _first_exit(high, low, t + 1, end, c * up_sl[t], c * down_tp[t], False, stop_first)
        if long_win and not short_win:
            y[t] = 2
        elif short_win and not long_win:
            y[t] = 0
        else:
            y[t] = 1
        last = end - 1
        if jl >= 0 and js >= 0:
            last = max(jl, js)
        t1[t] = last
    return y, t1


def barrier_multipliers(candles: Candles, cfg: LabelConfig) -> tuple[np.ndarray, ...]:
    """Per-bar price multipliers of the entry close: (up by tp, down by sl, down by tp, up by sl).

    percent: the long's TP is close * (1 + tp/100), the short's TP close * (1 - tp/100).
    volatility: distances in log price, k * sigma * sqrt(horizon) with sigma the EWMA volatility
    of log returns, symmetric in log space so a driftless market gives LONG and SHORT equal odds.
    NaN where there is too little history for a volatility.
    """
    n = len(candles)
    if cfg.barrier == "percent":
        tp, sl = cfg.tp / 100.0, cfg.sl / 100.0
        return (np.full(n, 1 + tp), np.full(n, 1 - sl), np.full(n, 1 - tp), np.full(n, 1 + sl))
    vol = np.full(n, np.nan)
    for start, stop in candles.segments:
        vol[start:stop] = ewm_volatility(candles.close[start:stop], cfg.volatility_span)
    scale = vol * np.sqrt(cfg.horizon)
    return (np.exp(cfg.tp * scale), np.exp(-cfg.sl * scale), np.exp(-cfg.tp * scale), np.exp(cfg.sl * scale))


def competitive_labels(candles: Candles, cfg: LabelConfig | None = None) -> Labels:
    """TP/SL competitive labels per bar; -1 where the forward window leaves the segment."""
    cfg = cfg or LabelConfig()
    mults = [np.nan_to_num(m, nan=0.0) for m in barrier_multipliers(candles, cfg)]
    seg_stop = candles.segments[candles.segment_id, 1]
    y, t1 = _competitive(candles.close, candles.high, candles.low, seg_stop, *mults,
                         cfg.horizon, cfg.same_bar == "stop")
    return Labels(y=y, t1=t1)
