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
from candleflow.config import LAYOUTS, RunConfig, layout_rules
from candleflow.dataset.labels import CLASS_NAMES
from candleflow.dataset.targets import target
from candleflow.fs.digest import sha256_file
from candleflow.models import files
from candleflow.models.families import family
from candleflow.models.fitting import Trained
from candleflow.runs.folder import METADATA_VERSION, RunFolder, upgrade_metadata
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
    rules = layout_rules(layout)  # an unknown layout: a one-line error naming those that exist
    folder = RunFolder(work)
    folder.write_metrics(metrics)
    if predictions is not None:
        folder.write_predictions(predictions)
    if report_data is not None:
        folder.write_report_data(report_data)
    kind = cfg.model.kind if rules.family else None  # the reward model is one network, no family
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


def training_record(trained: Trained, cfg: RunConfig, replicas: int) -> dict[str, Any]:
    """How a classifier was trained, for metadata.json: input, memory, batch, epochs, timing."""
    fitted, model = trained.fitted, trained.model
    return {
        "input_shape": list(trained.input_shape),
        **({"lags": list(model.lags)} if hasattr(model, "lags") else {}),
        **target_record(cfg),
        "fit_seconds": round(trained.fit_seconds, 1),
        "memory_estimate": trained.estimate,
        "batch_size": fitted.get("batch_size", cfg.dataset.batch_size),
        "replicas": replicas,
        "measured_training_mb": None if fitted["training_mb"] is None else round(fitted["training_mb"], 1),
        "peak_rss_mb": round(fitted["peak_rss_mb"], 1),
        "epochs_run": fitted["epochs_run"],
        "resumed_from_epoch": fitted["resumed_from_epoch"],
        "batch_shrinks": fitted.get("batch_shrinks", []),
    }


def target_record(cfg: RunConfig) -> dict[str, Any]:
    """What metadata.json says of the target: its name and task always, its units (a regression)
    or its classes."""
    spec = target(cfg.labels.kind)
    out: dict[str, Any] = {"target": spec.name, "target_task": spec.task}
    return out | ({"target_units": spec.units} if spec.regress else {"classes": list(CLASS_NAMES)})


def headline(cfg: RunConfig, metrics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The figures per period that `models list` shows, by the target's task (HEADLINES)."""
    return {part: HEADLINES[cfg.labels.task](m) for part, m in metrics.items()}


def _forecast_headline(m: dict[str, Any]) -> dict[str, Any]:
    return {
        "r2": m["table"]["model"]["r2"],
        "ic": m["table"]["model"]["ic"],
        "best_baseline": m["best_baseline"],
        "gain_r2": m["gain_r2"],
        **cross_section_headline(m),
    }


def _decision_headline(m: dict[str, Any]) -> dict[str, Any]:
    return {
        "balanced_accuracy": m["table"]["model"]["balanced_accuracy"],
        "accuracy": m["table"]["model"]["accuracy"],
        "macro_f1": m["table"]["model"]["macro_f1"],
        "edge_balanced_accuracy": m["edge_balanced_accuracy"],
        **({"edge_over_reference": m["edge_over_reference"]} if "edge_over_reference" in m else {}),
        **({"long_short_sharpe": m["cross_section"]["model"]["sharpe"]} if "cross_section" in m else {}),
    }


HEADLINES = {"classify": _decision_headline, "regress": _forecast_headline}


def cross_section_headline(m: dict[str, Any]) -> dict[str, Any]:
    """A pooled run's cross-section figures for `models list`: the model's daily rank IC and the
    best cross-section baseline's."""
    cs = m.get("cross_section")
    if not cs:
        return {}
    best = cs["best_baseline"]
    return {
        "rank_ic_cross_section": cs["table"]["model"]["rank_ic"],
        "best_cross_section_baseline": best,
        "best_cross_section_rank_ic": cs["table"][best]["rank_ic"],
    }


__all__ = [
    "LAYOUTS",
    "METADATA_VERSION",
    "cross_section_headline",
    "headline",
    "target_record",
    "training_record",
    "upgrade_metadata",
    "versions",
    "write_run",
]
