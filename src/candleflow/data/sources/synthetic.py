"""A seeded synthetic market: the embedded default source, so everything runs offline.

Returns follow a GARCH(1,1) volatility with Student-t shocks (volatility clustering, fat tails).
High and low come from a Brownian bridge inside each bar, so OHLC is consistent by construction.
Volume has a daily cycle and rises with the absolute return and the volatility regime.

The planted signal: each bar's expected log return is
``signal_strength * sigma_t * tanh(trend_t)``, where ``trend_t`` is the exponentially weighted
mean (span ``signal_span``) of past standardised returns, rescaled to unit variance. It is a
momentum effect visible in past prices only; ``signal_strength = 0`` makes returns a martingale.
"""

from __future__ import annotations

import numba
import numpy as np

from candleflow.config import SyntheticSource
from candleflow.config.intervals import interval_ns
from candleflow.data.validate import RawCandles

_YEAR_NS = 365 * 86_400 * 1_000_000_000


@numba.njit(cache=True)
def _garch_returns(
    z: np.ndarray, var_lr: float, alpha: float, beta: float, strength: float, span: int
) -> tuple[np.ndarray, np.ndarray]:
    n = z.shape[0]
    r = np.empty(n)
    sig = np.empty(n)
    omega = var_lr * (1.0 - alpha - beta)
    a = 2.0 / (span + 1.0)
    norm = np.sqrt((2.0 - a) / a)  # EWMA of iid unit-variance values has variance a / (2 - a)
    var = var_lr
    eps_prev = 0.0
    trend = 0.0
    for t in range(n):
        var = omega + alpha * eps_prev * eps_prev + beta * var if t > 0 else var_lr
        s = np.sqrt(var)
        drift = strength * s * np.tanh(trend * norm)
        eps = s * z[t]
        r[t] = drift + eps
        sig[t] = s
        trend = (1.0 - a) * trend + a * (r[t] / s)
        eps_prev = eps
    return r, sig


def generate_synthetic(cfg: SyntheticSource | None = None) -> RawCandles:
    """Generate `cfg.n_bars` candles; the same config always gives the same bytes."""
    cfg = cfg or SyntheticSource()
    rng = np.random.default_rng(cfg.seed)
    n, m = cfg.n_bars, cfg.substeps
    iv = interval_ns(cfg.interval)
    var_lr = cfg.annual_vol**2 * iv / _YEAR_NS

    dof = cfg.tail_dof
    z = rng.standard_t(dof, size=n) * np.sqrt((dof - 2.0) / dof)  # unit variance, fat tails
    if cfg.market_factor > 0:  # a shock every symbol of this market_seed shares, in the same bars
        market = np.random.default_rng([cfg.market_seed, 0x6D6B74]).standard_t(dof, size=n)
        z = np.sqrt(cfg.market_factor) * market * np.sqrt((dof - 2.0) / dof) + np.sqrt(1 - cfg.market_factor) * z
    r, sig = _garch_returns(z, var_lr, cfg.garch_alpha, cfg.garch_beta, cfg.signal_strength, cfg.signal_span)

    log_close = np.log(cfg.start_price) + np.cumsum(r)
    log_open = np.concatenate([[np.log(cfg.start_price)], log_close[:-1]])

    # Brownian bridge from 0 to r inside each bar gives the path's max and min.
    path_max = np.empty(n)
    path_min = np.empty(n)
    steps = np.arange(1, m + 1) / m
    chunk = 1 << 16
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        w = np.cumsum(rng.standard_normal((hi - lo, m)), axis=1) * (sig[lo:hi, None] / np.sqrt(m))
        bridge = w - steps[None, :] * w[:, -1:] + steps[None, :] * r[lo:hi, None]
        path_max[lo:hi] = np.maximum(bridge.max(axis=1), 0.0)
        path_min[lo:hi] = np.minimum(bridge.min(axis=1), 0.0)

    open_ = np.exp(log_open)
    close = np.exp(log_close)
    high = np.maximum(open_ * np.exp(path_max), np.maximum(open_, close))
    low = np.minimum(open_ * np.exp(path_min), np.minimum(open_, close))

    start = np.datetime64(cfg.start, "ns").astype(np.int64)
    open_time = start + np.arange(n, dtype=np.int64) * iv
    hour = (open_time // 3_600_000_000_000) % 24
    daily = 0.35 * np.cos(2 * np.pi * (hour - 15) / 24)  # busiest around 15:00 UTC
    noise = _ar1(rng.standard_normal(n) * 0.3, 0.7)  # persistent volume noise
    log_vol = np.log(100.0) + daily + 0.6 * np.abs(r) / np.sqrt(var_lr) + 0.8 * np.log(sig / np.sqrt(var_lr)) + noise
    volume = np.exp(log_vol)

    cols = {
        "open_time": open_time,
        "open": open_,
        "high": high,
        "low": low,
        "close": close,
        "volume": volume,
        "quote_volume": volume * (open_ + close) / 2,
    }
    return RawCandles(columns=cols, symbol=cfg.symbol, source="synthetic", interval=cfg.interval)


@numba.njit(cache=True)
def _ar1(e: np.ndarray, phi: float) -> np.ndarray:
    out = np.empty_like(e)
    acc = 0.0
    for i in range(e.shape[0]):
        acc = phi * acc + e[i]
        out[i] = acc
    return out
