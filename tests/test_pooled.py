"""Learning across assets: the cross-section's scores against hand-computed cases (ties, assets
missing at some times), the books, the cross-sectional target, the causality of the
cross-section's signals, the purge across assets in a pooled walk-forward, and a pooled
regression run end to end with predict giving the run's own forecasts back."""

import json
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from candleflow.config import load_config
from candleflow.data.candles import Candles
from candleflow.data.load import load_candles
from candleflow.dataset.cross_features import cross_section_columns
from candleflow.dataset.split import walk_forward_by_time
from candleflow.dataset.targets import cross_section_signals
from candleflow.dataset.universe import template_symbols
from candleflow.errors import ConfigError
from candleflow.evaluation.pooled import (
    cross_section_target,
    daily_ic,
    ic_summary,
    quantile_book,
    topk_dropout,
)

HOUR = 3_600_000_000_000


def test_daily_rank_ic_by_hand_with_ties_and_missing_assets():
    # time 0: 5 assets, the score ties its two lowest; time 1: the reverse ranking;
    # time 2: one asset has no target (NaN) and one no score: 4 left, below min_names 5
    times = np.array([0] * 5 + [1] * 5 + [2] * 6)
    score = np.array([1, 1, 2, 3, 4, 5, 4, 3, 2, 1, 1, 2, 3, 4, np.nan, 6], float)
    y = np.array([1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2, np.nan, 4, 5, 6], float)
    d = daily_ic(times, y, score, min_names=5)
    # ranks of the score at time 0: 1.5 1.5 3 4 5; sum of products of deviations 9.5, variances 9.5 and 10
    assert d["rank_ic"][0] == pytest.approx(9.5 / np.sqrt(95.0))
    assert d["rank_ic"][1] == pytest.approx(-1.0)
    assert np.isnan(d["rank_ic"][2]) and d["names"].tolist() == [5, 5, 4]
    # Pearson at time 0: score 1 1 2 3 4 (mean 2.2) against 1..5
    s0 = np.array([1, 1, 2, 3, 4.0])
    assert d["ic"][0] == pytest.approx(np.corrcoef(s0, np.arange(1, 6.0))[0, 1])
    summary = ic_summary(times, y, score, horizon=1)
    assert summary["times"] == 2 and summary["rank_ic"] == pytest.approx((9.5 / np.sqrt(95.0) - 1.0) / 2)


def test_quantile_book_by_hand_turnover_and_costs():
    # 10 assets, 3 times, horizon 1: score = asset index, so the top fifth is {8, 9}, the bottom {0, 1}
    times = np.repeat([0, 1, 2], 10)
    asset = np.tile(np.arange(10), 3)
    score = asset.astype(float).copy()
    ret = np.tile(np.linspace(-0.09, 0.09, 10), 3)  # asset k returns -0.09 + 0.02 k
    score[20:30] = score[20:30][::-1]  # time 2: the ranking flips: long {0, 1}, short {8, 9}
    book = quantile_book(times, asset, score, ret, horizon=1, cost=0.001, periods_per_year=252, quantile=5)
    gross = (0.07 + 0.09) / 2 - (-0.09 - 0.07) / 2  # 0.16
    assert book["periods"] == 3
    assert book["gross"] == pytest.approx((gross + gross - gross) / 3)
    # turnover: 2 to open, 0 while the same, 4 when every position flips
    assert book["turnover"] == pytest.approx((2 + 0 + 4) / 3)
    assert book["net"] == pytest.approx(book["gross"] - 0.001 * 2)
    # an asset absent at a time is not traded there (nothing filled): drop asset 9 at time 1; with 9
    # assets a fifth is one name: long asset 8 (+0.07), short asset 0 (-0.09)
    keep = ~((times == 1) & (asset == 9))
    book2 = quantile_book(times[keep], asset[keep], score[keep], ret[keep], 1, 0.0, 252, 5)
    assert book2["gross"] == pytest.approx((gross + (0.07 + 0.09) - gross) / 3)
    assert book2["turnover"] == pytest.approx((2 + 2 + 4) / 3)  # 1/2 -> 1 on two names, 1/2 -> 0 on two


