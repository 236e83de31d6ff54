"""Issue 38: targets live in one registry. A target registered from Python runs through `run`,
`walkforward`, `predict` and the report with no edit outside its registration, and every
registered target passes the same checks (as scikit-learn's estimator checks do)."""

import dataclasses

import numpy as np
import pytest

import candleflow as cf
from candleflow.config import LabelConfig
from candleflow.data.load import load_candles
from candleflow.dataset.targets import CONTEXT, Target, make_labels, target, target_names, unregister_target
from candleflow.errors import ConfigError


def next_range(candles, cfg, fine):
    """The log of the next h bars' high over their low (t1 = t + h; none across a gap)."""
    n, h = len(candles), cfg.horizon
    y = np.full(n, np.nan, np.float32)
    t1 = np.full(n, -1, np.int64)
    stop = np.repeat(candles.segments[:, 1], candles.segments[:, 1] - candles.segments[:, 0])
    for t in range(n):
        if t + h < stop[t]:
            y[t] = np.log(candles.high[t + 1 : t + h + 1].max() / candles.low[t + 1 : t + h + 1].min())
            t1[t] = t + h
    return y, t1


RANGE = Target(
    "next_range",
    "regress",
    next_range,
    "the log high-low range of the next horizon bars",
    units="log range",
    baselines=("mean", "persistence", "har", "har_seasonal", "har_rolling"),
)


@pytest.fixture
def range_target():
    cf.register_target(RANGE)
    yield RANGE
    unregister_target(RANGE.name)


@pytest.mark.parametrize("name", ["competitive", "triple_barrier", "fixed_horizon", "forward_return", "volatility"])
def test_every_builtin_target_passes_the_common_checks(name):
    check_target(target(name))


def test_a_registered_target_passes_the_common_checks(range_target):
    assert "next_range" in target_names()
    check_target(range_target)


def market(seed):
    from candleflow.config import SyntheticSource, ValidationPolicy
    from candleflow.data.sources.synthetic import generate_synthetic
    from candleflow.data.validate import validate_candles

    return validate_candles(generate_synthetic(SyntheticSource(n_bars=600, seed=seed)), ValidationPolicy())[0]


def check_target(spec):
    """One label per bar; a label only where its window ends inside the data, after its bar; a
    regression's context has the registry's columns and reads no bar after t (changing the bars
    after t leaves context[t] as it was)."""
    candles = market(3)
    cfg = LabelConfig(kind=spec.name, horizon=6)
    labels, _ = make_labels(candles, cfg)
    n = len(candles)
    assert labels.y.shape == (n,) and labels.t1.shape == (n,)
    has = np.isfinite(labels.y) if spec.regress else labels.y >= 0
    assert has.any() and (labels.t1[has] > np.flatnonzero(has)).all() and (labels.t1[has] < n).all()
    assert (labels.t1[~has] == -1).all()
    if not spec.regress:
        assert labels.context is None
        return
    assert labels.context.shape == (n, len(CONTEXT))
    cut = 400
    later = market(4)  # bars after `cut` from another market, rescaled to join at cut's close
    scale = candles.close[cut] / later.close[cut]
    mixed = dataclasses.replace(
        candles,
        **{
            col: np.concatenate([getattr(candles, col)[: cut + 1], getattr(later, col)[cut + 1 :] * scale])
            for col in ("open", "high", "low", "close")
        },
    )
    context, _ = make_labels(mixed, cfg)
    np.testing.assert_array_equal(context.context[: cut + 1], labels.context[: cut + 1])


def test_an_unknown_target_and_a_clash_are_one_line():
    with pytest.raises(ValueError, match="labels.kind 'nope': expected one of competitive"):
        LabelConfig(kind="nope")
    with pytest.raises(ConfigError, match="target 'volatility' exists"):
        cf.register_target(Target("volatility", "regress", next_range))
    with pytest.raises(ConfigError, match="expected lower case"):
        cf.register_target(Target("Bad Name", "regress", next_range))


@pytest.mark.integration
def test_a_registered_target_runs_walks_forward_predicts_and_reports(range_target, tiny_config):
    """No edit outside the registration: run scores it against the baselines it names (R^2
    against the period's mean, MSE ratio with its DM t), the report leads with the verdict,
    predict gives the run's own forecasts and the realised target, walk-forward stitches it."""
    from candleflow.runs.predict import Predictor
    from candleflow.runs.report import build_report
    from candleflow.studies.walkforward import walkforward

    cfg = tiny_config("labels.kind=next_range", "model.kind=lightgbm", "labels.horizon=6", "output.report=true")
    result = cf.run(cfg)
    m = result.metrics["val"]
    assert set(RANGE.baselines) <= set(m["table"]) and m["best_baseline"] in RANGE.baselines
    assert {"r2", "mse_ratio", "dm_t_mse"} <= set(m["table"]["model"]) and "qlike" not in m["table"]["model"]
    # the range of the next bars is predictable from the last ranges (volatility clusters): HAR on
    # the target's own past (the registry's lagged context) explains part of its variance
    assert m["table"]["har"]["r2"] > 0.05 and m["table"]["persistence"]["ic"] > 0.1
    meta = result.metadata
    assert meta["target"] == "next_range" and meta["target_task"] == "regress" and meta["target_units"] == "log range"
    page = build_report(result.run_dir).read_text()
    assert "class='verdict'" in page and m["best_baseline"] in page
    from rich.console import Console

    from candleflow.cli.present import period_table

    shown = Console(width=200, record=True)
    shown.print(period_table(meta, "val", m))  # `models show`: the period's table by the run's target task
    text = shown.export_text()
    assert "target next_range" in text and "har" in text and "balanced" not in text

    candles, _ = load_candles(cfg.source, cfg.validation)
    table = Predictor.from_run(result.run_dir).predict(candles)
    with np.load(result.run_dir / "predictions.npz", allow_pickle=False) as z:
        ends, forecast, y = z["val_ends"], z["val_forecast"], z["val_y"]
    rows = np.searchsorted(table.column("open_time").to_numpy(), candles.open_time[ends].astype("datetime64[ns]"))
    np.testing.assert_allclose(table.column("forecast").to_numpy()[rows], forecast, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(table.column("realised").to_numpy(zero_copy_only=False)[rows], y, rtol=1e-6)
    assert set(table.column("target").to_pylist()) == {"next_range"}

    s = walkforward(cfg, folds=2, families=["linear"], name="range", resamples=100).summary
    assert s["target"] == "next_range" and s["target_task"] == "regress"
    assert set(s["baselines"]) == set(RANGE.baselines) and set(s["confidence_set"]) == {"mse"}
    assert s["table"]["linear"]["against_best"]["mse_ratio"] > 0
