"""Features: the default set of 8, float32 (N, F), causal per segment."""

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from candleflow.config import FeatureConfig, SyntheticSource
from candleflow.data.candles import Candles
from candleflow.data.load import load_candles
from candleflow.dataset.features import FEATURES, compute_features
from candleflow.errors import ConfigError

SESSION = {"session_elapsed", "session_remaining"}  # exchange calendars only: tested on SPY below


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
ANY_SOURCE = sorted(set(FEATURES) - ORDER_FLOW - {"session_elapsed", "session_remaining"})  # 24/7 data


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
    cfg = FeatureConfig(names=sorted(set(FEATURES) - SESSION))
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
        ("foo", "unknown feature 'foo'; known ("),
        ("rsi(5, 3)", "rsi takes 1 parameter(s), got 2"),
        ("rsi(x)", "parameter 'x' is not a number"),
        ("rsi(0)", "rsi's parameter is 0; expected 1 .. 100,000 bars"),
        # issue 42: every parameter checked against the indicator's own bounds at config load
        ("rsi(nan)", "parameter 'nan' is not a finite number"),
        ("rsi(inf)", "parameter 'inf' is not a finite number"),
        ("rsi(1e30)", "rsi's parameter is 1e+30; expected 1 .. 100,000 bars"),
        ("rsi(1000000000)", "rsi's parameter is 1000000000; expected 1 .. 100,000 bars"),
        ("rsi(2.5)", "rsi's parameter is 2.5; expected a whole number of bars"),
        ("linreg_slope(1)", "linreg_slope's parameter is 1; expected 2 .. 100,000 bars"),
        ("macd(1, 26, 9)", "parameter 1 of macd is 1; expected 2 .. 100,000 bars"),
    ):
        with pytest.raises(ValueError, match=re.escape(msg)):
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
    cfg = FeatureConfig(names=sorted(set(FEATURES) - SESSION), timeframes=["4h", "1d"], volatility_span=6)
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


def _synthetic(symbol: str, seed: int, n: int = 1500):
    return SyntheticSource(symbol=symbol, seed=seed, n_bars=n, market_factor=0.8, market_seed=7)


def test_another_assets_features_are_aligned_on_time_with_a_missing_bar_policy():
    """ETH-like main series, BTC-like other series (one synthetic universe, so they move
    together): BTC:log_return at each ETH bar is BTC's own log_return at the same open time; a
    bar BTC lacks is NaN (missing: nan) or BTC's previous bar within max_stale (missing: last)."""
    from candleflow.config import AssetFeatures

    eth, _ = load_candles(_synthetic("ETH", 1))
    btc, _ = load_candles(_synthetic("BTC", 2))
    cfg = FeatureConfig(names=["log_return"], assets=[AssetFeatures(name="BTC", source=_synthetic("BTC", 2))])
    f = compute_features(eth, cfg, {"BTC": btc})
    assert f.names == ["log_return", "BTC:log_return"] and f.values.dtype == np.float32
    own = compute_features(btc, FeatureConfig(names=["log_return"])).values[:, 0]
    np.testing.assert_array_equal(f.values[:, 1], own)  # the same times: the same values
    corr = np.corrcoef(f.values[1:, 0], f.values[1:, 1])[0, 1]
    assert corr > 0.3  # market_factor 0.8: the universe moves together
    # BTC without bars 100..102: nan there, or bar 99's value for 1 bar and nan beyond with last
    keep = np.r_[0:100, 103 : len(btc)]
    ohlcv = (a[keep] for a in (btc.open, btc.high, btc.low, btc.close, btc.volume))
    segments = np.array([[0, 100], [100, len(keep)]])
    gap = Candles(btc.open_time[keep], *ohlcv, segments, btc.symbol, btc.interval, btc.source, {})
    holed = compute_features(eth, cfg, {"BTC": gap}).values[:, 1]
    assert np.isnan(holed[100:103]).all() and np.isfinite(holed[99]) and np.isfinite(holed[104])
    last = FeatureConfig(
        names=["log_return"], assets=[AssetFeatures(name="BTC", source=_synthetic("BTC", 2), missing="last")]
    )
    filled = compute_features(eth, last, {"BTC": gap}).values[:, 1]
    assert filled[100] == holed[99] and np.isnan(filled[101:103]).all()  # max_stale 1: one bar old at most
    with pytest.raises(ValueError, match="features.assets names repeat"):
        FeatureConfig(assets=[AssetFeatures(name="A", source=_synthetic("X", 1))] * 2)
    # issue 42: an asset with no bar at the main series' times was "rows ... too short"
    later = SyntheticSource(symbol="BTC", seed=2, n_bars=500, start="2030-01-01")
    far, _ = load_candles(later)
    with pytest.raises(
        ConfigError, match=r"features.assets 'BTC': none of BTC's 500 bars \(2030-01-01.*meets a bar of"
    ):
        compute_features(
            eth, FeatureConfig(names=["log_return"], assets=[AssetFeatures(name="BTC", source=later)]), {"BTC": far}
        )