def test_the_loss_difference_across_assets_is_the_pooled_mean_difference():
    from candleflow.evaluation.pooled import loss_difference_t

    rng = np.random.default_rng(0)
    times = np.repeat(np.arange(100), [1 if i < 50 else 9 for i in range(100)])  # few assets early, many later
    y = rng.normal(size=times.size)
    better, worse = y + 0.5 * rng.normal(size=times.size), y + 0.6 * rng.normal(size=times.size)
    d = loss_difference_t(times, y, better, worse, "mse", horizon=1)
    assert d["mean"] == pytest.approx(np.mean((y - worse) ** 2 - (y - better) ** 2))
    assert d["t"] > 0 and d["ci95"][0] < d["mean"] < d["ci95"][1] and d["times"] == 100


def test_topk_dropout_changes_at_most_n_drop_names_a_rebalance():
    rng = np.random.default_rng(0)
    times = np.repeat(np.arange(40), 30)
    asset = np.tile(np.arange(30), 40)
    score, ret = rng.normal(size=times.size), rng.normal(0, 0.01, times.size)
    book = topk_dropout(times, asset, score, ret, horizon=1, cost=0.0, periods_per_year=252, k=6, n_drop=1)
    # each rebalance after the first sells at most one of 6 names and buys one: turnover <= 2/6
    assert book["periods"] == 40
    assert book["turnover"] <= (1.0 + 39 * 2 / 6) / 40 + 1e-12


def test_cross_section_target_demean_and_rank():
    times = np.array([0, 0, 0, 1, 1])
    y = np.array([1.0, 2.0, 6.0, -1.0, np.nan])
    assert cross_section_target(times, y, "demean")[:4].tolist() == pytest.approx([-2.0, -1.0, 3.0, 0.0])
    r = cross_section_target(times, y, "rank")
    assert r[:3] == pytest.approx((np.array([0.5, 1.5, 2.5]) / 3 - 0.5) * np.sqrt(12))
    assert r[3] == pytest.approx(0.0) and np.isnan(r[4])


def _candles(close: np.ndarray, volume: np.ndarray) -> Candles:
    n = close.size
    return Candles(
        open_time=np.arange(n, dtype=np.int64) * 24 * HOUR,
        open=close,
        high=close * 1.01,
        low=close * 0.99,
        close=close,
        volume=volume,
        segments=np.array([[0, n]]),
        symbol="X",
        interval="1d",
        source="test",
    )


@settings(max_examples=25, deadline=None)
@given(t=st.integers(260, 398), seed=st.integers(0, 2**16))
def test_cross_section_signals_are_causal(t, seed):
    """Changing any bar after t never changes the signals at t or before."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 400)))
    volume = rng.uniform(1e3, 1e4, 400)
    before = cross_section_signals(_candles(close, volume))
    close2, volume2 = close.copy(), volume.copy()
    close2[t + 1 :] *= rng.uniform(0.5, 2.0, 400 - t - 1)
    volume2[t + 1 :] = rng.uniform(1.0, 1e6, 400 - t - 1)
    after = cross_section_signals(_candles(close2, volume2))
    np.testing.assert_array_equal(before[: t + 1], after[: t + 1])
    # and by hand at bar 300: 12-1 momentum, the last return, the 20-day dollar volume
    assert before[300, 0] == pytest.approx(np.log(close[300] / close[299]))
    assert before[300, 1] == pytest.approx(np.log(close[300 - 21] / close[300 - 252]))
    assert before[300, 3] == pytest.approx(np.log(np.mean(close[281:301] * volume[281:301])))
    assert np.isnan(before[250, 1])  # less than 252 days of history


def test_cross_section_columns_by_hand_with_an_absent_asset():
    # three assets; asset 2 has no bar at time 1 (absent, never filled)
    times = [np.array([0, 1, 2]), np.array([0, 1, 2]), np.array([0, 2])]
    feats = [np.array([[1.0], [5.0], [2.0]]), np.array([[3.0], [1.0], [2.0]]), np.array([[2.0], [8.0]])]
    mean, rank, z = (cross_section_columns(times, feats, ["x"], [spec]) for spec in ("mean(x)", "rank(x)", "z(x)"))
    assert mean[0][:, 0].tolist() == pytest.approx([2.0, 3.0, 4.0])  # time 1: (5 + 1) / 2
    assert mean[2][:, 0].tolist() == pytest.approx([2.0, 4.0])
    assert rank[0][:, 0].tolist() == pytest.approx([0.5 / 3, 1.5 / 2, 1.0 / 3])  # time 2: 2 and 2 tie at rank 1.5
    assert rank[1][:, 0].tolist() == pytest.approx([2.5 / 3, 0.5 / 2, 1.0 / 3])
    assert z[0][1, 0] == pytest.approx(1.0) and z[1][1, 0] == pytest.approx(-1.0)


@settings(max_examples=20, deadline=None)
@given(t=st.integers(0, 48), asset=st.integers(0, 3), seed=st.integers(0, 2**16))
def test_cross_section_columns_are_causal(t, asset, seed):
    """Changing any asset's features after time t changes no column at t or before, for anyone."""
    rng = np.random.default_rng(seed)
    times = [np.arange(50) if k != 3 else np.arange(20, 50) for k in range(4)]  # asset 3 listed later
    feats = [rng.normal(size=(ti.size, 2)) for ti in times]
    specs = ["mean(a)", "median(b)", "rank(a)", "z(b)"]
    before = cross_section_columns(times, feats, ["a", "b"], specs)
    changed = [f.copy() for f in feats]
    later = times[asset] > t
    changed[asset][later] = rng.normal(size=(int(later.sum()), 2)) * 10
    after = cross_section_columns(times, changed, ["a", "b"], specs)
    for k in range(4):
        upto = times[k] <= t
        np.testing.assert_array_equal(before[k][upto], after[k][upto])


