"""The one training path: the configured model and its loader, fitted on a training part and
scored on the evaluated parts against the baselines. `run`, `train --resume`, the universe run
and every `tune` fold call `train_and_score`, so a study scores exactly the procedure a run uses."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from candleflow.config import RunConfig
from candleflow.dataset.prepare import PreparedData
from candleflow.dataset.sampling import class_weights
from candleflow.dataset.windows import Windows
from candleflow.errors import ConfigError
from candleflow.models.families import family, names
from candleflow.models.scoring import permutation_score, score
from candleflow.models.training_set import TrainingSet, training_set

log = logging.getLogger("candleflow")

# (train dataset) -> (compiled model, loader factory (dataset, batch_size, ...) -> PyDataset)
ModelAndLoader = Callable[[Any], tuple[Any, Callable[..., Any]]]


@dataclass
class Trained:
    """What training and scoring leave for the run folder: the model, its fit, and per evaluated
    part the windows, true labels and predicted probabilities, and the metrics."""

    model: Any
    fitted: dict[str, Any]
    fit_seconds: float
    estimate: dict[str, float]
    scored: dict[str, tuple[Any, np.ndarray, np.ndarray]]
    metrics: dict[str, Any]
    input_shape: tuple[int, ...]
    baselines: dict[str, np.ndarray] = field(default_factory=dict)  # a regression's baseline to beat, per part
    references: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # {kind: {part: outputs}}


def model_and_loader(
    cfg: RunConfig, prep: PreparedData | None, state: dict[str, Any] | None = None
) -> Callable[[Any], tuple[Any, Callable[..., Any], tuple]]:
    """A function of the training windows giving the configured family's model (or the one saved
    with a resume state), a loader factory over the same windows, and the model's input shape."""
    fam = family(cfg.model.kind)
    return lambda train_ds: fam.network(cfg, train_ds, prep, state)


def fit_tabular(kind: str, cfg: RunConfig, ts: TrainingSet) -> Any:
    """A tabular family (LightGBM, the linear model, ...) on the training windows' lagged rows, with the same labels
    (shuffled for a control run) and class weights as the deep model; balanced sampling becomes
    balanced weights."""
    w = class_weights(ts.y) if ts.weights is None and cfg.dataset.balanced else ts.weights
    sample_w = None if w is None else w[ts.y]
    fit = family(kind).fit
    assert fit is not None  # the registry requires it of tabular families
    rows = ts.rows
    return fit(
        cfg.model, cfg.training.seed, rows.of(ts.train), ts.y, sample_w, rows.of(ts.val), ts.val.labels_at(), rows.lags
    )


def seed_everything(seed: int, network: bool = True) -> None:
    """Python's, NumPy's and (for a network) the backend's generators seeded, so a run repeats;
    a tabular run seeds without loading Keras."""
    if network:
        from candleflow.models.backend import keras

        keras.utils.set_random_seed(seed)
    else:
        import random

        random.seed(seed)
        np.random.seed(seed)  # noqa: NPY002 - what keras.utils.set_random_seed seeds too


def train_and_score(
    cfg: RunConfig,
    work: Path,
    ds: Windows,
    parts: Mapping[str, np.ndarray],
    make: Callable[[Any], tuple[Any, Callable[..., Any], tuple]],
    state: dict[str, Any] | None = None,
    callbacks: list | None = None,
    replicas: int = 1,
    references: bool = True,
    candles: Any = None,
) -> Trained:
    """Seed, build, fit on `parts['train']` (every `train_stride`-th window; class weights or
    balanced batches as configured), then score 'val' [and 'test'] against the baselines and,
    with `references`, against `evaluation.reference_models` fitted on the same windows.
    Checkpoints and logs go to `work`. `candles` (one series') lets `decision_margin: auto`
    maximise the validation backtest (`evaluation.margin_objective`)."""
    tabular = family(cfg.model.kind).tabular
    seed_everything(cfg.training.seed, network=not tabular)
    ts = training_set(cfg, ds, parts)
    importance: dict[str, Any] = {}
    refs = _references(cfg, ts, importance) if references else {}
    if tabular:
        trained = _train_and_score_tabular(cfg, ts, refs, candles)
        _note_importance(trained.model, cfg, ts.train, importance)
    else:
        from candleflow.models.network_fit import fit_network, sized_model

        auto = cfg.dataset.batch_size == "auto"
        cfg, model, loader, input_shape, estimate = sized_model(cfg, make, ts, state)
        t_fit = time.perf_counter()
        cfg, fitted = fit_network(cfg, model, loader, ts, work, state, callbacks, replicas, auto)
        fit_s = time.perf_counter() - t_fit
        s = score(
            cfg,
            ts,
            refs,
            lambda d: model.predict(loader(d, 1024 * replicas, multiple_of=replicas), verbose=0)[: len(d)],
            candles,
        )
        trained = Trained(model, fitted, fit_s, estimate, s.parts, s.metrics, tuple(input_shape), s.baselines)
    trained.references = refs
    _permutation(cfg, trained, ts.val, candles, importance)
    return _with_importance(trained, importance)


