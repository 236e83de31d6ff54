"""Gradient boosting and linear families beside the deep models: saved without pickle, present as
reference models in every run, and compared out of sample by walk-forward evaluation."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from candleflow.dataset.split import walk_forward_splits
from candleflow.models.tabular import (
    GBM_FILE,
    LINEAR_FILE,
    GBMModel,
    LinearModel,
    fit_gbm,
    fit_linear,
    lag_features,
    window_lags,
)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(60, 400),
    horizon=st.integers(1, 30),
    folds=st.integers(1, 5),
    embargo=st.integers(0, 5),
    rolling=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_walk_forward_never_fits_or_selects_on_a_label_that_sees_the_test_period(
    n, horizon, folds, embargo, rolling, seed
):
    rng = np.random.default_rng(seed)
    ends = np.cumsum(rng.integers(1, 3, size=n)) + 50
    t1 = np.arange(ends.max() + horizon + 1) + rng.integers(1, horizon + 1, size=ends.max() + horizon + 1)
    try:
        splits = walk_forward_splits(ends, t1, folds, 0.2, embargo, rolling)
    except Exception as exc:  # too few windows for this many folds after purging: a clear error
        assert "too few" in str(exc) or "0 windows" in str(exc)
        return
    previous_test_end = -1
    for s in splits:
        train, val, test = (s.parts[p] for p in ("train", "val", "test"))
        assert ends[train].max() < ends[val].min() and ends[val].max() < ends[test].min()
        assert t1[ends[train]].max() + embargo < ends[val].min()
        assert t1[ends[val]].max() + embargo < ends[test].min()  # selection never sees the test period
        assert ends[test].min() > previous_test_end  # test periods follow each other, never overlap
        previous_test_end = ends[test].max()


def _xy(n=600, d=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = np.where(x[:, 0] > 0.5, 2, np.where(x[:, 0] < -0.5, 0, 1))
    return x, y


def test_lightgbm_round_trips_without_pickle(tmp_path):
    x, y = _xy()
    model = fit_gbm(x[:400], y[:400], None, x[400:], y[400:], [0, 1])
    path = model.save(tmp_path)
    assert path.name == GBM_FILE and path.read_text().startswith("tree")  # LightGBM's own text format
    again = GBMModel.load(path, [0, 1])
    np.testing.assert_allclose(again.predict_proba(x), model.predict_proba(x), rtol=1e-6)
    assert (again.predict_proba(x).argmax(1) == y).mean() > 0.9


def test_linear_round_trips_without_pickle(tmp_path):
    x, y = _xy()
    model = fit_linear(x, y, None, [0, 3])
    path = model.save(tmp_path)
    assert path.name == LINEAR_FILE
    with np.load(path, allow_pickle=False) as z:  # plain arrays only
        assert sorted(z.files) == ["coef", "intercept", "lags", "mean", "scale"]
    again = LinearModel.load(path)
    np.testing.assert_allclose(again.predict_proba(x), model.predict_proba(x), rtol=1e-6)
    assert again.lags == [0, 3] and (again.predict_proba(x).argmax(1) == y).mean() > 0.85


def test_linear_handles_a_class_missing_from_training():
    x, y = _xy()
    keep = y != 0
    model = fit_linear(x[keep], y[keep], None, [0])
    p = model.predict_proba(x)
    assert p.shape == (600, 3) and np.allclose(p.sum(1), 1) and p[:, 0].max() < 1e-6


def test_lags_are_the_rows_before_the_window_end(tiny_config):
    from candleflow.dataset.prepare import prepare

    prep = prepare(tiny_config())
    ds = prep.dataset.subset(np.arange(5))
    lags = window_lags([0, 1, 119], ds.shape[1])
    assert lags == [0, 1, 23]  # 119 clipped to the 24-bar window's first row
    x = lag_features(ds, lags)
    windows = ds.gather(np.arange(5))
    np.testing.assert_array_equal(x[:, :8], windows[:, -1, :])
    np.testing.assert_array_equal(x[:, 8:16], windows[:, -2, :])
    np.testing.assert_array_equal(x[:, 16:], windows[:, 0, :])


@pytest.mark.integration
def test_a_run_shows_reference_models_and_a_tabular_run_reloads(tiny_config):
    import candleflow as cf

    result = cf.run(tiny_config())
    m = json.loads((result.run_dir / "metrics.json").read_text())["val"]
    assert {"ref_lightgbm", "ref_linear"} <= set(m["table"])
    best = max(m["table"][k]["balanced_accuracy"] for k in ("ref_lightgbm", "ref_linear"))
    assert m["edge_over_reference"] == pytest.approx(m["table"]["model"]["balanced_accuracy"] - best)
    assert m["best_reference"] in ("lightgbm", "linear")

    gbm = cf.run(tiny_config("model.kind=lightgbm", "output.name=gbm"))
    folder = gbm.run_dir
    assert (folder / GBM_FILE).is_file() and not (folder / "model.keras").exists()
    table = json.loads((folder / "metrics.json").read_text())["val"]["table"]
    assert "ref_linear" in table and "ref_lightgbm" not in table  # the model is the lightgbm
    model = cf.load_model(folder)
    pred = np.load(folder / "predictions.npz", allow_pickle=False)
    from candleflow.dataset.prepare import prepare

    prep = prepare(tiny_config())
    ends = pred["val_ends"]
    pos = np.searchsorted(prep.dataset.ends, ends)
    x = lag_features(prep.dataset.subset(pos), model.lags)
    np.testing.assert_allclose(model.predict_proba(x), pred["val_probs"], rtol=1e-5, atol=1e-6)
    assert not zipfile.is_zipfile(folder / GBM_FILE)


@pytest.mark.integration
def test_walkforward_stitches_out_of_sample_predictions_and_resumes(tiny_config):
    from candleflow.studies.common import load_fold
    from candleflow.studies.walkforward import walkforward

    cfg = tiny_config("source.n_bars=4000")
    result = walkforward(cfg, folds=3, seeds=2, families=["lightgbm", "linear"], name="t", resamples=200)
    s = result.summary
    folds = sorted((result.folder / "folds").glob("lightgbm-s42-f*.npz"))
    assert len(folds) == 3 and len(list((result.folder / "folds").glob("*.npz"))) == 12
    stitched = []
    for path in folds:
        f = load_fold(path)
        # no model predicts a window that ends before its training labels end (plus the purge)
        assert f["ends"].min() > f["train_last_label_end"] + cfg.dataset.embargo
        assert f["ends"].min() > f["train_last_end"]
        stitched.append(f["ends"])
    ends = np.concatenate(stitched)
    assert np.all(np.diff(ends) > 0) and s["stitched"]["windows"] == ends.size
    for family in ("lightgbm", "linear"):
        e = s["table"][family]
        assert set(e["seeds"]) == {"42", "43"} and len(e["folds"]["42"]) == 3
        lo, hi = e["edge_over_baseline_ci95"]
        assert lo <= hi
    assert "edge_over_lightgbm_ci95" in s["table"]["linear"]
    on_disk = json.loads((result.folder / "walkforward.json").read_text())
    assert on_disk["table"]["linear"]["balanced_accuracy_mean"] == s["table"]["linear"]["balanced_accuracy_mean"]
    assert (result.folder / "report.html").read_text().count("<img") == 1
    # a rerun finds every fold done and trains nothing
    mtimes = {p: p.stat().st_mtime_ns for p in (result.folder / "folds").glob("*.npz")}
    again = walkforward(cfg, folds=3, seeds=2, families=["lightgbm", "linear"], name="t", resamples=200)
    assert {p: p.stat().st_mtime_ns for p in (result.folder / "folds").glob("*.npz")} == mtimes
    assert again.summary["table"] == s["table"]
    from candleflow.errors import ConfigError

    with pytest.raises(ConfigError, match="was started with another folds"):  # never stitch another split in
        walkforward(cfg, folds=2, seeds=2, families=["lightgbm"], name="t")
    with pytest.raises(ConfigError, match="was started with another labels.horizon"):
        walkforward(
            tiny_config("source.n_bars=4000", "labels.horizon=12"), folds=3, seeds=1, families=["linear"], name="t"
        )
    # the same folds read by another objective: each fold's margin chosen again on its own validation
    # period (by hand below), nothing retrained, trade statistics beside the accuracy
    from candleflow.evaluation.metrics import choose_margin
    from candleflow.evaluation.trading import trade_score

    sharpe = walkforward(
        cfg, folds=3, seeds=2, families=["lightgbm", "linear"], name="t", resamples=200, objective="sharpe"
    ).summary
    assert {p: p.stat().st_mtime_ns for p in (result.folder / "folds").glob("*.npz")} == mtimes
    prep = __import__("candleflow").prepare(cfg)
    for k, path in enumerate(sorted((result.folder / "folds").glob("linear-s42-f*.npz"))):
        f = load_fold(path)
        want, _ = choose_margin(
            f["val_y"], f["val_probs"], score=lambda d, e=f["val_ends"]: trade_score(prep.candles, e, d, cfg, "sharpe")
        )
        assert sharpe["table"]["linear"]["margins"]["42"][k] == want
    assert sharpe["objective"] == "sharpe" and s["objective"].startswith("decision_margin")
    for key in ("trades_mean", "hit_rate_mean", "average_win_mean", "average_loss_mean", "turnover_mean"):
        assert key in sharpe["table"]["linear"]
    with pytest.raises(ConfigError, match="--objective 'ic': labels.kind competitive is scored by balanced_accuracy"):
        walkforward(cfg, folds=3, seeds=2, families=["linear"], name="t", objective="ic")


@pytest.mark.integration
def test_without_signal_no_family_has_a_significant_edge(tiny_config):
    from candleflow.studies.walkforward import walkforward

    cfg = tiny_config("source.n_bars=6000", "source.signal_strength=0")
    s = walkforward(cfg, folds=4, seeds=1, families=["lightgbm", "linear"], name="null", resamples=500).summary
    for family, e in s["table"].items():
        lo, hi = e["edge_over_baseline_ci95"]
        assert lo <= 0 <= hi, (family, e["edge_over_baseline_ci95"])


@pytest.mark.extended
@pytest.mark.integration
def test_walkforward_grid_on_dask_matches_the_serial_study(tiny_config, tmp_path):
    from candleflow.studies.common import load_fold
    from candleflow.studies.walkforward import walkforward

    cfg = tiny_config("source.n_bars=3000", "cluster.workers=2")
    serial = walkforward(cfg, folds=2, seeds=1, families=["linear", "lightgbm"], name="serial", resamples=100)
    on_dask = walkforward(cfg, folds=2, seeds=1, families=["linear", "lightgbm"], name="dask", resamples=100, dask=True)
    for path in sorted((serial.folder / "folds").glob("*.npz")):
        a, b = load_fold(path), load_fold(on_dask.folder / "folds" / path.name)
        np.testing.assert_array_equal(a["ends"], b["ends"])
        np.testing.assert_allclose(a["probs"], b["probs"], rtol=1e-6)
    assert on_dask.summary["table"]["linear"]["balanced_accuracy_mean"] == pytest.approx(
        serial.summary["table"]["linear"]["balanced_accuracy_mean"]
    )


@pytest.mark.integration
@pytest.mark.extended
def test_walkforward_refits_each_fold_on_training_and_validation(tiny_config):
    """--refit: every fold's family is trained again on its training and validation windows with
    the settings it chose, and that model predicts the fold's test period."""
    from candleflow.studies.common import load_fold
    from candleflow.studies.walkforward import walkforward

    plain = walkforward(tiny_config("source.n_bars=4000"), folds=2, families=["lightgbm", "mlp"], name="plain")
    refit = walkforward(
        tiny_config("source.n_bars=4000", "training.refit=true"), folds=2, families=["lightgbm", "mlp"], name="refit"
    )
    splits = plain.summary["folds"]
    for family in ("lightgbm", "mlp"):
        for k in range(2):
            a = load_fold(plain.folder / "folds" / f"{family}-s42-f{k}.npz")
            b = load_fold(refit.folder / "folds" / f"{family}-s42-f{k}.npz")
            assert np.array_equal(a["ends"], b["ends"]) and np.array_equal(a["y"], b["y"])  # the same test windows
            assert "refit_windows" not in a
            windows = splits[k]["train"] + splits[k]["val"]
            assert b["refit_windows"] == -(-windows // 2)  # every train_stride-th (2) of train + validation
            assert b["refit_epochs"] >= 1
            assert not np.allclose(a["probs"], b["probs"])  # another model predicted them
    assert set(refit.summary["table"]) == {"lightgbm", "mlp"}