def test_fold_splits_purge_across_assets():
    # two assets on the same 60 times; a target ends 3 bars after its window
    t = np.tile(np.arange(60), 2)
    lab = t + 3
    splits = walk_forward_by_time(t, lab, folds=2, val_fraction=0.25)
    for s in splits:
        val_start, test_start = s.starts["val"], s.starts["test"]
        assert (lab[s["train"]] < val_start).all() and (t[s["train"]] < val_start).all()
        assert (lab[s["val"]] < test_start).all() and (t[s["val"]] >= val_start).all()
        # both assets are cut at the same instants
        for part in ("train", "val", "test"):
            a = s[part][s[part] < 60]
            b = s[part][s[part] >= 60] - 60
            assert sorted(a.tolist()) == sorted(b.tolist())
    assert splits[0].starts["test"] == 20 and splits[1].starts["test"] == 40


def test_template_symbols_lists_every_matching_file(tmp_path):
    for name in ("AAA-1d.csv", "BBB-1d.csv", "CC-1h.csv", "README.md"):
        (tmp_path / name).write_text("x")
    cfg = load_config(
        None, ["source.kind=files", f"source.paths=['{tmp_path}/{{symbol}}-1d.csv']", "universe.symbols=*"]
    )
    assert template_symbols(cfg.source, []) == ["AAA", "BBB"]
    none = load_config(None, ["source.kind=files", f"source.paths=['{tmp_path}/{{symbol}}-5m.csv']"])
    with pytest.raises(ConfigError, match="no file matches"):
        template_symbols(none.source, [])


def _write_universe(folder: Path, symbols: list[str], bars: int) -> None:
    """Synthetic markets written as CSV files, one per symbol (each its own seed)."""
    from candleflow.config import SyntheticSource

    folder.mkdir(parents=True, exist_ok=True)
    for k, symbol in enumerate(symbols):
        c, _ = load_candles(SyntheticSource(symbol=symbol, n_bars=bars, seed=10 + k, interval="1h"))
        table = c.to_arrow().select(["open_time", "open", "high", "low", "close", "volume"])
        pacsv.write_csv(table, folder / f"{symbol}-1h.csv")


def _universe_config(tmp_path: Path, keys: list[str]):
    """The files written by `_write_universe` as a universe ({symbol} template, every file), its
    store and runs under tmp_path, and `keys`."""
    return load_config(
        None,
        [
            "source.kind=files",
            f"source.paths=['{tmp_path}/files/{{symbol}}-1h.csv']",
            "source.interval=1h",
            "universe.symbols=*",
            f"universe.store={tmp_path / 'store'}",
            f"output.runs_dir={tmp_path / 'runs'}",
            *keys,
        ],
    )