@settings(max_examples=10, deadline=None)
@given(t=st.integers(200, 1300), seed=st.integers(0, 1000))
def test_other_asset_features_are_causal(t, seed):
    """Changing either series after bar t never changes a feature at a bar <= t."""
    from candleflow.config import AssetFeatures

    eth, _ = load_candles(_synthetic("ETH", 1))
    btc, _ = load_candles(_synthetic("BTC", 2))
    cfg = FeatureConfig(
        names=["log_return", "rsi(14)"],
        assets=[
            AssetFeatures(
                name="BTC",
                source=_synthetic("BTC", 2),
                names=["log_return", "volatility", "macd(12, 26, 9)"],
                missing="last",
                max_stale=3,
            )
        ],
    )
    k = np.random.default_rng(seed).uniform(0.5, 2.0, len(eth) - t - 1)
    a = compute_features(eth, cfg, {"BTC": btc}).values
    b = compute_features(_changed_after(eth, t, k), cfg, {"BTC": _changed_after(btc, t, k)}).values
    np.testing.assert_array_equal(a[: t + 1], b[: t + 1])


def test_other_assets_on_real_daily_files_and_a_different_interval_refused(tmp_path):
    """IBM daily with AAPL daily (the same NYSE days, 2000-2013): AAPL:log_return is AAPL's own
    at each IBM date; AAPL's hourly bars beside daily IBM are refused in one line."""
    import candleflow as cf
    from candleflow.errors import ConfigError
    from conftest import SAMPLE

    panel = SAMPLE / "data" / "stocks" / "panel"
    cfg = cf.load_config(
        None,
        [
            "source.kind=files",
            f"source.paths=[{panel / 'IBM-1d.csv'}]",
            "validation.calendar=XNYS",
            f"features.assets=[{{name: AAPL, source: {{kind: files, paths: [{panel / 'AAPL-1d.csv'}]}}}}]",
            "features.names=[log_return, range]",
        ],
    )
    prep = cf.prepare(cfg)
    assert prep.features.names == ["log_return", "range", "AAPL:log_return"]
    from candleflow.dataset.prepare import load_assets

    aapl = load_assets(cfg)["AAPL"]
    own = compute_features(aapl, FeatureConfig(names=["log_return"])).values[:, 0]
    ibm_t = prep.candles.open_time.astype("datetime64[ns]")
    at = np.searchsorted(aapl.open_time.astype("datetime64[ns]"), ibm_t)
    same = (at < len(aapl)) & (aapl.open_time.astype("datetime64[ns]")[np.minimum(at, len(aapl) - 1)] == ibm_t)
    assert same.mean() > 0.99
    np.testing.assert_array_equal(prep.features.values[same, 2], own[at[same]])
    hourly = cfg.model_copy(deep=True)
    hourly.features.assets[0].source.paths = [str(SAMPLE / "data" / "stocks" / "SPY-1h.csv")]
    with pytest.raises(
        ConfigError, match="features.assets 'AAPL': SPY-1h bars are 1h, the main series' 1d; expected the same"
    ):
        compute_features(prep.candles, hourly.features, load_assets(hourly))


