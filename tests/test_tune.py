"""Walk-forward folds and `candleflow tune` (Optuna in SQLite, stopped and continued)."""

import csv

import numpy as np
import pytest
from typer.testing import CliRunner

from candleflow.cli import app
from candleflow.config import SearchParam, load_config
from candleflow.dataset.split import walk_forward_folds
from candleflow.errors import ConfigError
from candleflow.studies.tune import apply_params, tune
from conftest import TINY


def test_walk_forward_folds_expand_and_purge():
    ends = np.arange(100, 400)
    t1 = np.full(500, -1)
    t1[ends] = ends + 5  # every label looks 5 bars ahead
    folds = walk_forward_folds(ends, t1, n_folds=3, embargo=2)
    assert len(folds) == 3
    for k, f in enumerate(folds):
        val_start = f.starts["val"]
        assert f["val"].size == 75 and ends[f["val"][0]] == val_start
        assert np.all(t1[ends[f["train"]]] + 2 < val_start)  # nothing in training sees validation
        assert f.purged["train"] == 7  # labels ending 5 bars ahead plus 2 bars of embargo
        assert f["train"].size == 75 * (k + 1) - 7
    assert folds[1]["train"][-1] > folds[0]["val"][0]  # the training period expands
    with pytest.raises(ValueError, match="too few"):
        walk_forward_folds(ends[:5], t1, n_folds=3)


def test_apply_params_names_bad_keys():
    cfg = load_config(None)
    assert apply_params(cfg, {"model.lstm_units": [8, 4]}).model.lstm_units == [8, 4]
    with pytest.raises(ConfigError, match="model.nope"):
        apply_params(cfg, {"model.nope": 1})


SMALL = [*TINY, "source.n_bars=2500", "tune.folds=2"]


@pytest.mark.extended
@pytest.mark.integration
def test_tune_runs_continues_and_writes_best_config(tmp_path):
    cfg = load_config(None, SMALL + [f"output.runs_dir={tmp_path}"])
    space = {
        "training.learning_rate": SearchParam(low=1e-4, high=1e-2, log=True),
        "model.lstm_units": SearchParam(choices=[[8], [16, 8]]),
    }
    first = tune(cfg, "t", trials=2, space=space)
    folder = tmp_path / "tune-t"
    assert first.folder == folder and (folder / "study.db").is_file()
    rows = list(csv.DictReader((folder / "trials.csv").open()))
    assert len(rows) == 2 and all(len(r["fold_scores"].split()) == 2 for r in rows if r["state"] == "complete")
    again = tune(cfg, "t", trials=3, space=space)  # continues: one more trial, not three
    assert len(again.trials) == 3
    best = load_config(folder / "best.yaml")
    assert best.training.learning_rate == pytest.approx(again.best_params["training.learning_rate"])
    assert best.model.lstm_units == again.best_params["model.lstm_units"]
    assert (folder / "best.yaml").read_text().startswith("# best of")


def test_tune_cli_rejects_bad_space(tmp_path):
    result = CliRunner().invoke(
        app, ["tune", "--set", f"output.runs_dir={tmp_path}", "-p", "model.nope={low: 1, high: 2}"]
    )
    assert result.exit_code != 0
    assert "tune space 'model.nope'" in str(result.exception) or "model.nope" in result.output


@pytest.mark.integration
@pytest.mark.parametrize("balanced", [False, pytest.param(True, marks=pytest.mark.extended)])
def test_a_tune_fold_scores_exactly_what_run_scores(tiny_config, balanced):
    """tune and run share one training path: a fold equal to the run's split gives the run's score,
    with class weights (balanced off) and with class-balanced batches (balanced on)."""
    from candleflow.dataset.prepare import prepare
    from candleflow.pipeline import run
    from candleflow.studies.tune import score_fold

    cfg = tiny_config(
        f"dataset.balanced={str(balanced).lower()}", "source.n_bars=2500", "evaluation.reference_models=[]"
    )
    result = run(cfg)
    prep = prepare(cfg)
    assert score_fold(cfg, prep, prep.split) == result.metrics["val"]["table"]["model"]["balanced_accuracy"]


def test_parse_search_param_names_the_bad_item():
    from candleflow.studies.tune import parse_search_param

    key, spec = parse_search_param("training.learning_rate={low: 1e-4, high: 1e-2, log: true}")
    assert key == "training.learning_rate" and spec.log and spec.low == 1e-4
    with pytest.raises(ConfigError, match="--param 'x=\\{low: 2, high: 1\\}'"):
        parse_search_param("x={low: 2, high: 1}")


@pytest.mark.integration
@pytest.mark.parametrize(
    "objective,extra",
    [("sharpe", ["model.kind=linear"]), ("r2", ["model.kind=lightgbm", "labels.kind=volatility"])],
)
def test_a_tune_fold_scores_the_objective_the_run_reports(tiny_config, objective, extra):
    """tune.objective sharpe scores the fold's validation decisions traded as the run's backtest
    trades them; r2 scores a regression target as the run's table does."""
    from candleflow.dataset.prepare import prepare
    from candleflow.pipeline import run
    from candleflow.studies.tune import score_fold

    cfg = tiny_config("source.n_bars=2500", f"tune.objective={objective}", "evaluation.reference_models=[]", *extra)
    result = run(cfg)
    prep = prepare(cfg)
    val = result.metrics["val"]
    want = val["trading"]["table"]["model"]["sharpe"] if objective == "sharpe" else val["table"]["model"]["r2"]
    assert score_fold(cfg, prep, prep.split) == pytest.approx(want)


def test_a_tune_objective_that_does_not_fit_the_target_is_refused():
    with pytest.raises(ConfigError, match="tune.objective sharpe scores decisions"):
        load_config(None, ["labels.kind=volatility", "tune.objective=sharpe"])
    with pytest.raises(ConfigError, match="tune.objective ic scores a regression target"):
        load_config(None, ["tune.objective=ic"])