@pytest.mark.integration
def test_pooled_regression_run_scores_the_cross_section_and_predict_gives_its_forecasts_back(tmp_path):
    from candleflow.pipeline import run
    from candleflow.runs.predict import Predictor

    symbols = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"]
    _write_universe(tmp_path / "files", symbols, 1500)
    cfg = _universe_config(
        tmp_path,
        [
            "output.name=pooled",
            "labels.kind=forward_return",
            "labels.horizon=6",
            "labels.cross_section=rank",
            "features.cross_section=[rank(log_return),mean(volatility),z(momentum)]",
            "dataset.asset_embedding=true",
            "dataset.window=16",
            "model.kind=linear",
            "evaluation.reference_models=[]",
            "cluster.workers=1",
        ],
    )
    result = run(cfg)
    cs = result.metrics["val"]["cross_section"]
    assert cs["assets"] == 6 and cs["best_baseline"] in cs["table"]
    assert set(cs["table"]) >= {"model", "reversal_1", "reversal", "momentum_12_1", "low_volatility", "size"}
    model = cs["table"]["model"]
    assert -1 <= model["rank_ic"] <= 1 and model["book_q5"]["periods"] > 10
    assert (result.run_dir / "asset_scales.npz").is_file()
    names = result.metadata["feature_names"]
    assert names[-9:-6] == ["cs_rank(log_return)", "cs_mean(volatility)", "cs_z(momentum)"]
    assert names[-6:] == [f"asset={s}-1h" for s in symbols]  # the one-hot identity of each asset, in run order
    assert result.metadata["asset_scaling"] == "per_asset"
    # predict over every asset (the template): the val windows' forecasts come back exactly
    predictor = Predictor.from_run(result.run_dir)
    table, what = predictor.predict_source(predictor.source_config(None, None), None, None)
    assert what.startswith("6 assets")
    with np.load(result.run_dir / "predictions.npz") as f:
        names = result.metadata["series"]
        want = {
            (names[k], int(t)): float(v)
            for k, t, v in zip(f["val_series"], f["val_times"], f["val_forecast"], strict=True)
        }
    got = {
        (a, int(t)): float(v)
        for a, t, v in zip(
            table.column("asset").to_pylist(),
            table.column("open_time").cast("int64").to_pylist(),
            table.column("forecast").to_pylist(),
            strict=True,
        )
    }
    common = [k for k in want if k in got]
    assert len(common) == len(want)
    np.testing.assert_allclose([got[k] for k in common], [want[k] for k in common], rtol=1e-4, atol=1e-6)
    rank = np.asarray(table.column("rank").to_pylist())
    assert ((rank > 0) & (rank < 1)).all()
    notes = json.loads(table.schema.metadata[b"candleflow_notes"])
    assert any("daily rank IC" in n for n in notes)
    # the serving bundle carries the per-asset scales, and predicts the same
    from candleflow.runs.bundle import export_bundle

    bundle, _ = export_bundle(result.run_dir, tmp_path / "bundle")
    assert (bundle / "asset_scales.npz").is_file()
    served = Predictor.from_run(bundle)
    again, _ = served.predict_source(served.source_config(None, None), None, None)
    np.testing.assert_allclose(again.column("forecast").to_numpy(), table.column("forecast").to_numpy(), rtol=1e-6)
    # tune scores trials on the universe's folds (the daily rank IC across the assets here)
    from candleflow.studies.tune import tune

    tuned = tune(
        cfg.model_copy(update={"tune": cfg.tune.model_copy(update={"folds": 2, "objective": "ic"})}), "t", 1, {}
    )
    assert len(tuned.trials) == 1 and len(tuned.trials[0]["fold_scores"].split()) == 2
    assert -1 <= tuned.trials[0]["value"] <= 1
    # an asset whose file is gone (it stopped trading) is absent, named in the notes, never filled
    (tmp_path / "files" / "FFF-1h.csv").unlink()
    later, _ = predictor.predict_source(predictor.source_config(None, None), None, None)
    assert "FFF-1h" not in set(later.column("asset").to_pylist()) and later.num_rows < table.num_rows
    assert any("absent" in n and "FFF-1h" in n for n in json.loads(later.schema.metadata[b"candleflow_notes"]))
    # one file alone cannot give the cross-sectional columns: refused in one line
    one = predictor.source_config([f"source.paths=['{tmp_path}/files/AAA-1h.csv']"], None)
    with pytest.raises(ConfigError, match="computed across the universe's assets"):
        predictor.predict_source(one, None, None)


