"""Decisions a trader can act on: no silent all-HOLD, a margin chosen on validation, a verdict
with an interval, and predict that may change how decisions are made (never the features)."""

from __future__ import annotations

import numpy as np
import pytest

from candleflow.evaluation.bootstrap import balanced_accuracy_resampled, block_indices
from candleflow.evaluation.metrics import choose_margin, decision_warnings, evaluate
from candleflow.runs.verdict import classifier_verdict


def test_a_constant_model_is_called_constant():
    probs = np.tile([0.3, 0.4, 0.3], (500, 1)) + np.random.default_rng(0).normal(0, 1e-4, (500, 3))
    (line,) = decision_warnings("the model", probs, 0.05)
    assert line.startswith("the model decides HOLD on 100.0% of 500 windows") and "barely move" in line


def test_a_margin_wider_than_the_models_lead_is_named_as_the_cause():
    rng = np.random.default_rng(1)
    lead = rng.uniform(0, 0.03, 1000)  # the winner beats the runner-up by 0..3 points
    winner = rng.integers(0, 3, 1000)
    probs = np.full((1000, 3), 0.3)
    probs[np.arange(1000), winner] += lead
    probs[np.arange(1000), (winner + 1) % 3] = 0.3
    probs /= probs.sum(axis=1, keepdims=True)
    probs += rng.normal(0, 0.02, (1000, 1)) * np.array([1, -1, 0])  # enough movement not to be constant
    probs = np.clip(probs, 1e-3, 1)
    probs /= probs.sum(axis=1, keepdims=True)
    lines = decision_warnings("the model", probs, 0.2)
    assert len(lines) == 1 and "decision_margin 0.2 is wider than the model's lead" in lines[0]
    assert decision_warnings("the model", probs, 0.0) == []  # the argmax spreads over the classes


def test_a_small_period_is_flagged_and_evaluate_carries_the_warnings():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 150)
    probs = rng.dirichlet([1, 1, 1], 150)
    m = evaluate(y, probs, y, 0.0, block=24)
    assert m["warnings"] == ["only 150 windows in this period (under 200): its figures are noisy"]
    lo, hi = m["edge_ci95"]
    assert lo < m["edge_balanced_accuracy"] < hi  # random probabilities: an interval around a noisy edge


def test_choose_margin_by_hand():
    # three windows; at margin 0 all three are right, at 0.1 the close call (lead 0.05) becomes HOLD
    y = np.array([0, 2, 2])
    probs = np.array([[0.6, 0.2, 0.2], [0.1, 0.2, 0.7], [0.3, 0.3, 0.4]])
    margin, scores = choose_margin(y, probs, (0.0, 0.05, 0.2))
    assert scores == {"0.0": 1.0, "0.05": 1.0, "0.2": 0.75}
    assert margin == 0.05  # a tie goes to the larger, more cautious margin


def test_block_bootstrap_resamples_whole_blocks():
    idx = block_indices(10, 4, 3, np.random.default_rng(0))
    assert idx.shape == (3, 10)
    for row in idx:
        for k in (0, 4):  # each block is a run of consecutive windows
            assert (np.diff(row[k : k + 4]) == 1).all()
    y = np.array([0, 1, 2, 0, 1, 2])
    full = balanced_accuracy_resampled(y, y, np.arange(6)[None, :])
    assert full.tolist() == [1.0]


def test_the_verdict_reads_the_intervals():
    m = {
        "table": {"model": {"balanced_accuracy": 0.45}},
        "edge_balanced_accuracy": 0.11,
        "edge_ci95": [0.08, 0.14],
        "edge_over_reference": -0.02,
        "edge_over_reference_ci95": [-0.05, 0.01],
        "best_reference": "lightgbm",
        "warnings": ["x"],
    }
    line = classifier_verdict({"val": m})
    assert line == (
        "val: balanced accuracy 0.4500; the model beats the best naive baseline: +11.0 points (95% CI [+8.0, "
        "+14.0]); it is not distinguishable from lightgbm: -2.0 points (95% CI [-5.0, +1.0]) (1 warning below)"
    )
    m["edge_ci95"] = [-0.04, -0.01]
    assert "loses to the best naive baseline" in classifier_verdict({"val": m, "test": m})


