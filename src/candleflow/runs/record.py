"""One run record: every kind of run (one series, a universe, a panel, a reward model) writes its
folder through `write_run`, with one metadata schema. The schema is versioned
(`metadata_version`); `upgrade_metadata` reads folders written before it into the same shape."""

from __future__ import annotations

import datetime as dt
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from candleflow._version import __version__
from candleflow.config import RunConfig
from candleflow.fs.digest import sha256_file
from candleflow.models import files
from candleflow.models.families import family
from candleflow.runs.folder import LAYOUTS, METADATA_VERSION, RunFolder, upgrade_metadata
from candleflow.runs.registry import save_model


def write_run(
    work: Path,
    cfg: RunConfig,
    name: str,
    started: dt.datetime,
    t0: float,
    *,
    layout: str,
    model: Any,
    metrics: dict[str, Any],
    headline: dict[str, dict[str, Any]],
    data: dict[str, Any],
    identity: dict[str, Any],
    training: dict[str, Any],
    predictions: dict[str, dict[str, np.ndarray]] | None = None,
    report_data: dict[str, dict[str, np.ndarray]] | None = None,
) -> dict[str, Any]:
    """Write a trained run's files into its (hidden, still being assembled) folder: metrics, the
    predictions and what the report draws where the run has them, the model in its family's
    format, data.json, and metadata.json last. Returns the metadata.

    `headline` is the few figures per period `models list` shows; `identity` says which data
    (symbol, interval, data_fingerprint, feature_names, series or tickers); `training` how the
    model was trained (input_shape, fit_seconds, epochs_run, peak_rss_mb, ...)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    folder = RunFolder(work)
    folder.write_metrics(metrics)
    if predictions is not None:
        folder.write_predictions(predictions)
    if report_data is not None:
        folder.write_report_data(report_data)
    kind = None if layout == "reward" else cfg.model.kind  # the reward model is one network, no family
    save_model(model, work, kind)
    model_name = files.KERAS_MODEL if kind is None else family(kind).model_file
    folder.write_data(data)
    metadata = {
        "metadata_version": METADATA_VERSION,
        "run": name,
        "task": cfg.task,
        "layout": layout,
        "created": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - t0, 1),
        "versions": versions(network=kind is None or not family(kind).tabular),
        **identity,
        "model_kind": kind or "reward",
        "parameters": int(model.count_params()),
        **training,
        **({"output_shape": list(model.output_shape[1:])} if hasattr(model, "output_shape") else {}),
        # what predict, export and models check the folder's model against (runs/registry.check_run)
        "model_file": _model_file(work / model_name, identity.get("feature_names")),
        "metrics": headline,
        "tags": list(cfg.output.tags),
        "notes": cfg.output.notes,
    }
    folder.write_metadata(metadata)
    return metadata


def _model_file(path: Path, feature_names: Any) -> dict[str, str]:
    """The model file's name and digest, and the digest binding it to the features' order."""
    from candleflow.fs.digest import binding

    digest = sha256_file(path)
    return {"name": path.name, "sha256": digest, "binding": binding(digest, feature_names)}


def versions(network: bool = True) -> dict[str, str]:
    """Versions of candleflow and what it trains with, for metadata.json: Keras and its backend
    where a network trained (a tabular run never loads them)."""
    out = {"candleflow": __version__, "python": platform.python_version(), "numpy": np.__version__}
    if network:
        from candleflow.models.backend import keras

        out["keras"] = keras.__version__
        out["backend"] = keras.backend.backend()
        try:
            import jax

            out["jax"] = jax.__version__
        except ImportError:
            pass
        if out["backend"] == "torch":
            import torch

            out["torch"] = torch.__version__
    from importlib.metadata import PackageNotFoundError, version

    for package in ("lightgbm", "scikit-learn"):  # the tree and linear families, and every run's references
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            pass
    return out


__all__ = ["LAYOUTS", "METADATA_VERSION", "upgrade_metadata", "versions", "write_run"]
