"""How a fitted model's outputs are scored, one scorer per target task (`SCORERS`): a
classifier's decisions against the naive baselines and the reference models (its decision margin
chosen on validation, never on test), a regression's forecasts against the quants' baselines (the
baseline to beat chosen on validation). `train_and_score` calls `score`; nothing else branches on
the task to score a run."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from candleflow.config import RunConfig
from candleflow.dataset.windows import Windows, context_of
from candleflow.errors import ConfigError, DataError
from candleflow.evaluation.baselines import TargetWindows
from candleflow.evaluation.metrics import MarginChoice, classification_metrics, decide, evaluate, resolve_margin
from candleflow.models.training_set import TrainingSet

log = logging.getLogger("candleflow")

References = dict[str, dict[str, np.ndarray]]  # {reference kind: {part: outputs}}


@dataclass(frozen=True)
class Scored:
    """A fitted model scored: per evaluated part its windows, true targets and outputs
    (probabilities, or a regression's forecasts), its metrics (JSON-ready: what metrics.json
    holds), and a regression's baseline-to-beat forecast (empty for classes)."""

    parts: dict[str, tuple[Any, np.ndarray, np.ndarray]]
    metrics: dict[str, Any]
    baselines: dict[str, np.ndarray]


def score(
    cfg: RunConfig,
    ts: TrainingSet,
    refs: References,
    predict: Callable[[Any], np.ndarray],
    candles: Any = None,
) -> Scored:
    """The model's outputs on each evaluated part of `ts`, scored by the target task's scorer.
    `candles` (one series') lets `decision_margin: auto` maximise the validation backtest."""
    outputs = {part: predict(part_ds) for part, part_ds in ts.eval_parts.items()}
    return SCORERS[cfg.labels.task](cfg, ts, outputs, refs, candles)


