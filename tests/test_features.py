"""Features: the default set of 8, float32 (N, F), causal per segment."""

import numpy as np
import pytest
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


ORDER_FLOW = {"taker_buy_ratio", "trade_size", "trades_ratio", "quote_volume_ratio"}  # extra kline columns
ANY_SOURCE = sorted(set(FEATURES) - ORDER_FLOW)


@settings(max_examples=25, deadline=None)
@given(t=st.integers(60, 680), seed=st.integers(0, 1000), names=st.sampled_from([None, ANY_SOURCE]))
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


def _changed_after(c: Candles, t: int, k: np.ndarray) -> Candles:
    extra = {n: v.copy() for n, v in c.extra.items()}
    for v in extra.values():
        v[t + 1 :] *= k
    arrays = [a.copy() for a in (c.open, c.high, c.low, c.close, c.volume)]
    for a in arrays:
        a[t + 1 :] *= k
    return Candles(c.open_time, *arrays, c.segments, c.symbol, c.interval, c.source, extra)


@settings(max_examples=10, deadline=None)
@given(t=st.integers(700, 1400), seed=st.integers(0, 1000))
def test_every_registered_feature_is_causal_on_real_binance_klines(t, seed):
    """The whole library, order flow included, on real BTCUSDT 1h klines (their extra columns):
    changing every bar after t never changes a feature at a bar <= t."""
    from candleflow.config import FilesSource
    from conftest import BINANCE

    src = FilesSource(paths=[str(BINANCE / "monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-0[1-3].zip")])
    c, _ = load_candles(src)
    cfg = FeatureConfig(names=sorted(FEATURES))
    k = np.random.default_rng(seed).uniform(0.5, 2.0, len(c) - t - 1)
    a, b = compute_features(c, cfg).values, compute_features(_changed_after(c, t, k), cfg).values
    np.testing.assert_array_equal(a[: t + 1], b[: t + 1])
    assert np.isfinite(a[a.shape[0] // 2 :]).all()


def test_parameters_in_names_and_one_line_errors():
    import pytest

    from candleflow.errors import ConfigError

    c, _ = load_candles(SyntheticSource(n_bars=400))
    f = compute_features(c, FeatureConfig(names=["rsi", "rsi(5)", "macd(6, 13, 4)", "atr(10)"]))
    assert f.names == ["rsi", "rsi(5)", "macd(6, 13, 4)", "atr(10)"]
    assert not np.allclose(f.values[100:, 0], f.values[100:, 1])  # rsi is rsi(14), not rsi(5)
    import talib

    atr = talib.ATR(c.high, c.low, c.close, timeperiod=10) / c.close
    np.testing.assert_allclose(f.values[f.warmup :, 3], atr[f.warmup :], rtol=1e-5)
    assert "parameters 6, 13, 4" in f.descriptions["macd(6, 13, 4)"]
    for bad, msg in (
        ("foo", "unknown feature 'foo'; known: ad_z, adosc"),
        ("rsi(5, 3)", "rsi takes 1 parameter(s), got 2"),
        ("rsi(x)", "parameter 'x' is not a number"),
        ("rsi(0)", "parameters must be positive"),
    ):
        with pytest.raises(ValueError, match=msg.replace("(", r"\(").replace(")", r"\)")):
            FeatureConfig(names=[bad])
    with pytest.raises(ConfigError, match="feature 'taker_buy_ratio' needs the 'taker_buy_base' column"):
        compute_features(c, FeatureConfig(names=["taker_buy_ratio"]))


def test_order_flow_features_by_hand_on_real_klines():
    from candleflow.config import FilesSource
    from conftest import BINANCE

    c, _ = load_candles(FilesSource(paths=[str(BINANCE / "monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01.zip")]))
    f = compute_features(c, FeatureConfig(names=["taker_buy_ratio", "trades_ratio(10)"]))
    i = 300
    assert f.values[i, 0] == np.float32(c.extra["taker_buy_base"][i] / c.volume[i] - 0.5)
    import talib

    lx = np.log1p(c.extra["trades"])
    np.testing.assert_allclose(f.values[i, 1], lx[i] - talib.EMA(lx, timeperiod=10)[i], rtol=1e-5)


def test_a_user_feature_runs_through_run_and_predict_and_an_unknown_one_is_refused(tiny_config):
    """register_feature makes a Python function a feature name; a run using it predicts with it;
    a process that has not registered it refuses the run folder in one line."""
    import pytest

    import candleflow as cf
    from candleflow.dataset.features import register_feature, unregister_feature
    from candleflow.errors import ConfigError
    from candleflow.runs.predict import Predictor

    @register_feature("spread_ratio", warmup=lambda n: int(n), defaults=(3,), description="range over its mean")
    def spread_ratio(s, n):
        r = (s["high"] - s["low"]) / s["close"]
        out = np.full(r.shape, np.nan)
        for i in range(int(n) - 1, r.size):
            out[i] = r[i] / r[i - int(n) + 1 : i + 1].mean()
        return out

    try:
        cfg = tiny_config(
            "features.names=[log_return, range, spread_ratio(4)]",
            "model.kind=lightgbm",
            "evaluation.reference_models=[]",
        )
        result = cf.run(cfg)
        assert "spread_ratio(4)" in result.metrics["val"]["importance"]["lightgbm_gain"]
        c, _ = load_candles(cfg.source, cfg.validation)
        table = Predictor.from_run(result.run_dir).predict(c)
        with np.load(result.run_dir / "predictions.npz", allow_pickle=False) as z:
            rows = np.searchsorted(
                table.column("open_time").to_numpy(), c.open_time[z["val_ends"]].astype("datetime64[ns]")
            )
            np.testing.assert_allclose(
                table.column("prob_long").to_numpy()[rows], z["val_probs"][:, 2], rtol=1e-5, atol=1e-6
            )
    finally:
        unregister_feature("spread_ratio")
    with pytest.raises(ConfigError, match="unknown feature 'spread_ratio'"):
        Predictor.from_run(result.run_dir)


def _btc_1h(months: str = "2024-0[1-2]"):
    from candleflow.config import FilesSource
    from conftest import BINANCE

    return load_candles(FilesSource(paths=[str(BINANCE / f"monthly/klines/BTCUSDT/1h/BTCUSDT-1h-{months}.zip")]))[0]


def test_a_daily_timeframe_by_hand():
    """log_return@1d at the bar that closes a UTC day is that day's close over the day before's;
    during the next day the bar keeps seeing that same closed day."""
    c = _btc_1h()
    f = compute_features(c, FeatureConfig(names=["log_return"], timeframes=["1d"]))
    assert f.names == ["log_return", "log_return@1d"]
    day = c.open_time // 86_400_000_000_000
    ends = np.flatnonzero(np.r_[day[1:] != day[:-1], True])  # each day's last hourly bar
    for k in (5, 20, 40):
        t, prev = ends[k], ends[k - 1]
        want = np.log(c.close[t] / c.close[prev])
        assert f.values[t, 1] == np.float32(want)  # the day closes with bar t
        assert f.values[t + 5, 1] == np.float32(want)  # five hours into the next day: still that day
    assert f.warmup >= 24  # the first daily bar must close first


@settings(max_examples=10, deadline=None)
@given(t=st.integers(300, 1300), seed=st.integers(0, 1000))
def test_every_feature_on_every_timeframe_is_causal(t, seed):
    """Changing every bar after t never changes a feature at a bar <= t, on the bars' own interval
    and on 4h and 1d bars resampled from them, for the whole library (order flow included)."""
    c = _btc_1h()
    cfg = FeatureConfig(names=sorted(FEATURES), timeframes=["4h", "1d"], volatility_span=6)
    k = np.random.default_rng(seed).uniform(0.5, 2.0, len(c) - t - 1)
    a, b = compute_features(c, cfg).values, compute_features(_changed_after(c, t, k), cfg).values
    np.testing.assert_array_equal(a[: t + 1], b[: t + 1])


def test_a_timeframe_that_is_not_a_multiple_is_refused_in_one_line():
    import pytest

    from candleflow.errors import ConfigError

    c = _btc_1h()
    with pytest.raises(
        ConfigError, match=r"features.timeframes '90m': expected a whole multiple of the bars' interval 1h"
    ):
        compute_features(c, FeatureConfig(names=["log_return"], timeframes=["90m"]))
    with pytest.raises(ValueError, match="timeframes repeat"):
        FeatureConfig(timeframes=["1d", "1d"])


@pytest.mark.integration
def test_a_run_with_the_library_order_flow_calendar_and_a_daily_timeframe_predicts_the_same(tmp_path):
    """Indicators, order flow, calendar and a 1d timeframe on real BTCUSDT 1h klines, with the
    reference models: predict reproduces the run's validation probabilities, export lists every
    column, and LightGBM says which inputs mattered."""
    import json

    import candleflow as cf
    from candleflow.runs.bundle import export_bundle
    from candleflow.runs.predict import Predictor
    from conftest import BINANCE

    names = [
        "log_return",
        "range",
        "rsi(14)",
        "macd(12, 26, 9)",
        "atr(14)",
        "taker_buy_ratio",
        "trade_size(24)",
        "hour_sin",
        "dow_cos",
    ]
    cfg = cf.load_config(
        None,
        [
            "source.kind=files",
            f"source.paths=[{BINANCE}/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-0*.zip]",
            f"features.names=[{', '.join(repr(n) for n in names)}]",
            "features.timeframes=[1d]",
            "dataset.window=24",
            "model.kind=mlp",
            "model.dense_units=[8]",
            "training.epochs=1",
            "training.verbose=0",
            f"output.runs_dir={tmp_path}",
            "output.name=library",
        ],
    )
    result = cf.run(cfg)
    cols = [*names, *(f"{n}@1d" for n in names)]
    assert result.metadata["feature_names"] == cols and result.metadata["input_shape"] == [24, len(cols)]
    gain = result.metrics["val"]["importance"]["lightgbm_gain"]
    assert set(gain) == set(cols) and abs(sum(gain.values()) - 1) < 1e-3
    c, _ = load_candles(cfg.source, cfg.validation)
    table = Predictor.from_run(result.run_dir).predict(c)
    with np.load(result.run_dir / "predictions.npz", allow_pickle=False) as z:
        rows = np.searchsorted(
            table.column("open_time").to_numpy(), c.open_time[z["val_ends"]].astype("datetime64[ns]")
        )
        got = np.stack([table.column(f"prob_{k}").to_numpy() for k in ("short", "hold", "long")], axis=1)[rows]
        np.testing.assert_allclose(got, z["val_probs"], rtol=1e-5, atol=1e-6)
    bundle, _ = export_bundle(result.run_dir, tmp_path / "serving")
    assert json.loads((bundle / "serving.json").read_text())["serving_bundle"]["features"]["names"] == cols