@pytest.mark.integration
def test_margin_auto_is_chosen_on_validation_written_and_predict_may_change_it(tiny_config):
    import yaml

    import candleflow as cf
    from candleflow.data.load import load_candles
    from candleflow.errors import ConfigError
    from candleflow.runs.predict import Predictor

    cfg = tiny_config(
        "evaluation.decision_margin=auto", "model.kind=lightgbm", "evaluation.reference_models=[]", "output.report=true"
    )
    result = cf.run(cfg)
    val = result.metrics["val"]
    scores = val["decision_margin_auto"]["scores"]
    chosen = val["decision_margin"]
    assert scores[str(chosen)] == max(scores.values()) == val["table"]["model"]["balanced_accuracy"]
    written = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert written["evaluation"]["decision_margin"] == chosen
    assert "warnings" in val and "edge_ci95" in val
    page = (result.run_dir / "report.html").read_text()
    assert "class='verdict'" in page

    predictor = Predictor.from_run(result.run_dir)
    wide = predictor.source_config(["evaluation.decision_margin=0.9"])
    assert wide.evaluation.decision_margin == 0.9 and wide.features == predictor.config.features
    table, _ = predictor.predict_source(wide)
    assert set(table.column("decision").to_pylist()) == {"HOLD"}  # nothing beats the runner-up by 0.9
    candles, _ = load_candles(cfg.source, cfg.validation)
    own = predictor.predict(candles)  # the run's own rule: the margin auto chose
    assert len(set(own.column("decision").to_pylist())) > 1
    with pytest.raises(ConfigError, match="auto is chosen on a run's validation period"):
        predictor.source_config(["evaluation.decision_margin=auto"])
    with pytest.raises(ConfigError, match="only source, evaluation and backtest keys may change"):
        predictor.source_config(["labels.horizon=5"])


@pytest.mark.integration
def test_margin_auto_can_maximise_the_validation_backtest(tiny_config):
    """margin_objective sharpe: each candidate margin's decisions are traded on the validation
    period and the best Sharpe wins; the scores are those of the backtest itself."""
    import candleflow as cf
    from candleflow.dataset.prepare import prepare
    from candleflow.evaluation.metrics import decide
    from candleflow.evaluation.trading import trade_score

    cfg = tiny_config(
        "evaluation.decision_margin=auto",
        "evaluation.margin_objective=sharpe",
        "model.kind=linear",
        "evaluation.reference_models=[]",
    )
    result = cf.run(cfg)
    auto = result.metrics["val"]["decision_margin_auto"]
    assert auto["objective"] == "sharpe on val"
    chosen = result.metrics["val"]["decision_margin"]
    assert auto["scores"][str(chosen)] == max(auto["scores"].values())
    with np.load(result.run_dir / "predictions.npz", allow_pickle=False) as z:
        ends, probs = z["val_ends"], z["val_probs"]
    prep = prepare(cfg)
    for m, score in auto["scores"].items():
        assert score == pytest.approx(trade_score(prep.candles, ends, decide(probs, float(m)), cfg, "sharpe"))
    assert result.metrics["val"]["trading"]["table"]["model"]["sharpe"] == pytest.approx(auto["scores"][str(chosen)])