def _score_classes(
    cfg: RunConfig, ts: TrainingSet, outputs: dict[str, np.ndarray], refs: References, candles: Any
) -> Scored:
    """Each part's decisions at the margin chosen on validation, against the baselines and the
    reference models."""
    choice = _margin(cfg, ts.eval_parts, outputs, candles)
    parts: dict[str, tuple[Any, np.ndarray, np.ndarray]] = {}
    metrics: dict[str, Any] = {}
    for part, part_ds in ts.eval_parts.items():
        y_true = part_ds.labels_at()
        parts[part] = (part_ds, y_true, outputs[part])
        metrics[part] = evaluate(
            y_true,
            outputs[part],
            ts.y,
            choice.margin,
            cfg.training.seed,
            {k: v[part] for k, v in refs.items()},
            block=max(2 * cfg.labels.horizon // max(cfg.dataset.stride, 1), 24),
        )
        if choice.to_json() is not None:
            metrics[part]["decision_margin_auto"] = choice.to_json()
        for line in metrics[part]["warnings"]:
            log.warning("%s period: %s", part, line)
    return Scored(parts, metrics, {})


def _margin(cfg: RunConfig, eval_parts: dict[str, Any], outputs: dict[str, np.ndarray], candles: Any) -> MarginChoice:
    """`evaluation.decision_margin`, with auto chosen on validation (by balanced accuracy, or by
    the validation backtest of one series: `evaluation.margin_objective`)."""
    objective, scorer = cfg.evaluation.margin_objective, None
    if objective != "balanced_accuracy" and cfg.evaluation.decision_margin == "auto":
        if candles is None:
            raise ConfigError(
                f"evaluation.margin_objective {objective} backtests one series' decisions: it needs a run on one "
                "source (not a universe or panel); use balanced_accuracy there"
            )
        from candleflow.evaluation.funding import funding_for
        from candleflow.evaluation.trading import trade_score

        val_ends, funding = eval_parts["val"].ends, funding_for(cfg, candles)[0]  # read once for every margin
        scorer = lambda d: trade_score(candles, val_ends, d, cfg, objective, funding)  # noqa: E731
    choice = resolve_margin(
        cfg.evaluation.decision_margin, eval_parts["val"].labels_at(), outputs["val"], scorer, objective
    )
    if choice.scores is not None:
        log.info(
            "evaluation.decision_margin auto: %s on validation %s (%s)",
            choice.margin,
            objective,
            ", ".join(f"{k}: {v:.4f}" for k, v in choice.scores.items()),
        )
    return choice


def _score_forecasts(
    cfg: RunConfig, ts: TrainingSet, outputs: dict[str, np.ndarray], refs: References, candles: Any
) -> Scored:
    """Each part's forecasts against the reference models and the quants' baselines, each fitted
    on the training windows; the baseline to beat is validation's (its smallest MSE)."""
    train = _target_windows(ts.train, ts.y)  # the training targets as trained on
    history: TargetWindows | None = train  # every window before the part scored next (the rolling HAR reads them)
    parts: dict[str, tuple[Any, np.ndarray, np.ndarray]] = {}
    metrics: dict[str, Any] = {}
    baselines: dict[str, np.ndarray] = {}
    for part, part_ds in ts.eval_parts.items():
        y_true = part_ds.labels_at()
        forecast = np.asarray(outputs[part], np.float32).reshape(-1)
        parts[part] = (part_ds, y_true, forecast)
        best = metrics.get("val", {}).get("best_baseline")
        metrics[part], history, baselines[part] = _score_regression(
            cfg, part, part_ds, y_true, forecast, train, history, refs, best
        )
    return Scored(parts, metrics, baselines)


def _target_windows(windows: Windows, y: np.ndarray) -> TargetWindows:
    """Windows as the regression baselines read them: targets, the bars' context, end rows."""
    context = context_of(windows)
    if context is None:
        raise DataError("a regression target's windows carry no baseline context (prepare them with prepare())")
    return TargetWindows(y, context, getattr(windows, "ends", None))


def _score_regression(
    cfg: RunConfig,
    part: str,
    part_ds: Windows,
    y_true: np.ndarray,
    forecast: np.ndarray,
    train: TargetWindows,
    history: TargetWindows | None,
    refs: References,
    best: str | None,
) -> tuple[dict[str, Any], TargetWindows | None, np.ndarray]:
    """A regression target's table (the model, the reference models and the quants' baselines;
    the baseline to beat is `best`, validation's choice; None on validation itself: its smallest
    MSE), the history grown by this part's windows, and the baseline to beat's forecast."""
    from candleflow.evaluation.regression import evaluate_regression, finite_or_none

    windows = _target_windows(part_ds, np.asarray(y_true, np.float64))
    forecasts: dict[str, np.ndarray] = {}
    result = evaluate_regression(
        cfg.labels.kind,
        y_true,
        forecast,
        train,
        windows,
        {k: np.asarray(v[part]).reshape(-1) for k, v in refs.items()},
        cfg.labels.horizon,
        cfg.dataset.stride,
        2 * (cfg.backtest.fee + cfg.backtest.slippage),
        best=best,
        history=history,
        forecasts=forecasts,
    )
    to_beat = forecasts[result["best_baseline"]].astype(np.float32)
    return finite_or_none(result), (history + windows if history is not None else None), to_beat


def permutation_score(cfg: RunConfig, margin: float) -> Callable[[np.ndarray, np.ndarray], float]:
    """What permutation importance measures the drop of, by the target task: the balanced
    accuracy of the decisions at the run's margin (classes), R^2 (a regression)."""
    return PERMUTATION_SCORES[cfg.labels.task](margin)


def _balanced_accuracy_at(margin: float) -> Callable[[np.ndarray, np.ndarray], float]:
    return lambda outputs, y: float(classification_metrics(y, decide(outputs, margin))["balanced_accuracy"])


def _r2(margin: float) -> Callable[[np.ndarray, np.ndarray], float]:
    from candleflow.evaluation.regression import r2_score

    return lambda outputs, y: r2_score(y, np.asarray(outputs, np.float64).reshape(-1))


# one scorer per target task (`candleflow.config.target_names`): a registered target of either
# task is scored here with no edit
SCORERS: dict[str, Callable[[RunConfig, TrainingSet, dict[str, np.ndarray], References, Any], Scored]] = {
    "classify": _score_classes,
    "regress": _score_forecasts,
}
PERMUTATION_SCORES: dict[str, Callable[[float], Callable[[np.ndarray, np.ndarray], float]]] = {
    "classify": _balanced_accuracy_at,
    "regress": _r2,
}
