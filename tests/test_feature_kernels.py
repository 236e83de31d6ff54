"""The compiled pieces behind the feature library, against plain NumPy written out by hand: the
column writer (blocks of rows, background groups, several threads) and the one-pass rolling
statistics (z-score, realised volatility, band positions), including the cases where a sliding
sum goes wrong: NaN warm-ups, flat stretches, large levels and a jump leaving the window."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from candleflow.config import FeatureConfig, SyntheticSource
from candleflow.data.load import load_candles
from candleflow.dataset import indicators
from candleflow.dataset.features import compute_features, register_feature, unregister_feature
from candleflow.dataset.interleave import SLOTS, ColumnWriter, write_columns
from candleflow.errors import ConfigError


def _by_hand(n: int, held: list[tuple[int, np.ndarray]], f: int) -> np.ndarray:
    out = np.full((n, f), -7.0, np.float32)
    for j, column in held:
        out[:, j] = column
    return out


@pytest.mark.parametrize("n", [1, 4097, 200_003])
def test_write_columns_equals_one_column_at_a_time(n):
    rng = np.random.default_rng(n)
    f = SLOTS + 5  # more columns than one compiled call takes
    held = [(j, rng.normal(size=n) * 10.0 ** rng.integers(-3, 6)) for j in rng.permutation(f)[: f - 2]]
    held[0][1][: min(n, 9)] = np.nan
    out = np.full((n, f), -7.0, np.float32)
    write_columns(out, held)
    np.testing.assert_array_equal(out, _by_hand(n, held, f))  # the untouched columns keep -7
    out2 = np.full((n, f), -7.0, np.float32)
    write_columns(out2, held, threads=3)
    np.testing.assert_array_equal(out2, out)


def test_the_background_writer_equals_one_column_at_a_time_and_rows_of_a_view():
    n, f = 300_000, 21
    rng = np.random.default_rng(0)
    big = np.full((n + 10, f), -7.0, np.float32)
    view = big[5 : n + 5]  # a segment's rows of the whole matrix
    writer = ColumnWriter(view, group=4)
    assert writer.background  # this machine has 2 cores and the rows are many
    held = [(j, rng.normal(size=n)) for j in range(f)]
    with writer:
        for j, column in held:
            writer.add(j, column)
    np.testing.assert_array_equal(view, _by_hand(n, held, f))
    assert (big[:5] == -7).all() and (big[-5:] == -7).all()


def test_write_columns_refuses_a_wrong_length_and_a_column_major_matrix():
    with pytest.raises(ValueError, match=r"column 3 has shape \(9,\), expected \(10,\)"):
        write_columns(np.zeros((10, 4), np.float32), [(3, np.zeros(9))])
    with pytest.raises(ValueError, match="row-major float32"):
        write_columns(np.zeros((10, 4), np.float32, order="F"), [(0, np.zeros(10))])


def test_a_user_feature_of_the_wrong_length_is_a_one_line_error():
    @register_feature("too_short", warmup=0)
    def too_short(s):
        return s["close"][1:]

    try:
        candles, _ = load_candles(SyntheticSource(n_bars=500, interval="1h"))
        with pytest.raises(ConfigError, match=r"feature 'too_short' returned shape \(499,\); expected \(500,\)"):
            compute_features(candles, FeatureConfig(names=["log_return", "too_short"]))
    finally:
        unregister_feature("too_short")


def _z_by_hand(x: np.ndarray, n: int) -> np.ndarray:
    """Two-pass mean and population std of every full window without a NaN; 0 where flat."""
    out = np.full(x.size, np.nan)
    w = sliding_window_view(x, n)
    mean = w.mean(axis=1)
    std = np.sqrt(((w - mean[:, None]) ** 2).mean(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(std > 1e-9 * np.abs(mean), (x[n - 1 :] - mean) / std, 0.0)
    out[n - 1 :] = np.where(np.isnan(mean), np.nan, z)  # NaN wherever the window holds a NaN
    return out


def test_rolling_z_matches_two_passes_on_hard_series():
    rng = np.random.default_rng(1)
    n = 48
    level = np.cumsum(rng.normal(0, 1e6, 20_000)) + 5e9  # OBV-like levels: 1e9 and more
    level[:30] = np.nan  # a warm-up
    level[7_000] = np.nan  # a hole: windows over it are NaN
    level[9_000:9_100] = level[8_999]  # a flat stretch: 0, not a division by rounding
    level[12_000] += 1e13  # a jump that leaves the window 48 bars later
    z = indicators._rolling_z(level, n)
    ref = _z_by_hand(level, n)
    np.testing.assert_array_equal(np.isnan(z), np.isnan(ref))
    ok = ~np.isnan(ref)
    assert np.abs(z[ok] - ref[ok]).max() < 1e-5
    assert (z[9_047:9_100] == 0).all()
    assert np.isnan(z[7_000:7_048]).all() and not np.isnan(z[7_048])
    # after the jump has left, the slid sums were recomputed: the values are the exact ones
    np.testing.assert_allclose(z[12_048:12_200], ref[12_048:12_200], atol=1e-6)


def test_rv_and_band_positions_match_numpy_written_out():
    candles, _ = load_candles(SyntheticSource(n_bars=3_000, interval="1h", seed=4))
    c, h, lo = candles.close, candles.high, candles.low
    s = {"close": c, "high": h, "low": lo, "open": candles.open, "volume": candles.volume}
    r2 = np.r_[0.0, np.diff(np.log(c)) ** 2]
    rv = np.full(c.size, np.nan)
    rv[24:] = 0.5 * np.log(sliding_window_view(r2, 24).sum(axis=1)[1:])
    np.testing.assert_allclose(indicators._rv(dict(s), 24), rv, rtol=1e-10, atol=1e-12)
    import talib

    up, mid, dn = talib.BBANDS(c, 20, 2.0, 2.0)
    with np.errstate(invalid="ignore"):
        pos = np.where(up - dn > 0, (c - dn) / (up - dn) - 0.5, 0.0) + 0.0 * mid
    np.testing.assert_allclose(indicators._bb_pos(dict(s), 20), pos, rtol=1e-12, equal_nan=True)
    ema, atr = talib.EMA(c, 20), talib.ATR(h, lo, c, 20)
    with np.errstate(invalid="ignore"):
        kel = np.where(atr > 0, (c - ema) / (2 * atr), np.where(np.isnan(atr), np.nan, 0.0))
    np.testing.assert_allclose(indicators._keltner_pos(dict(s), 20), kel, rtol=1e-12, equal_nan=True)