def test_permutation_importance_by_hand():
    """A rule that reads only feature 0 of each window's last row: shuffling feature 1 changes
    nothing (drop exactly 0), shuffling feature 0 costs accuracy; a zero time budget measures
    nothing and says which features it left."""
    from candleflow.dataset.windows import WindowDataset
    from candleflow.evaluation.importance import PermutedFeature, permutation_importance

    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int8) * 2  # LONG where feature 0 is positive, else SHORT
    ds = WindowDataset.from_arrays(x, y, np.array([[0, 400]]), 4, 1, 1)

    def predict(d):
        last = d.gather(np.arange(len(d)))[:, -1, 0]
        return np.stack([last <= 0, np.zeros_like(last), last > 0], axis=1).astype(float)

    def score(out, y):
        return float(np.mean(out.argmax(1) == y))

    got = permutation_importance(ds, ["signal", "noise"], predict, score, seed=1)
    assert got["score"] == 1.0 and got["drop"]["noise"] == 0.0 and got["drop"]["signal"] > 0.3
    assert list(got["drop"]) == ["signal", "noise"] and got["not_measured"] == []
    shuffled = PermutedFeature(ds, 1, np.arange(len(ds))[::-1])
    np.testing.assert_array_equal(shuffled.gather([0])[0, :, 0], ds.gather([0])[0, :, 0])  # the other input kept
    assert permutation_importance(ds, ["signal", "noise"], predict, score, seconds=-1)["not_measured"] == [
        "signal",
        "noise",
    ]


@pytest.mark.integration
@pytest.mark.extended
def test_a_run_measures_permutation_importance_for_its_own_family(tiny_config):
    import candleflow as cf

    result = cf.run(
        tiny_config(
            "model.kind=mlp",
            "evaluation.permutation_seconds=60",
            "evaluation.reference_models=[]",
            "output.report=true",
        )
    )
    perm = result.metrics["val"]["importance"]["permutation"]
    assert set(perm["drop"]) == set(result.metadata["feature_names"]) and perm["not_measured"] == []
    assert "permutation importance" in (result.run_dir / "report.html").read_text()


def test_session_features_by_hand_on_spy_hours_and_refused_on_a_24_7_market():
    """SPY 1h on NYSE: the 09:30 bar (closes 10:30) is 1 hour into the session with 5.5 to go;
    on the day after Thanksgiving (early close at 13:00) the 12:30 bar has 0 hours left; daily
    bars carry their session's length. A 24/7 market is refused in one line."""
    import pandas as pd

    from candleflow.config import FilesSource
    from candleflow.errors import ConfigError
    from conftest import SAMPLE

    spy, _ = load_candles(FilesSource(paths=[str(SAMPLE / "data/stocks/SPY-1h.csv")]))
    cfg = FeatureConfig(names=["session_elapsed", "session_remaining"])
    f = compute_features(spy, cfg).values
    t = pd.to_datetime(spy.open_time).tz_localize("UTC").tz_convert("America/New_York")
    first = np.flatnonzero((t.hour == 9) & (t.minute == 30))[0]
    assert f[first].tolist() == pytest.approx([1.0, 5.5])
    friday = np.flatnonzero((t.month == 11) & (t.day >= 23) & (t.day <= 29) & (t.day_of_week == 4) & (t.hour == 12))
    if friday.size:  # the sample's years include a Thanksgiving Friday
        assert f[friday[0], 1] == pytest.approx(0.0) and f[friday[0], 0] == pytest.approx(3.5)
    daily, _ = load_candles(FilesSource(paths=[str(SAMPLE / "data/stocks/SPY-1d.csv")]))
    d = compute_features(daily, cfg).values
    assert set(np.round(d[:, 0], 2)) <= {6.5, 3.5} and (d[:, 1] == 0).all()
    with pytest.raises(ConfigError, match="session_elapsed / session_remaining: the candles trade 24/7"):
        compute_features(_btc_1h(), cfg)