def test_a_backtest_objective_is_refused_where_there_is_no_single_series():
    from candleflow.config import load_config
    from candleflow.errors import ConfigError

    with pytest.raises(ConfigError, match="margin_objective sharpe backtests one series"):
        load_config(
            None, ["evaluation.decision_margin=auto", "evaluation.margin_objective=sharpe", "dataset.layout=panel"]
        )


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["lightgbm", "mlp"])
def test_refit_trains_the_production_model_on_every_window_and_predict_uses_it(tiny_config, kind):
    """run --refit: the validated model's metrics stay; a second model, trained on every labelled
    window with the validated run's epochs (or rounds), is saved under refit/ with its digest;
    predict uses it by default (saying so) and the validated one on request."""
    import candleflow as cf
    from candleflow.data.load import load_candles
    from candleflow.errors import RegistryError
    from candleflow.models.refit import best_epochs
    from candleflow.runs.predict import Predictor

    cfg = tiny_config(
        f"model.kind={kind}", "training.refit=true", "training.epochs=3", "evaluation.reference_models=[]"
    )
    result = cf.run(cfg)
    refit = result.metadata["refit"]
    prep_windows = sum(v["windows"] for v in cf.prepare(cfg).split.summary().values())
    assert refit["windows"] == -(-prep_windows // cfg.dataset.train_stride)  # every labelled window, strided
    assert (result.run_dir / refit["model_file"]["name"]).is_file()
    if kind == "mlp":
        hist = result.metadata
        assert refit["epochs"] == best_epochs(
            {"val_loss": [float(x) for x in _history(result.run_dir)["val_loss"]]}, "val_loss", hist["epochs_run"]
        )
    else:
        assert refit["rounds"] >= 1
    candles, _ = load_candles(cfg.source, cfg.validation)
    prod, val = Predictor.from_run(result.run_dir), Predictor.from_run(result.run_dir, model="validated")
    assert (
        prod.which == "refit" and prod.model_used.startswith("the refit model (trained on") and val.which == "validated"
    )
    a, b = prod.predict(candles), val.predict(candles)
    assert not np.allclose(a.column("prob_long").to_numpy(), b.column("prob_long").to_numpy())
    with np.load(result.run_dir / "predictions.npz", allow_pickle=False) as z:  # the validated model is the scored one
        rows = np.searchsorted(
            b.column("open_time").to_numpy(), candles.open_time[z["val_ends"]].astype("datetime64[ns]")
        )
        np.testing.assert_allclose(b.column("prob_long").to_numpy()[rows], z["val_probs"][:, 2], rtol=1e-5, atol=1e-6)
    _refit_file_is_what_is_hashed_and_its_shapes_are_checked(result.run_dir, kind)
    (result.run_dir / refit["model_file"]["name"]).write_bytes(b"tampered")
    with pytest.raises(RegistryError, match="does not match the sha256"):
        Predictor.from_run(result.run_dir)


def _refit_file_is_what_is_hashed_and_its_shapes_are_checked(run_dir, kind):
    """Issue 42: metadata.json naming a decoy file (with the decoy's digest) is refused, since the
    family loads refit/<its own file>; another model's file with its digest recorded is refused
    on its input shape, as the validated model is."""
    import json
    import shutil

    from candleflow.errors import RegistryError
    from candleflow.fs.digest import sha256_file
    from candleflow.runs.registry import load_model

    meta_path = run_dir / "metadata.json"
    original = meta_path.read_text()
    meta = json.loads(original)
    real = run_dir / meta["refit"]["model_file"]["name"]
    decoy = real.with_name("decoy" + real.suffix)
    shutil.copy(real, decoy)
    meta["refit"]["model_file"] = {"name": f"refit/{decoy.name}", "sha256": sha256_file(decoy)}
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(RegistryError, match=rf"refit model file is 'refit/{decoy.name}'; a {kind} run's is 'refit/"):
        load_model(run_dir)
    decoy.unlink()
    if kind == "mlp":
        from candleflow.models.backend import keras

        saved = real.read_bytes()
        other = keras.Sequential([keras.Input((5, 3)), keras.layers.Flatten(), keras.layers.Dense(3)])
        other.save(real)
        meta["refit"]["model_file"] = {"name": f"refit/{real.name}", "sha256": sha256_file(real)}
        meta_path.write_text(json.dumps(meta))
        with pytest.raises(RegistryError, match=r"refit: model input shape \(5, 3\) does not match the run's metadata"):
            load_model(run_dir)
        real.write_bytes(saved)
    meta_path.write_text(original)


def _history(run_dir):
    import csv

    with open(run_dir / "history.csv") as fh:
        rows = list(csv.DictReader(fh))
    return {k: [r[k] for r in rows] for k in rows[0]}