def _with_importance(trained: Trained, importance: dict[str, Any]) -> Trained:
    """Which inputs matter, in each period's metrics (the same figures: they come from training)."""
    if importance:
        for m in trained.metrics.values():
            m["importance"] = importance
    return trained


def _permutation(cfg: RunConfig, trained: Trained, val_ds: Windows, candles: Any, importance: dict[str, Any]) -> None:
    """Permutation importance on validation (`evaluation.permutation_seconds` > 0): each input
    shuffled across the validation windows, the drop in balanced accuracy (classes, at the run's
    decision margin) or R^2 (regression) when the model predicts again."""
    seconds = cfg.evaluation.permutation_seconds
    fam = family(cfg.model.kind)
    if seconds <= 0 or fam.inputs == "images" or val_ds.shape[2] != len(cfg.features.columns):
        return
    from candleflow.evaluation.importance import permutation_importance

    margin = float(trained.metrics.get("val", {}).get("decision_margin", 0.0) or 0.0)
    result = permutation_importance(
        val_ds,
        list(cfg.features.columns),
        lambda ds: fam.probabilities(trained.model, ds, cfg, candles),
        permutation_score(cfg, margin),
        seed=cfg.training.seed,
        seconds=seconds,
    )
    importance["permutation"] = result
    log.info(
        "permutation importance on %d validation windows (%.1fs): %s",
        result["windows"],
        result["seconds"],
        ", ".join(f"{k} {v:+.4f}" for k, v in list(result["drop"].items())[:8]),
    )


def _note_importance(model: Any, cfg: RunConfig, train_ds: Windows, importance: dict[str, Any]) -> None:
    """A LightGBM model's gain per input feature (summed over lags), where the windows have the
    configured features as columns."""
    if hasattr(model, "gain_by_feature") and train_ds.shape[2] == len(cfg.features.columns):
        importance["lightgbm_gain"] = model.gain_by_feature(cfg.features.columns)


def _references(
    cfg: RunConfig, ts: TrainingSet, importance: dict[str, Any] | None = None
) -> dict[str, dict[str, np.ndarray]]:
    """{reference kind: {part: probabilities}} for every reference model other than the model's own kind."""
    out: dict[str, dict[str, np.ndarray]] = {}
    others: dict[str, None] = dict.fromkeys(cfg.evaluation.reference_models)
    others.pop(cfg.model.kind, None)  # the model's own family is the model, not a reference
    for kind in others:
        if not family(kind).tabular:
            raise ConfigError(
                f"evaluation.reference_models: {kind} is not a tabular family; references: "
                f"{', '.join(names(tabular=True))}"
            )
        t0 = time.perf_counter()
        ref = fit_tabular(kind, cfg, ts)
        out[kind] = {p: ref.predict_proba(ts.rows.of(d)) for p, d in ts.eval_parts.items()}
        if importance is not None:
            _note_importance(ref, cfg, ts.train, importance)
        log.info("reference model %s: %s; fitted in %.1fs", kind, ref.summary(), time.perf_counter() - t0)
    return out


def _train_and_score_tabular(
    cfg: RunConfig, ts: TrainingSet, refs: dict[str, dict[str, np.ndarray]], candles: Any = None
) -> Trained:
    """The tabular families through the same split, labels, weights, decisions and metrics."""
    import psutil

    rows, train_ds, val_ds = ts.rows, ts.train, ts.val
    log.info(
        "training %s on %d windows (lags %s), validating on %d", cfg.model.kind, len(train_ds), rows.lags, len(val_ds)
    )
    t_fit = time.perf_counter()
    model = fit_tabular(cfg.model.kind, cfg, ts)
    fit_s = time.perf_counter() - t_fit
    log.info("%s fitted in %.1fs: %s", cfg.model.kind, fit_s, model.summary())
    rounds = getattr(model, "rounds", 0)
    fitted = {
        "history": {},
        "epochs_run": int(rounds),
        "peak_rss_mb": psutil.Process().memory_info().rss / 2**20,
        "training_mb": None,
        "resumed_from_epoch": None,
    }
    s = score(cfg, ts, refs, lambda d: model.predict_proba(rows.of(d)), candles)
    return Trained(model, fitted, fit_s, {}, s.parts, s.metrics, (len(rows.lags) * train_ds.shape[2],), s.baselines)