def test_an_installed_plugin_registers_its_features_by_entry_point(tmp_path):
    """A package that declares the entry point group candleflow.features is loaded when a config
    names a feature this process does not know yet; the config then accepts its feature and the
    features compute. Without the package the name is the usual one-line error."""
    import subprocess
    import sys
    import textwrap

    (tmp_path / "myplug.py").write_text(
        textwrap.dedent(
            """
            from candleflow.dataset.features import register_feature

            @register_feature("plug_spread", description="(high - low) / close")
            def spread(s):
                return (s["high"] - s["low"]) / s["close"]
            """
        )
    )
    info = tmp_path / "myplug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: myplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[candleflow.features]\nspread = myplug\n")
    code = textwrap.dedent(
        """
        import numpy as np
        from candleflow.config import load_config
        from candleflow.config.feature_names import plugins
        from candleflow.data.load import load_candles
        from candleflow.dataset.features import compute_features

        cfg = load_config(None, ["features.names=[log_return, plug_spread]", "source.n_bars=500"])
        c, _ = load_candles(cfg.source)
        f = compute_features(c, cfg.features)
        want = (c.high - c.low) / c.close
        assert np.allclose(f.values[60:, 1], want[60:], rtol=1e-6), "values"
        print(plugins())
        """
    )
    import os

    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-1500:]
    assert "'spread': 'loaded'" in done.stdout
    bare = subprocess.run(
        [sys.executable, "-c", code],
        env={k: v for k, v in env.items() if k != "PYTHONPATH"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bare.returncode != 0 and "unknown feature 'plug_spread'; known (" in bare.stderr


def test_a_users_feature_that_fails_is_one_line_naming_it(caplog):
    """Issue 42: a user's (or a plugin's) feature that raises, returns strings, has a failing
    warm-up or is NaN everywhere is one line naming it; NaN or inf on some bars is a warning with
    the count (the windows over them drop out), never silence."""
    import logging

    from candleflow.dataset.features import register_feature, unregister_feature
    from candleflow.errors import ConfigError

    c, _ = load_candles(SyntheticSource(n_bars=400))

    def bad_warmup(n):
        raise RuntimeError("no warm-up")

    register_feature("raises")(lambda s: 1 / 0)
    register_feature("strings")(lambda s: np.array(["a"] * len(s["close"])))
    register_feature("late", warmup=bad_warmup, defaults=(3,))(lambda s, n: s["close"])
    register_feature("empty")(lambda s: np.full(len(s["close"]), np.nan))

    def gappy(s):
        out = np.log(s["close"])
        out[::50] = np.inf
        return out

    register_feature("gappy")(gappy)
    try:
        for name, msg in (
            ("raises", "feature 'raises' raised ZeroDivisionError: division by zero"),
            ("strings", "feature 'strings' returned values that are not numbers (ndarray); expected floats"),
            ("late", "feature 'late': its warm-up failed (RuntimeError: no warm-up)"),
            ("empty", "feature 'empty' is NaN or inf on every bar after its warm-up (399 bars)"),
        ):
            with pytest.raises(ConfigError, match=re.escape(msg)):
                compute_features(c, FeatureConfig(names=["log_return", name]))
        with caplog.at_level(logging.WARNING, logger="candleflow"):
            f = compute_features(c, FeatureConfig(names=["log_return", "gappy"]))
        assert (~np.isfinite(f.values[1:, 1])).sum() == 7  # bars 50, 100, ... 350 (bar 0 is warm-up)
        assert "feature 'gappy' is NaN or inf on 7 of 399 bars after its warm-up" in caplog.text
    finally:
        for name in ("raises", "strings", "late", "empty", "gappy"):
            unregister_feature(name)


def test_a_period_longer_than_the_data_names_the_feature(tiny_config):
    from candleflow.dataset.prepare import prepare
    from candleflow.errors import DataError

    with pytest.raises(
        DataError, match=r"too short for the features' warm-up of 5,000 bars \(rsi\(5000\): 5,000 bars\)"
    ):
        prepare(tiny_config("features.names=[log_return, rsi(5000)]", "source.n_bars=1000"))


def test_weekly_timeframe_weeks_start_on_monday():
    """Issue 42: `features.timeframes: [1w]` cut weeks from the epoch (Thursday to Wednesday);
    weeks start on Monday 00:00 UTC, as Binance's weekly klines and the exchanges' weeks do. A
    1h bar sees a new weekly bar when its close reaches Monday 00:00: the bar opening Sunday 23:00."""
    c, _ = load_candles(SyntheticSource(n_bars=24 * 7 * 6))
    f = compute_features(c, FeatureConfig(names=["log_return"], timeframes=["1w"]))
    weekly = f.values[:, 1]
    ok = np.isfinite(weekly)
    changes = np.flatnonzero(ok[1:] & ok[:-1] & (weekly[1:] != weekly[:-1])) + 1
    assert changes.size >= 3
    opened = c.open_time[changes].astype("datetime64[ns]")
    days = (opened.astype("datetime64[D]").view("int64") - 4) % 7  # 0 = Monday
    hours = (opened - opened.astype("datetime64[D]")).astype("timedelta64[h]").astype(int)
    assert set(days.tolist()) == {6} and set(hours.tolist()) == {23}  # Sunday 23:00 UTC
