"""The indicator library: TA-Lib's indicators (the field's standard C library; its 0.8 wheels
carry it, so `pip install` needs no compiler) in scale-free forms a network can take: bounded
oscillators rescaled to about [-1, 1], prices and ranges as ratios to the close, volume flows as
rolling z-scores. Plus the order-flow features of Binance's extra kline columns.

Each function takes one segment's columns (`s`: open_time, open, high, low, close, volume and the
source's extras) and its parameters, and returns float64 of the segment's length, NaN where its
look-back is not yet full. All are causal: TA-Lib's indicators read bars <= t only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from candleflow.errors import ConfigError


def _ta() -> Any:
    import talib

    return talib


def _f(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float64)


def _rolling_z(x: np.ndarray, n: int) -> np.ndarray:
    """(x - rolling mean) / rolling population std over the last n bars: NaN while the window holds
    a NaN (a warm-up) or is not yet full, 0 on a flat stretch (std at most 1e-9 of the mean)."""
    x = _f(x)
    out = np.empty_like(x)
    _rolling_moments(x, int(n), True, out)
    return out


@numba.njit(cache=True)
def _rolling_moments(x: np.ndarray, n: int, z_score: bool, out: np.ndarray) -> None:
    """Over the last n values: the z-score of the latest (`z_score`) or the sum of squares; NaN
    while the window holds a NaN or is not full.

    One pass: the window's mean and sum of squared deviations slide by Welford's add-one,
    drop-one update, recomputed exactly every 1024 bars so rounding cannot drift, and whenever
    the spread fell below 1e-6 of its peak since then (a jump left the window). That replaces
    TA-Lib's SMA + STDDEV + three NumPy passes, and keeps the digits of OBV's levels of 1e9+."""
    inv_n = 1.0 / n
    last_nan = -1
    since_exact = 1024
    mean = 0.0
    m2 = 0.0
    peak = 0.0
    for i in range(x.shape[0]):
        if np.isnan(x[i]):
            last_nan = i
            since_exact = 1024
        if i - last_nan < n:
            out[i] = np.nan
            continue
        if since_exact < 1024:
            old = x[i - n]
            new_mean = mean + (x[i] - old) * inv_n
            m2 += (x[i] - old) * (x[i] - new_mean + old - mean)
            mean = new_mean
            since_exact += 1
            peak = max(peak, m2)
        if since_exact >= 1024 or m2 < 1e-6 * peak:
            mean = 0.0
            for k in range(i - n + 1, i + 1):
                mean += x[k]
            mean *= inv_n
            m2 = 0.0
            for k in range(i - n + 1, i + 1):
                m2 += (x[k] - mean) ** 2
            since_exact = 0
            peak = m2
        if not z_score:
            out[i] = max(m2, 0.0) + n * mean * mean
            continue
        std = np.sqrt(max(m2, 0.0) * inv_n)
        out[i] = (x[i] - mean) / std if std > 1e-9 * abs(mean) and std > 0.0 else 0.0


def _scale(x: np.ndarray, by: float | np.ndarray, add: float = 0.0) -> np.ndarray:
    """x / by + add in place: x is the caller's own new array (a TA-Lib output), so the scale-free
    form costs no new array; the same operations, so the same bits, as `x / by + add`."""
    np.divide(x, by, out=x)
    if add:
        x += add
    return x


def _need(s: dict, column: str, feature: str) -> np.ndarray:
    if column not in s:
        raise ConfigError(
            f"feature {feature!r} needs the {column!r} column (Binance klines have it); this source does not give it"
        )
    return _f(s[column])


@dataclass(frozen=True)
class Indicator:
    """One library feature: fn(columns, *params), its default parameters, its warm-up in bars as a
    function of the parameters, and what it is."""

    fn: Callable[..., np.ndarray]
    defaults: tuple[float, ...]
    warmup: Callable[..., int]
    description: str


def _i(*p: float) -> tuple[int, ...]:
    return tuple(int(v) for v in p)


def _memo(s: dict, key: tuple, make: Callable[[], Any]) -> Any:
    """One segment's result of a multi-output indicator, computed once for all the features that
    read it (stoch_k and stoch_d, the three MACD lines, the Bollinger features)."""
    cache = s.setdefault("__memo__", {})
    if key not in cache:
        cache[key] = make()
    return cache[key]


def _stoch(s: dict, fk: float, sk: float, sd: float, which: int) -> np.ndarray:
    k, d = _memo(
        s,
        ("stoch", fk, sk, sd),
        lambda: _ta().STOCH(_f(s["high"]), _f(s["low"]), _f(s["close"]), *_i(fk, sk), 0, int(sd), 0),
    )
    out = (k if which == 0 else d) / 50.0  # k and d are shared: a new array, then in place
    out -= 1.0
    return out


def _macd(s: dict, fast: float, slow: float, signal: float, which: int) -> np.ndarray:
    parts = _memo(s, ("macd", fast, slow, signal), lambda: _ta().MACD(_f(s["close"]), *_i(fast, slow, signal)))
    return parts[which] / s["close"]  # shared parts: a new array


def _bbands(s: dict, n: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _memo(s, ("bbands", n), lambda: _ta().BBANDS(_f(s["close"]), timeperiod=int(n), nbdevup=2.0, nbdevdn=2.0))


def _bb_width(s: dict, n: float) -> np.ndarray:
    up, mid, lo = _bbands(s, n)
    width = np.subtract(up, lo)
    width /= mid
    return width


def _bb_pos(s: dict, n: float) -> np.ndarray:
    up, mid, lo = _bbands(s, n)
    out = np.empty_like(up)
    _position(_f(s["close"]), lo, up, mid, out)
    return out


def _keltner_pos(s: dict, n: float) -> np.ndarray:
    ta = _ta()
    mid = ta.EMA(_f(s["close"]), timeperiod=int(n))
    atr = ta.ATR(_f(s["high"]), _f(s["low"]), _f(s["close"]), timeperiod=int(n))
    _keltner(_f(s["close"]), mid, atr, atr)  # in place: atr is this call's own array
    return atr


@numba.njit(cache=True)
def _position(x: np.ndarray, lower: np.ndarray, upper: np.ndarray, mid: np.ndarray, out: np.ndarray) -> None:
    """Where x sits between lower and upper, -0.5 .. 0.5: NaN where an input is NaN, 0 where the
    band has no width (a flat stretch)."""
    for i in range(x.shape[0]):
        width = upper[i] - lower[i]
        if np.isnan(x[i]) or np.isnan(width) or np.isnan(mid[i]):
            out[i] = np.nan
        elif width > 0.0:
            out[i] = (x[i] - lower[i]) / width - 0.5
        else:
            out[i] = 0.0


@numba.njit(cache=True)
def _keltner(x: np.ndarray, mid: np.ndarray, atr: np.ndarray, out: np.ndarray) -> None:
    """(x - mid) / (2 atr): NaN where an input is NaN, 0 where the ATR is 0; out may be atr."""
    for i in range(x.shape[0]):
        a = atr[i]
        if np.isnan(x[i]) or np.isnan(mid[i]) or np.isnan(a):
            out[i] = np.nan
        elif a > 0.0:
            out[i] = (x[i] - mid[i]) / (2.0 * a)
        else:
            out[i] = 0.0


def _log_close(s: dict) -> np.ndarray:
    """log(close), once per segment for the features that read it: log(close / m) is computed as
    log(close) - log(m), since a logarithm of ratios near 1 costs several times one of prices."""
    return _memo(s, ("log_close",), lambda: np.log(_f(s["close"])))


def _log_gap(s: dict, mean: np.ndarray) -> np.ndarray:
    out = np.log(mean)
    np.subtract(_log_close(s), out, out=out)
    return out


def _rv(s: dict, n: float) -> np.ndarray:
    log_close = _log_close(s)
    returns = np.empty_like(log_close)
    returns[:1] = np.nan  # the first bar has no return
    np.subtract(log_close[1:], log_close[:-1], out=returns[1:])
    out = np.empty_like(returns)
    _rolling_moments(returns, int(n), False, out)  # the sum of the last n squared returns
    np.maximum(out, 1e-20, out=out)
    np.log(out, out=out)  # NumPy's vectorised log: several times numba's scalar one
    out *= 0.5
    return out


def _trade_size(s: dict, n: float) -> np.ndarray:
    trades = _need(s, "trades", "trade_size")
    size = np.maximum(s["volume"], 1e-12)  # log(volume / trades), in place on this new array
    with np.errstate(invalid="ignore", divide="ignore"):
        np.divide(size, np.maximum(trades, 1.0), out=size)
        np.log(size, out=size)
    return _minus_ema(size, n)


def _minus_ema(x: np.ndarray, n: float) -> np.ndarray:
    """x - EMA(x, n), written over the EMA's own new array."""
    mean = _ta().EMA(x, timeperiod=int(n))
    np.subtract(x, mean, out=mean)
    return mean


