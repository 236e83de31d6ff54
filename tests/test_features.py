"""Features: the default set of 8, float32 (N, F), causal per segment."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from candleflow.config import FeatureConfig, SyntheticSource
from candleflow.data.candles import Candles
from candleflow.data.load import load_candles
from candleflow.dataset.features import FEATURES, compute_features


def test_default_set_shape_dtype_and_docs():
    c, _ = load_candles(SyntheticSource(n_bars=500))
    f = compute_features(c)
    assert f.values.shape == (500, 8) and f.values.dtype == np.float32 and f.values.flags.c_contiguous
    assert len(f.names) == 8 and all(FEATURES[n].description for n in f.names)
    assert np.isnan(f.values[: f.warmup]).all(axis=1).all()
    assert np.isfinite(f.values[f.warmup :]).all()


def test_known_values():
    c, _ = load_candles(SyntheticSource(n_bars=300))
    f = compute_features(c, FeatureConfig(names=["log_return", "range", "body", "upper_wick", "lower_wick"]))
    i = 150
    expect = [
        np.log(c.close[i] / c.close[i - 1]),
        np.log(c.high[i] / c.low[i]),
        np.log(c.close[i] / c.open[i]),
        np.log(c.high[i] / max(c.open[i], c.close[i])),
        np.log(min(c.open[i], c.close[i]) / c.low[i]),
    ]
    np.testing.assert_allclose(f.values[i], expect, rtol=1e-5, atol=1e-7)


def _with_segments(c: Candles, segments) -> Candles:
    return Candles(c.open_time, c.open, c.high, c.low, c.close, c.volume, np.array(segments), c.symbol, c.interval)


@settings(max_examples=25, deadline=None)
@given(t=st.integers(60, 680), seed=st.integers(0, 1000), names=st.sampled_from([None, sorted(FEATURES)]))
def test_features_are_causal(t, seed, names):
    """Changing every bar after t leaves every feature at bars <= t unchanged (700 bars: every
    feature's warm-up, log_rv_month's 528 included, ends inside the series)."""
    cfg = FeatureConfig() if names is None else FeatureConfig(names=names)
    c, _ = load_candles(SyntheticSource(n_bars=700, seed=seed))
    rng = np.random.default_rng(seed)
    k = rng.uniform(0.5, 2.0, len(c) - t - 1)
    changed = Candles(
        c.open_time,
        c.open.copy(),
        c.high.copy(),
        c.low.copy(),
        c.close.copy(),
        c.volume.copy(),
        c.segments,
        c.symbol,
        c.interval,
    )
    for arr in (changed.open, changed.high, changed.low, changed.close, changed.volume):
        arr[t + 1 :] *= k
    a, b = compute_features(c, cfg).values, compute_features(changed, cfg).values
    np.testing.assert_array_equal(a[: t + 1], b[: t + 1])
    assert not np.array_equal(a[t + 1 :], b[t + 1 :], equal_nan=True)


def test_segments_restart_warmup():
    c, _ = load_candles(SyntheticSource(n_bars=400))
    seg = _with_segments(c, [[0, 200], [200, 400]])
    f = compute_features(seg)
    assert np.isnan(f.values[200 : 200 + f.warmup]).all()
    assert np.isfinite(f.values[200 + f.warmup :]).all()
    # the second segment does not see the first: same result as computing it alone
    alone = Candles(
        c.open_time[200:],
        c.open[200:],
        c.high[200:],
        c.low[200:],
        c.close[200:],
        c.volume[200:],
        np.array([[0, 200]]),
        c.symbol,
        c.interval,
    )
    np.testing.assert_array_equal(f.values[200:], compute_features(alone).values)