@pytest.mark.integration
def test_the_panel_gpt_regresses_one_output_per_ticker_and_predict_gives_its_forecasts_back(tmp_path):
    from candleflow.pipeline import run
    from candleflow.runs.predict import Predictor

    symbols = ["AAA", "BBB", "CCC", "DDD", "EEE"]
    _write_universe(tmp_path / "files", symbols, 1200)
    cfg = _universe_config(
        tmp_path,
        [
            "output.name=panel",
            "labels.kind=forward_return",
            "labels.horizon=6",
            "labels.cross_section=demean",
            "dataset.layout=panel",
            "dataset.window=16",
            "model.kind=gpt",
            "model.gpt_d_model=16",
            "model.gpt_layers=1",
            "model.gpt_heads=2",
            "model.dense_units=[8]",
            "training.epochs=2",
            "training.verbose=0",
            "evaluation.reference_models=[linear]",
            "cluster.workers=1",
        ],
    )
    result = run(cfg)
    val = result.metrics["val"]
    cs = val["cross_section"]
    assert cs["assets"] == 5 and {"model", "linear", "reversal", "size"} <= set(cs["table"])
    assert val["target"] == "forward_return" and "r2" in val["table"]["model"]
    assert (result.run_dir / "report.html").is_file()
    predictor = Predictor.from_run(result.run_dir)
    table, what = predictor.predict_source(predictor.source_config(None, None), None, None)
    assert what.startswith("5 tickers")
    with np.load(result.run_dir / "predictions.npz") as f:
        names = result.metadata["tickers"]
        want = {
            (names[k], int(t)): float(v)
            for k, t, v in zip(f["val_series"], f["val_times"], f["val_forecast"], strict=True)
        }
    rows = table.filter(table.column("present")).to_pylist()
    got = {(r["ticker"], int(np.datetime64(r["open_time"], "ns").astype(np.int64))): r["forecast"] for r in rows}
    assert all(k in got for k in want)
    np.testing.assert_allclose([got[k] for k in want], list(want.values()), rtol=1e-4, atol=1e-5)


def test_block_resampled_sums_are_the_block_bootstraps_sums_without_its_indices():
    from candleflow.evaluation.bootstrap import block_indices, block_resampled_sums

    v = np.random.default_rng(1).normal(size=1003)  # 1003 = 20 blocks of 48 and a last one of 43
    idx = block_indices(1003, 48, 200, np.random.default_rng(0))
    (sums,) = block_resampled_sums([v], 48, 200, np.random.default_rng(0))
    np.testing.assert_allclose(sums, v[idx].sum(axis=1), rtol=0, atol=1e-9)


@pytest.mark.integration
def test_a_pooled_walkforward_scores_families_and_baselines_and_continues_only_the_same_study(tmp_path):
    from candleflow.studies.pooled_walkforward import pooled_walkforward

    _write_universe(tmp_path / "files", ["AAA", "BBB", "CCC", "DDD", "EEE"], 1200)
    cfg = _universe_config(
        tmp_path, ["labels.kind=volatility", "labels.horizon=12", "dataset.window=16", "cluster.workers=1"]
    )
    result = pooled_walkforward(cfg, folds=2, families=["linear"], name="s")
    s = result.summary
    assert s["kind"] == "pooled" and s["assets"] == 5 and s["folds"] == 2
    assert set(s["table"]) == {"linear", "persistence", "har", "har_asset", "har_seasonal_asset"}
    row = s["table"]["linear"]
    assert len(row["rank_ic_folds"]) == 2 and row["vs_best_mse"]["times"] > 10 and row["mse"] > 0
    assert s["best_baseline"] in s["table"] and (result.folder / "report.html").is_file()
    files = sorted(p.name for p in (result.folder / "folds").iterdir())
    assert files == ["baselines-f0.npz", "baselines-f1.npz", "linear-f0.npz", "linear-f1.npz"]
    stamp = (result.folder / "folds" / "linear-f0.npz").stat().st_mtime_ns
    again = pooled_walkforward(cfg, folds=2, families=["linear"], name="s")  # the same study: nothing retrains
    assert (result.folder / "folds" / "linear-f0.npz").stat().st_mtime_ns == stamp
    assert again.summary["table"]["linear"]["mse"] == pytest.approx(row["mse"])
    with pytest.raises(ConfigError, match="started with another folds"):
        pooled_walkforward(cfg, folds=3, families=["linear"], name="s")
