"""A run's own tags and notes, `models list --tag`, and MLflow tracking against a local file store."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner


@pytest.mark.integration
@pytest.mark.extended
def test_a_run_is_tagged_listed_by_tag_and_logged_to_mlflow(tiny_config, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")  # the test extra installs it (mlflow-skinny)
    from mlflow.tracking import MlflowClient

    import candleflow as cf
    from candleflow.cli import app

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"  # the documented store: MLflow 3 wants a database
    cfg = tiny_config(
        "output.name=tagged",
        "output.tags=[baseline,btc]",
        "output.notes=first try, default features",
        f"output.tracking_uri={store}",
        "output.tracking_experiment=tests",
        "evaluation.reference_models=[]",
        "output.report=true",
    )
    result = cf.run(cfg)
    cf.run(tiny_config("output.name=untagged", "evaluation.reference_models=[]"))
    meta = json.loads((result.run_dir / "metadata.json").read_text())
    assert meta["tags"] == ["baseline", "btc"] and meta["notes"] == "first try, default features"
    assert "first try, default features" in (result.run_dir / "report.html").read_text()

    listed = CliRunner().invoke(app, ["models", "list", "--runs-dir", str(tmp_path), "--tag", "btc"])
    assert listed.exit_code == 0, listed.output
    assert "tagged" in listed.output and "untagged" not in listed.output
    none = CliRunner().invoke(app, ["models", "list", "--runs-dir", str(tmp_path), "--tag", "eth"])
    assert "no runs tagged eth" in none.output

    client = MlflowClient(tracking_uri=store)
    exp = client.get_experiment_by_name("tests")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.run_id == result.tracking_id and run.info.run_name == "tagged"
    assert run.data.params["model.kind"] == "lstm" and run.data.params["training.epochs"] == "1"
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    want = metrics["val"]["table"]["model"]["balanced_accuracy"]
    assert run.data.metrics["val.table.model.balanced_accuracy"] == pytest.approx(want)
    assert run.data.tags["mlflow.note.content"] == "first try, default features"
    assert run.data.tags["tag.btc"] == "1" and run.data.tags["candleflow.tags"] == "baseline,btc"
    assert (tmp_path / "mlartifacts").is_dir()  # beside the database, never ./mlruns of the working folder
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "metrics.json", "metadata.json", "report.html"} <= names
    _served_like_the_run(store, result, "keras", (24, 8))


def _served_like_the_run(store, result, flavour, shape):
    """The MLflow model of a run, loaded by mlflow.pyfunc, gives the run's own outputs for the
    newest windows of its source (issue 41: the model itself was not logged)."""
    import mlflow
    import mlflow.pyfunc
    import numpy as np

    from candleflow.runs.mlflow_model import example_inputs

    pred, x, y = example_inputs(result.run_dir)
    if shape is None:  # lagged rows: every feature at each of the run's lags (clipped to its window)
        shape = (len(pred.metadata["feature_names"]) * len(pred.model.lags),)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(store)
    try:
        model = mlflow.pyfunc.load_model(f"runs:/{result.tracking_id}/model")
    finally:
        mlflow.set_tracking_uri(previous)
    assert flavour in model.metadata.flavors
    assert model.metadata.get_input_schema().inputs[0].shape == (-1, *shape)
    np.testing.assert_allclose(np.asarray(model.predict(x)), y, atol=1e-6)


@pytest.mark.integration
def test_a_tree_model_is_logged_to_mlflow_in_its_flavour_and_predicts_as_the_run(tiny_config, tmp_path):
    pytest.importorskip("mlflow")
    import candleflow as cf

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = tiny_config("output.name=gbm", "model.kind=lightgbm", f"output.tracking_uri={store}")
    result = cf.run(cfg)
    assert result.tracking_id
    _served_like_the_run(store, result, "lightgbm", None)


def test_tracking_off_by_default_and_a_failing_server_only_warns(tiny_config, caplog, monkeypatch):
    from candleflow.runs.tracking import numeric_leaves, track

    cfg = tiny_config()
    assert cfg.output.tracking_uri is None and track(cfg, "x", {"a": 1.0}, []) is None
    assert numeric_leaves({"val": {"r2": 0.5, "ok": True, "bad": float("nan"), "rows": [1, {"x": 2}]}}) == {
        "val.r2": 0.5,
        "val.rows.0": 1.0,
        "val.rows.1.x": 2.0,
    }
    pytest.importorskip("mlflow")
    # nothing listens on port 9: one health check, not MLflow's minutes of retries (none configured here)
    down = tiny_config("output.tracking_uri=http://127.0.0.1:9")
    import logging

    with caplog.at_level(logging.WARNING, logger="candleflow"):
        assert track(down, "x", {"a": 1.0}, []) is None
    assert "MLflow tracking at http://127.0.0.1:9 failed" in caplog.text and "the run folder is complete" in caplog.text


def test_a_tracking_uri_is_checked_when_the_config_loads(tiny_config, monkeypatch):
    """Issue 42: any string was accepted as a URI, and the documented file:./mlruns failed with the
    MLflow the tracking extra installs; both are one line at config load."""
    from candleflow.errors import ConfigError

    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with pytest.raises(ConfigError, match="output.tracking_uri.*expected an MLflow tracking URI"):
        tiny_config("output.tracking_uri=not a uri")
    with pytest.raises(ConfigError, match="MLflow 3 refuses its plain-file store; use sqlite:///mlflow.db"):
        tiny_config("output.tracking_uri=file:./mlruns")
    for uri in ("sqlite:///mlflow.db", "http://localhost:5000", "https://mlflow.example.org/", "databricks"):
        assert tiny_config(f"output.tracking_uri={uri}").output.tracking_uri == uri
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    assert tiny_config("output.tracking_uri=file:./mlruns").output.tracking_uri == "file:./mlruns"
