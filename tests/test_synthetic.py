"""The synthetic market: reproducible, consistent, and with the stylised facts a quant expects."""

import numpy as np

from candleflow.config import SyntheticSource
from candleflow.data.load import load_candles


def returns(c):
    return np.diff(np.log(c.close))


def test_same_seed_same_bytes_other_seed_other_bytes():
    a, _ = load_candles(SyntheticSource(n_bars=2000, seed=1))
    b, _ = load_candles(SyntheticSource(n_bars=2000, seed=1))
    c, _ = load_candles(SyntheticSource(n_bars=2000, seed=2))
    assert a.fingerprint == b.fingerprint != c.fingerprint


def test_ohlc_consistent_and_interval_length():
    c, rep = load_candles(SyntheticSource(n_bars=5000, interval="15m"))
    assert len(c) == 5000 and c.interval == "15m" and rep.ohlc_inconsistent_rows == 0
    assert np.all(np.diff(c.open_time) == 15 * 60 * 10**9)
    assert np.all(c.high >= np.maximum(c.open, c.close)) and np.all(c.low <= np.minimum(c.open, c.close))
    assert np.all(c.open[1:] == c.close[:-1])


def test_stylised_facts():
    c, _ = load_candles(SyntheticSource(n_bars=20_000, signal_strength=0.0))
    r = returns(c)
    z = (r - r.mean()) / r.std()
    assert (z**4).mean() > 6  # fat tails (normal: 3)
    a = np.abs(r)
    assert np.corrcoef(a[1:], a[:-1])[0, 1] > 0.15  # volatility clustering
    assert abs(np.corrcoef(r[1:], r[:-1])[0, 1]) < 0.03  # no linear predictability without signal
    v = c.volume[1:]
    assert np.corrcoef(np.log(v), a)[0, 1] > 0.2  # volume rises with absolute returns
    hours = (c.open_time // 3_600_000_000_000) % 24
    by_hour = np.array([np.median(c.volume[hours == h]) for h in range(24)])
    assert 13 <= int(np.argmax(by_hour)) <= 17 and by_hour.max() / by_hour.min() > 1.5  # daily cycle


def test_signal_strength_plants_momentum():
    def trend_corr(strength):
        c, _ = load_candles(SyntheticSource(n_bars=20_000, signal_strength=strength))
        r = returns(c)
        past = np.convolve(r, np.ones(24), "full")[: len(r)]  # sum of the last 24 returns, causal
        return np.corrcoef(past[:-1], r[1:])[0, 1]

    assert abs(trend_corr(0.0)) < 0.03
    assert trend_corr(0.25) > 0.05
