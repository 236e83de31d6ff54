"""A run's model logged to MLflow in its own flavour (Keras or LightGBM) with a signature and an
input example, so MLflow's registry, `mlflow.pyfunc.load_model` and `mlflow models serve` can
use a candleflow run. The model takes what the run's model itself takes: the lagged rows of a
tabular family, the windows (n, window, features) of a network: `Predictor.windows` cuts the
windows from candles as the run cut its own, `Family.model_inputs` turns them into those inputs."""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("candleflow")
EXAMPLE_WINDOWS = 32  # the newest windows of the run's own source: the signature's and the example's rows
MODEL_PATH = "model"  # the MLflow model's name in the run: runs:/<id>/model


def _pins(*packages: str) -> list[str]:
    """The serving environment's requirements, stated (MLflow's inference re-imports the model
    in a child process, slow and fragile for a Keras model over JAX)."""
    out = []
    for p in packages:
        try:
            out.append(f"{p}=={version(p)}")
        except PackageNotFoundError:
            pass
    return out


def example_inputs(run_dir: Path, n: int = EXAMPLE_WINDOWS) -> tuple[Any, np.ndarray, np.ndarray] | None:
    """The run's predictor, its model's inputs for the newest `n` windows of the run's own
    source and its outputs for them; None for a layout whose inputs span many series."""
    from candleflow.data.load import load_candles
    from candleflow.runs.predict import Predictor

    pred = Predictor.from_run(run_dir, model="validated")
    if pred.layout_rules.across_assets or not pred.layout_rules.family:  # inputs span many series
        return None
    cfg = pred.config
    candles, _ = load_candles(cfg.source, cfg.validation, cfg.cache)
    ds, _ = pred.windows(candles)
    newest = ds.subset(np.arange(max(0, len(ds) - n), len(ds)))
    return (
        pred,
        pred.family.model_inputs(pred.model, newest),
        pred.family.probabilities(pred.model, newest, cfg, candles),
    )


def log_run_model(tracking_uri: str, run_id: str, run_dir: Path) -> str | None:
    """Log the run folder's validated model into the MLflow run `run_id` as `runs:/<id>/model`,
    with its signature and an input example; returns its URI, or None (said in the log) where
    the family has no flavour that keeps it without pickle or the layout is not one series."""
    example = example_inputs(Path(run_dir))
    if example is None:
        log.info("MLflow: the model of a universe or panel run is not logged as an MLflow model (its files are)")
        return None
    pred, x, y = example
    native = pred.family.mlflow_model(pred.model)
    if native is None:
        log.info(
            "MLflow: %s has no MLflow flavour without pickle; its model file is logged as a file", pred.family.name
        )
        return None
    import mlflow
    from mlflow.models import infer_signature

    flavour, obj = native
    signature = infer_signature(x, np.asarray(y))
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    try:
        with mlflow.start_run(run_id=run_id):
            if flavour == "lightgbm":
                import mlflow.lightgbm

                mlflow.lightgbm.log_model(
                    obj, name=MODEL_PATH, signature=signature, input_example=x[:5], pip_requirements=_pins("lightgbm")
                )
            elif flavour == "keras":
                import mlflow.keras

                mlflow.keras.log_model(
                    obj,
                    name=MODEL_PATH,
                    signature=signature,  # no input example: MLflow 3's keras flavour fails to write a 3-d one
                    pip_requirements=_pins("keras", "jax", "jaxlib", "candleflow"),
                )
            else:
                raise ValueError(f"MLflow flavour {flavour!r}: candleflow logs keras or lightgbm")
    finally:
        mlflow.set_tracking_uri(previous)
    log.info(
        "MLflow: the %s model logged as runs:/%s/%s (%s flavour, signature %s)",
        pred.family.name,
        run_id,
        MODEL_PATH,
        flavour,
        x.shape[1:],
    )
    return f"runs:/{run_id}/{MODEL_PATH}"


__all__ = ["EXAMPLE_WINDOWS", "MODEL_PATH", "example_inputs", "log_run_model"]