def _log_ratio_to_mean(x: np.ndarray, n: float) -> np.ndarray:
    lx = np.maximum(x, 0.0)
    np.log1p(lx, out=lx)
    return _minus_ema(lx, n)


def _dollar_volume(s: dict, n: float) -> np.ndarray:
    """log of the mean traded value (close x volume) over the last n bars; NaN before n bars."""
    k = int(n)
    value = np.asarray(s["close"], np.float64) * np.asarray(s["volume"], np.float64)
    out = np.full(value.shape, np.nan)
    if value.size >= k:
        csum = np.concatenate([[0.0], np.cumsum(value)])
        mean = (csum[k:] - csum[:-k]) / k
        with np.errstate(divide="ignore"):
            out[k - 1 :] = np.where(mean > 0, np.log(mean), np.nan)
    return out


def _taker_buy_ratio(s: dict) -> np.ndarray:
    buy = _need(s, "taker_buy_base", "taker_buy_ratio")
    volume = s["volume"]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.divide(buy, volume)
    ratio -= 0.5
    ratio[~(volume > 0)] = 0.0  # no volume (or NaN): no order flow to read
    return ratio


def _hlc(s: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _f(s["high"]), _f(s["low"]), _f(s["close"])


LIBRARY: dict[str, Indicator] = {
    "stoch_k": Indicator(
        lambda s, a, b, c: _stoch(s, a, b, c, 0),
        (14, 3, 3),
        lambda a, b, c: int(a + b + c),
        "slow stochastic %K (fastk, slowk, slowd), rescaled to [-1, 1]",
    ),
    "stoch_d": Indicator(
        lambda s, a, b, c: _stoch(s, a, b, c, 1),
        (14, 3, 3),
        lambda a, b, c: int(a + b + c),
        "slow stochastic %D, rescaled to [-1, 1]",
    ),
    "stochrsi": Indicator(
        lambda s, n: _scale(_ta().STOCHRSI(_f(s["close"]), timeperiod=int(n))[0], 50.0, -1.0),
        (14,),
        lambda n: int(4 * n),
        "stochastic RSI %K, rescaled to [-1, 1]",
    ),
    "willr": Indicator(
        lambda s, n: _scale(_ta().WILLR(*_hlc(s), timeperiod=int(n)), 50.0, 1.0),
        (14,),
        lambda n: int(n),
        "Williams %R, rescaled to [-1, 1]",
    ),
    "cci": Indicator(
        lambda s, n: _scale(_ta().CCI(*_hlc(s), timeperiod=int(n)), 100.0),
        (20,),
        lambda n: int(n),
        "commodity channel index / 100",
    ),
    "mfi": Indicator(
        lambda s, n: _scale(_ta().MFI(*_hlc(s), _f(s["volume"]), timeperiod=int(n)), 50.0, -1.0),
        (14,),
        lambda n: int(n) + 1,
        "money flow index, rescaled to [-1, 1]",
    ),
    "adx": Indicator(
        lambda s, n: _scale(_ta().ADX(*_hlc(s), timeperiod=int(n)), 100.0),
        (14,),
        lambda n: int(4 * n),
        "average directional index / 100",
    ),
    "plus_di": Indicator(
        lambda s, n: _scale(_ta().PLUS_DI(*_hlc(s), timeperiod=int(n)), 100.0), (14,), lambda n: int(3 * n), "+DI / 100"
    ),
    "minus_di": Indicator(
        lambda s, n: _scale(_ta().MINUS_DI(*_hlc(s), timeperiod=int(n)), 100.0),
        (14,),
        lambda n: int(3 * n),
        "-DI / 100",
    ),
    "aroonosc": Indicator(
        lambda s, n: _scale(_ta().AROONOSC(_f(s["high"]), _f(s["low"]), timeperiod=int(n)), 100.0),
        (14,),
        lambda n: int(n) + 1,
        "Aroon oscillator / 100",
    ),
    "ultosc": Indicator(
        lambda s, a, b, c: _scale(_ta().ULTOSC(*_hlc(s), *_i(a, b, c)), 50.0, -1.0),
        (7, 14, 28),
        lambda a, b, c: int(c) + 1,
        "ultimate oscillator, rescaled to [-1, 1]",
    ),
    "cmo": Indicator(
        lambda s, n: _scale(_ta().CMO(_f(s["close"]), timeperiod=int(n)), 100.0),
        (14,),
        lambda n: int(3 * n),
        "Chande momentum oscillator / 100",
    ),
    "bop": Indicator(
        lambda s: _ta().BOP(_f(s["open"]), *_hlc(s)), (), lambda: 0, "balance of power: (close - open) / (high - low)"
    ),
    "macd": Indicator(
        lambda s, a, b, c: _macd(s, a, b, c, 0), (12, 26, 9), lambda a, b, c: int(3 * b + c), "MACD line / close"
    ),
    "macd_signal": Indicator(
        lambda s, a, b, c: _macd(s, a, b, c, 1), (12, 26, 9), lambda a, b, c: int(3 * b + c), "MACD signal line / close"
    ),
    "macd_hist": Indicator(
        lambda s, a, b, c: _macd(s, a, b, c, 2), (12, 26, 9), lambda a, b, c: int(3 * b + c), "MACD histogram / close"
    ),
    "ppo": Indicator(
        lambda s, a, b: _scale(_ta().PPO(_f(s["close"]), *_i(a, b), 1), 100.0),
        (12, 26),
        lambda a, b: int(3 * b),
        "percentage price oscillator (EMA) / 100",
    ),
    "roc": Indicator(
        lambda s, n: _scale(_ta().ROC(_f(s["close"]), timeperiod=int(n)), 100.0),
        (10,),
        lambda n: int(n),
        "rate of change over n bars, a fraction",
    ),
    "trix": Indicator(
        lambda s, n: _scale(_ta().TRIX(_f(s["close"]), timeperiod=int(n)), 100.0),
        (15,),
        lambda n: int(9 * n),
        "TRIX: rate of change of a triple EMA, a fraction",
    ),
    "atr": Indicator(
        lambda s, n: _scale(_ta().ATR(*_hlc(s), timeperiod=int(n)), s["close"]),
        (14,),
        lambda n: int(3 * n),
        "average true range / close",
    ),
    "natr": Indicator(
        lambda s, n: _scale(_ta().NATR(*_hlc(s), timeperiod=int(n)), 100.0),
        (14,),
        lambda n: int(3 * n),
        "normalised ATR, a fraction",
    ),
    "bb_width": Indicator(_bb_width, (20,), lambda n: int(n), "Bollinger band width (2 std) / middle band"),
    "bb_pos": Indicator(_bb_pos, (20,), lambda n: int(n), "position of the close in the Bollinger bands, -0.5 .. 0.5"),
    "keltner_pos": Indicator(
        _keltner_pos, (20,), lambda n: int(3 * n), "(close - EMA) / (2 ATR): position in the Keltner channel"
    ),
    "obv_z": Indicator(
        lambda s, n: _rolling_z(_ta().OBV(_f(s["close"]), _f(s["volume"])), int(n)),
        (48,),
        lambda n: int(n),
        "on-balance volume as a rolling z-score",
    ),
    "ad_z": Indicator(
        lambda s, n: _rolling_z(_ta().AD(*_hlc(s), _f(s["volume"])), int(n)),
        (48,),
        lambda n: int(n),
        "accumulation/distribution line as a rolling z-score",
    ),
    "adosc": Indicator(
        lambda s, a, b: _rolling_z(_ta().ADOSC(*_hlc(s), _f(s["volume"]), *_i(a, b)), int(b) * 4),
        (3, 10),
        lambda a, b: int(8 * b),
        "Chaikin A/D oscillator as a rolling z-score (over 4 x slow bars)",
    ),
    "zscore": Indicator(
        lambda s, n: _rolling_z(_f(s["close"]), int(n)), (20,), lambda n: int(n), "(close - rolling mean) / rolling std"
    ),
    "rv": Indicator(
        _rv, (24,), lambda n: int(n) + 1, "log realised volatility of the last n bars' close-to-close returns"
    ),
    "linreg_slope": Indicator(
        lambda s, n: _scale(_ta().LINEARREG_SLOPE(_f(s["close"]), timeperiod=int(n)), s["close"]),
        (14,),
        lambda n: int(n),
        "slope of a linear fit of the last n closes / close",
    ),
    "ema_gap": Indicator(
        lambda s, n: _log_gap(s, _ta().EMA(_f(s["close"]), timeperiod=int(n))),
        (20,),
        lambda n: int(3 * n),
        "log(close / EMA(n))",
    ),
    "sma_gap": Indicator(
        lambda s, n: _log_gap(s, _ta().SMA(_f(s["close"]), timeperiod=int(n))),
        (20,),
        lambda n: int(n),
        "log(close / SMA(n))",
    ),
    "dollar_volume": Indicator(
        _dollar_volume,
        (20,),
        lambda n: int(n),
        "log mean close x volume over n bars: a level, not scale-free (size and liquidity: meant for "
        "features.cross_section, e.g. rank(dollar_volume))",
    ),
    # Binance's order flow: the klines' extra columns
    "taker_buy_ratio": Indicator(
        _taker_buy_ratio, (), lambda: 0, "taker buy volume / volume - 0.5 (order flow; Binance klines)"
    ),
    "trade_size": Indicator(
        _trade_size,
        (48,),
        lambda n: int(3 * n),
        "log mean trade size (volume / trades) minus its EMA(n) (Binance klines)",
    ),
    "trades_ratio": Indicator(
        lambda s, n: _log_ratio_to_mean(_need(s, "trades", "trades_ratio"), n),
        (48,),
        lambda n: int(3 * n),
        "log1p(trade count) minus its EMA(n) (Binance klines)",
    ),
    "quote_volume_ratio": Indicator(
        lambda s, n: _log_ratio_to_mean(_need(s, "quote_volume", "quote_volume_ratio"), n),
        (48,),
        lambda n: int(3 * n),
        "log1p(quote volume) minus its EMA(n)",
    ),
}

__all__ = ["LIBRARY", "Indicator"]
