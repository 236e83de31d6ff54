"""Panel datasets: many tickers side by side on one time axis, a masked loss, the cross-sectional
backtest, and a panel run on a synthetic universe with a shared market factor."""

from __future__ import annotations

import json

import numpy as np
import pytest

from candleflow.dataset.panel import PanelDataset, SeriesArrays, align_panel, forward_returns, panel_window_ends
from candleflow.errors import DataError
from candleflow.evaluation.cross_section import cross_sectional_backtest, long_short_weights

H = 3_600_000_000_000


def series(name, hours, f=2, calendar="24/7", label=1):
    n = len(hours)
    feats = np.arange(n * f, dtype=np.float64).reshape(n, f) + (100 if name == "B" else 0)
    return SeriesArrays(
        name,
        np.asarray(hours, dtype=np.int64) * H,
        feats,
        np.full(n, label, np.int8),
        np.minimum(np.arange(n) + 1, n - 1),
        np.linspace(100, 100 + n - 1, n),
        np.array([[0, n]]),
        calendar,
    )


def test_align_union_intersection_and_calendars_by_hand():
    a, b = series("A", [0, 1, 2, 3]), series("B", [1, 2, 4])
    p = align_panel([a, b], horizon=1)
    assert (p.times // H).tolist() == [0, 1, 2, 3, 4] and p.names == ["A", "B"]
    # columns: A's 2 features, B's 2 features, then presence of A and B
    assert p.values.shape == (5, 6)
    assert p.values[:, 4].tolist() == [1, 1, 1, 1, 0] and p.values[:, 5].tolist() == [0, 1, 1, 0, 1]
    assert p.values[1, 2:4].tolist() == [100, 101] and p.values[0, 2:4].tolist() == [0, 0]  # B not listed yet
    assert p.labels[:, 1].tolist() == [-1, 1, 1, -1, 1]
    # forward return over 1 bar of each ticker's own bars: A 100 -> 101; B's bar at hour 2 (101) -> hour 4 (102)
    assert p.returns[0, 0] == pytest.approx(0.01, rel=1e-6) and p.returns[2, 1] == pytest.approx(
        102 / 101 - 1, rel=1e-6
    )
    assert np.isnan(p.returns[3, 0]) and np.isnan(p.returns[0, 1])
    assert (p.label_end[1] // H) == 2  # A's label at hour 1 ends at hour 2, B's too
    inter = align_panel([a, b], horizon=1, rule="intersection")
    assert (inter.times // H).tolist() == [1, 2] and inter.present().all()
    with pytest.raises(DataError, match="different calendars \\(A on XNYS, B on XLON\\); set dataset.panel_calendar"):
        align_panel([series("A", [0, 1], calendar="XNYS"), series("B", [0, 1], calendar="XLON")], 1)
    mixed = align_panel([series("A", [0, 1], calendar="XNYS"), series("B", [0, 1], calendar="XLON")], 1, "union")
    assert mixed.calendar == "mixed"
    with pytest.raises(DataError, match="C: no bars; a panel ticker needs data"):
        align_panel([a, series("C", [])], 1)
    with pytest.raises(DataError, match="share no bar time"):
        align_panel([series("A", [0, 1]), series("B", [5, 6])], 1, "intersection")


def test_nonfinite_features_are_absent_not_zero_rows():
    a = series("A", [0, 1, 2])
    feats = a.features.copy()
    feats[0, 1] = np.nan  # warm-up
    p = align_panel([SeriesArrays(**{**a.__dict__, "features": feats}), series("B", [0, 1, 2])], 1)
    assert p.present()[:, 0].tolist() == [False, True, True] and p.labels[0, 0] == -1


def test_windows_are_views_and_a_batch_is_one_gather():
    rng = np.random.default_rng(0)
    hours = np.arange(50)
    ss = [
        SeriesArrays(
            n,
            hours * H,
            rng.normal(size=(50, 3)),
            rng.integers(-1, 3, 50).astype(np.int8),
            np.minimum(hours + 2, 49),
            np.exp(np.cumsum(rng.normal(0, 0.01, 50))),
            np.array([[0, 50]]),
        )
        for n in "XYZ"
    ]
    p = align_panel(ss, horizon=2)
    ends = panel_window_ends(p, 10)
    assert ends.min() >= 9 and (p.labels[ends] >= 0).any(axis=1).all()
    ds = PanelDataset(p, ends, 10)
    assert np.shares_memory(ds._view, p.values)  # windows are a view of the panel
    x = ds.gather(np.array([0, 5]))
    assert x.shape == (2, 10, 3 * 3 + 3) and x.flags.c_contiguous
    np.testing.assert_array_equal(x[1], p.values[ends[5] - 9 : ends[5] + 1])
    xb, extra = ds.batch(np.array([0, 5]), with_returns=True)
    assert extra["labels"].shape == (2, 3) and extra["returns"].shape == (2, 3)
    assert (extra["mask"] == ((extra["labels"] >= 0) & np.isfinite(ds.returns_at(np.array([0, 5]))))).all()
    mean, var = ds.moments()
    assert mean.shape == (12,) and var[9:].tolist() == [1, 1, 1]  # presence columns left as they are


def test_forward_returns_stop_at_segment_ends():
    r = forward_returns(np.array([1.0, 2, 4, 8, 16]), np.array([[0, 3], [3, 5]]), 1)
    assert r[:2].tolist() == [1.0, 1.0] and np.isnan(r[2]) and r[3] == 1.0 and np.isnan(r[4])


def test_cross_sectional_backtest_by_hand():
    # 4 tickers, horizon 1 (rebalance every row), k = 1: long the best score, short the worst
    scores = np.array([[0.9, 0.1, 0.5, 0.2], [0.1, 0.9, 0.5, 0.2]])
    probs = np.zeros((2, 4, 3))
    probs[..., 2], probs[..., 0] = scores, 1 - scores
    returns = np.array([[0.10, -0.05, 0.0, 0.02], [0.01, 0.03, 0.0, -0.02]])
    tradable = np.ones((2, 4), bool)
    out = cross_sectional_backtest(probs, returns, tradable, 1, 1, 0.001, bars_per_year=252)
    # row 0: long A (+10%) short B (-5%): +15% less costs on 2 units of weight change (0.002)
    # row 1: long B (+3%) short A (+1%): +2% less costs on weight change |0-1|+|1-(-1)|... = 4 x 0.001
    p0, p1 = 0.15 - 0.002, 0.02 - 0.004
    assert out["model"]["total_return"] == pytest.approx((1 + p0) * (1 + p1) - 1)
    assert out["oracle"]["total_return"] >= out["model"]["total_return"]
    assert out["equal_weight_long"]["total_return"] == pytest.approx((1 + 0.0175 - 0.001) * (1 + 0.005) - 1)
    w = long_short_weights(scores, np.array([[True, True, False, False], [True, True, True, True]]), 1)
    assert w[0].tolist() == [1, -1, 0, 0] and w[1].tolist() == [-1, 1, 0, 0]
    assert long_short_weights(scores, np.array([[True, False, False, False]] * 2), 1).sum() == 0  # too few


def test_masked_loss_skips_missing_labels():
    from candleflow.models.panel_model import MaskedSparseCrossEntropy

    y = np.array([[2, -1], [-1, -1]])
    p = np.array([[[0.2, 0.3, 0.5], [0.9, 0.05, 0.05]], [[1 / 3] * 3, [1 / 3] * 3]], dtype=np.float32)
    loss = np.asarray(MaskedSparseCrossEntropy().call(y, p))
    assert loss[0] == pytest.approx(-np.log(0.5), rel=1e-5) and loss[1] == 0.0
    weighted = np.asarray(MaskedSparseCrossEntropy([1.0, 1.0, 2.0]).call(y, p))
    assert weighted[0] == pytest.approx(-2 * np.log(0.5), rel=1e-5)


@pytest.mark.extended
@pytest.mark.integration
def test_panel_run_on_a_synthetic_universe_with_a_market_factor(tmp_path):
    import candleflow as cf
    from candleflow.runs.registry import load_model

    cfg = cf.load_config(
        None,
        [
            "dataset.layout=panel",
            "model.kind=gpt",
            "model.gpt_d_model=16",
            "model.dense_units=[8]",
            "universe.symbols=[AAA,BBB,CCC,DDD]",
            "source.market_factor=0.5",
            "source.n_bars=2500",
            "dataset.returns=true",
            "dataset.window=24",
            "training.epochs=1",
            "training.verbose=0",
            f"universe.store={tmp_path / 'store'}",
            f"output.runs_dir={tmp_path / 'runs'}",
            "output.name=panel",
            "cluster.workers=1",
            "training.backend=jax",  # the export below is StableHLO (auto would pick torch for the GPT on a CPU)
        ],
    )
    result = cf.run(cfg)
    val = result.metrics["val"]
    assert set(val["table"]) >= {"model", "majority", "always_hold", "stratified", "ref_lightgbm", "ref_linear"}
    assert val["best_reference"] in ("lightgbm", "linear") and "edge_over_reference" in val  # pooled, per ticker
    assert set(val["cross_section"]) == {"model", "equal_weight_long", "random_ranking", "oracle"}
    assert set(val["tickers"]) == {"AAA-1h", "BBB-1h", "CCC-1h", "DDD-1h"}
    assert val["cross_section"]["oracle"]["total_return"] > val["cross_section"]["random_ranking"]["total_return"]
    assert set(val["cross_section_ic"]) == {"model", "lightgbm", "linear"}
    assert val["cross_section_ic"]["model"]["times"] > 100 and -1 < val["cross_section_ic"]["model"]["rank_ic"] < 1
    model = load_model(result.run_dir)  # safe mode, the masked loss registered
    assert tuple(model.output_shape[1:]) == (4, 3) and tuple(model.input_shape[1:]) == (24, 4 * 8 + 4)
    assert model.loss.return_weighted  # dataset.returns: R travels with the labels into the loss
    with np.load(result.run_dir / "predictions.npz", allow_pickle=False) as z:
        assert z["val_probs"].shape[1:] == (4, 3) and z["val_y"].shape[1] == 4
    # the market factor: the tickers' returns move together
    from candleflow.scale.store import open_panel

    panel = open_panel(cfg.universe.store, ["AAA-1h", "BBB-1h", "CCC-1h", "DDD-1h"], 1)
    r = panel.returns[np.isfinite(panel.returns).all(axis=1)]
    assert np.corrcoef(r.T)[np.triu_indices(4, 1)].min() > 0.3
    from candleflow.errors import ConfigError
    from candleflow.runs.predict import Predictor
    from candleflow.runs.report import build_report

    # predict: the tickers read again from their sources reproduce the run's validation predictions
    p = Predictor.from_run(result.run_dir)
    table, what = p.predict_source(p.source_config())
    assert what == "4 tickers 1h" and set(table.column("ticker").to_pylist()) == set(val["tickers"])
    with np.load(result.run_dir / "predictions.npz", allow_pickle=False) as z:
        times, probs, y = z["val_times"], z["val_probs"], z["val_y"]
    got_t = table.column("open_time").to_numpy().astype(np.int64).reshape(-1, 4)[:, 0]
    rows = np.searchsorted(got_t, times)
    assert np.array_equal(got_t[rows], times)  # every validation window has its rows
    got = np.stack([table.column(f"prob_{c}").to_numpy(zero_copy_only=False) for c in ("short", "hold", "long")], -1)
    got = got.reshape(-1, 4, 3)[rows]
    present = table.column("present").to_numpy(zero_copy_only=False).reshape(-1, 4)[rows]
    np.testing.assert_allclose(got[present], probs[present], rtol=1e-5, atol=1e-6)  # parity
    labels = np.array(table.column("label").to_pylist(), dtype=object).reshape(-1, 4)[rows]
    assert [[v if v is not None else -1 for v in r] for r in labels.tolist()] == np.where(
        y >= 0, np.array(["SHORT", "HOLD", "LONG"], dtype=object)[np.maximum(y, 0)], -1
    ).tolist()
    ranks = np.array(table.column("rank").to_pylist(), dtype=object).reshape(-1, 4)[rows]
    assert all(sorted(r) == [1, 2, 3, 4] for r in ranks[present.all(axis=1)].tolist())
    # export: a bundle that predict serves, with the same rows
    from candleflow.runs.bundle import export_bundle

    bundle, used = export_bundle(result.run_dir, runs_dir=tmp_path / "runs")
    assert used == "stablehlo" and (bundle / "model.stablehlo").is_file()
    served, _ = Predictor.from_run(bundle).predict_source(p.source_config())
    assert served.column("prob_long").equals(table.column("prob_long"))
    # the report: written at run time from the run's files, rebuilt identically, opened in a browser
    page = (result.run_dir / "report.html").read_text()
    assert all(name in page for name in val["tickers"]) and "cross-sectional books" in page
    assert "best reference model" in page and "equal_weight_long" in page
    # issue 41: what validation did to each ticker's prices, in data.json and the report
    per = json.loads((result.run_dir / "data.json").read_text())["per_ticker"]
    assert sorted(per) == sorted(val["tickers"]) and all(
        d["rows"] == 2500 and d["adjusted"] == "" for d in per.values()
    )
    assert "data per ticker" in page and "2,500 rows in, 2,500 out" in page
    build_report(result.run_dir)
    assert (result.run_dir / "report.html").read_text() == page
    from test_report import open_in_browser

    open_in_browser(result.run_dir / "report.html", images=3, tables=3, shot_name="panel-report.png")

    lstm = cf.load_config(
        None, ["dataset.layout=panel", "universe.symbols=[AAA,BBB]", f"output.runs_dir={tmp_path / 'r2'}"]
    )
    with pytest.raises(ConfigError, match="model.kind 'lstm' does not train on a panel .*families that do: gpt"):
        cf.run(lstm)


def test_return_weighted_loss_by_hand():
    from candleflow.models.panel_model import MaskedSparseCrossEntropy

    # two tickers with labels, |R| 0.03 and 0.01: weights 1.5 and 0.5 of the mean; a third without a label
    y = np.array([[[2, 0.03], [0, -0.01], [-1, 0.5]]], dtype=np.float32)
    p = np.array([[[0.2, 0.3, 0.5], [0.25, 0.5, 0.25], [1 / 3] * 3]], dtype=np.float32)
    loss = np.asarray(MaskedSparseCrossEntropy(return_weighted=True).call(y, p))
    want = (1.5 * -np.log(0.5) + 0.5 * -np.log(0.25)) / 2
    assert loss[0] == pytest.approx(want, rel=1e-5)


def test_tickers_of_different_intervals_are_refused_in_one_line():
    """SPY daily beside BTC hourly on one time axis would mean nothing: refused, naming both."""
    from dataclasses import replace

    from candleflow.errors import DataError

    daily, hourly = replace(series("SPY", [0, 24, 48]), interval="1d"), replace(series("BTC", [0, 1, 2]), interval="1h")
    with pytest.raises(DataError, match=r"^the panel's tickers have different bar intervals \(SPY: 1d, BTC: 1h\)"):
        align_panel([daily, hourly], horizon=1, rule="union")
    assert align_panel([replace(daily, interval="1h"), hourly], horizon=1, rule="union").names == ["SPY", "BTC"]


def test_the_panel_gpt_shares_one_encoder_across_tickers(tmp_path):
    """Each ticker's columns go through the same weights: permuting the tickers' feature columns
    permutes the outputs (and nothing else); the model saves and loads in safe mode."""
    from candleflow.config import ModelConfig
    from candleflow.models.loading import load_model_file
    from candleflow.models.panel_model import build_panel_gpt

    n, f, w = 3, 4, 10
    cols = n * f + n
    model = build_panel_gpt(
        ModelConfig(gpt_d_model=16, gpt_heads=2, gpt_layers=1, dense_units=[8]),
        w,
        cols,
        n,
        np.zeros(cols),
        np.ones(cols),
    )
    x = np.random.default_rng(0).normal(size=(5, w, cols)).astype("float32")
    x[..., n * f :] = 1.0  # every ticker present
    perm = [2, 0, 1]
    xp = x.copy()
    for new, old in enumerate(perm):
        xp[..., new * f : (new + 1) * f] = x[..., old * f : (old + 1) * f]
    y = model.predict(x, verbose=0)
    np.testing.assert_allclose(model.predict(xp, verbose=0), y[:, perm], atol=1e-6)
    model.save(tmp_path / "p.keras")
    np.testing.assert_allclose(load_model_file(tmp_path / "p.keras").predict(x, verbose=0), y, atol=1e-7)


@pytest.mark.extended
@pytest.mark.integration
def test_walkforward_on_a_panel_gives_every_family_an_interval(tmp_path):
    """cf.walkforward on dataset.layout panel: the panel GPT and the pooled references per fold,
    stitched over (window, ticker) labels, each edge with a block-bootstrap interval."""
    import candleflow as cf

    cfg = cf.load_config(
        None,
        [
            "dataset.layout=panel",
            "model.kind=gpt",
            "model.gpt_d_model=16",
            "model.gpt_layers=1",
            "model.dense_units=[8]",
            "universe.symbols=[AAA,BBB,CCC]",
            "source.n_bars=2000",
            "dataset.window=24",
            "training.epochs=1",
            "training.verbose=0",
            f"universe.store={tmp_path / 'store'}",
            f"output.runs_dir={tmp_path / 'runs'}",
            "cluster.workers=1",
        ],
    )
    study = cf.walkforward(cfg, folds=2, seeds=1, name="p", resamples=200)
    s = study.summary
    assert s["layout"] == "panel" and set(s["table"]) == {"gpt", "lightgbm", "linear"} and len(s["folds"]) == 2
    assert s["stitched"]["labels"] > 0 and s["tickers"] == ["AAA-1h", "BBB-1h", "CCC-1h"]
    for fam, e in s["table"].items():
        lo, hi = e["edge_over_baseline_ci95"]
        assert lo <= e["edge_over_baseline"] + 1e-9 and hi >= e["edge_over_baseline"] - 0.05, fam
        assert 0.0 <= e["balanced_accuracy_mean"] <= 1.0
    assert "edge_over_lightgbm_ci95" in s["table"]["gpt"] and "edge_over_lightgbm" not in s["table"]["lightgbm"]
    assert (study.folder / "summary.json").is_file()


def test_cross_sectional_ic_by_hand():
    """At each time the IC across tickers, then the mean, std and ICIR over times; the top third
    minus the bottom third; times with fewer than 3 tradable names are skipped."""
    from scipy.stats import spearmanr

    from candleflow.evaluation.cross_section import cross_sectional_ic

    scores = np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [6.0, 5.0, 4.0, 3.0, 2.0, 1.0], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])
    returns = np.array(
        [[0.01, 0.03, 0.02, 0.05, 0.04, 0.06], [0.01, 0.02, 0.0, 0.03, -0.01, 0.02], [1, 2, 3, 4, 5, 6.0]]
    )
    tradable = np.ones_like(scores, bool)
    tradable[2, 2:] = False  # two names at the third time: skipped
    out = cross_sectional_ic(scores, returns, tradable)
    assert out["times"] == 2
    ics = [np.corrcoef(scores[t], returns[t])[0, 1] for t in (0, 1)]
    ric = [spearmanr(scores[t], returns[t])[0] for t in (0, 1)]
    assert out["ic"] == pytest.approx(np.mean(ics)) and out["rank_ic"] == pytest.approx(np.mean(ric))
    assert out["icir"] == pytest.approx(np.mean(ics) / np.std(ics, ddof=1))
    # top third (2 names) minus bottom third: t0 (0.04+0.06)/2 - (0.01+0.03)/2; t1 by score 6,5 vs 1,2
    spread0 = (0.04 + 0.06) / 2 - (0.01 + 0.03) / 2
    spread1 = (0.01 + 0.02) / 2 - (-0.01 + 0.02) / 2
    assert out["top_minus_bottom"] == pytest.approx((spread0 + spread1) / 2)
