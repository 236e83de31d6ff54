"""Classification metrics for a model and for the baselines it must beat, in one table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from candleflow.dataset.labels import CLASS_NAMES, HOLD


def decide(probs: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """Class decisions from (n, 3) probabilities: the most likely class, except HOLD where the
    winner beats the runner-up by less than `margin` (an undecided model stays out of the market)."""
    pred = probs.argmax(axis=1)
    if margin > 0:
        top2 = np.sort(probs, axis=1)[:, -2:]
        pred[top2[:, 1] - top2[:, 0] < margin] = HOLD
    return pred


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = 3) -> np.ndarray:
    """Counts (true class, predicted class), int64 (n_classes, n_classes)."""
    return np.bincount(
        y_true.astype(np.int64) * n_classes + y_pred.astype(np.int64), minlength=n_classes * n_classes
    ).reshape(n_classes, n_classes)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = 3) -> dict[str, Any]:
    """Accuracy, balanced accuracy (mean recall over classes present), macro F1 (over all
    classes, 0 where undefined), per-class precision/recall/support and the confusion matrix."""
    cm = confusion_matrix(y_true, y_pred, n_classes)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    recall = np.divide(tp, support, out=np.zeros(n_classes), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros(n_classes), where=predicted > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(n_classes), where=denom > 0)
    n = max(int(support.sum()), 1)
    return {
        "accuracy": float(tp.sum() / n),
        "balanced_accuracy": float(recall[support > 0].mean()) if (support > 0).any() else 0.0,
        "macro_f1": float(f1.mean()),
        "per_class": {
            name: {
                "precision": float(precision[k]),
                "recall": float(recall[k]),
                "f1": float(f1[k]),
                "support": int(support[k]),
            }
            for k, name in enumerate(CLASS_NAMES[:n_classes])
        },
        "confusion_matrix": cm.tolist(),
    }


def baseline_predictions(y_train: np.ndarray, n: int, seed: int = 0, n_classes: int = 3) -> dict[str, np.ndarray]:
    """Predictions that use no features: the training majority class, always HOLD, and random
    classes drawn with the training class frequencies (stratified)."""
    counts = np.bincount(y_train[y_train >= 0], minlength=n_classes)
    rng = np.random.default_rng(seed)
    return {
        "majority": np.full(n, int(np.argmax(counts))),
        "always_hold": np.full(n, HOLD),
        "stratified": rng.choice(n_classes, size=n, p=counts / counts.sum()),
    }


REFERENCE_PREFIX = "ref_"
MARGINS = (0.0, 0.01, 0.02, 0.05, 0.1)  # decision_margin: auto chooses among these
ONE_CLASS_SHARE = 0.95  # decisions this concentrated on one class get a warning
FLAT_PROBABILITIES = 0.01  # a model whose class probabilities move less than this (std) is constant
SMALL_PERIOD = 200  # fewer windows than this in a period: its figures are noisy


def choose_margin(
    y_val: np.ndarray,
    probs_val: np.ndarray,
    candidates: tuple[float, ...] = MARGINS,
    score: Callable[[np.ndarray], float] | None = None,
) -> tuple[float, dict[str, float]]:
    """`decision_margin: auto`: the candidate whose decisions score best on the validation period
    (ties: the larger margin, the more cautious rule), and every score. The score is the balanced
    accuracy of the decisions, or `score(decisions)` (e.g. the Sharpe ratio of trading them)."""
    measure = score or (lambda d: classification_metrics(y_val, d)["balanced_accuracy"])
    scores = {str(m): float(measure(decide(probs_val, m))) for m in candidates}
    best = max(candidates, key=lambda m: (round(scores[str(m)], 12) if np.isfinite(scores[str(m)]) else -np.inf, m))
    return float(best), scores


@dataclass(frozen=True)
class MarginChoice:
    """The decision margin a run applies: the configured one, or the one `auto` chose on
    validation by `objective`, with the score of every margin it compared. `to_json` is what
    metrics.json records of the choice (None for a configured margin)."""

    margin: float
    objective: str | None = None
    scores: dict[str, float] | None = None

    def to_json(self) -> dict[str, Any] | None:
        if self.scores is None:
            return None
        return {"objective": f"{self.objective} on val", "scores": dict(self.scores)}


def resolve_margin(
    cfg_margin: float | str,
    y_val: np.ndarray,
    probs_val: np.ndarray,
    score: Callable[[np.ndarray], float] | None = None,
    objective: str = "balanced_accuracy",
) -> MarginChoice:
    """The configured margin, or the one `auto` chooses on validation by `objective` (`score`
    computes it for each margin; balanced accuracy when None), with the scores it compared."""
    if cfg_margin == "auto":
        margin, scores = choose_margin(y_val, probs_val, score=score)
        return MarginChoice(margin, objective, scores)
    return MarginChoice(float(cfg_margin))


def decision_warnings(name: str, probs: np.ndarray, margin: float, n: int | None = None) -> list[str]:
    """One line per problem a trader must hear about: decisions that are (nearly) all one class,
    with the cause (the margin, or probabilities that barely move), and a period too small to trust."""
    out: list[str] = []
    if probs.size == 0:
        return out
    pred = decide(probs, margin)
    counts = np.bincount(pred, minlength=3)
    top = int(np.argmax(counts))
    share = counts[top] / pred.size
    spread = float(probs.std(axis=0).max())
    if share >= ONE_CLASS_SHARE:
        argmax_share = np.bincount(probs.argmax(axis=1), minlength=3).max() / pred.size
        if spread < FLAT_PROBABILITIES:
            cause = (
                f"its class probabilities barely move (largest std {spread:.4f}): a constant model that learned "
                "nothing; try more epochs, another learning rate or another family"
            )
        elif margin > 0 and argmax_share < ONE_CLASS_SHARE:
            gap = np.sort(probs, axis=1)
            lead = gap[:, -1] - gap[:, -2]
            cause = (
                f"decision_margin {margin} is wider than the model's lead over the runner-up (median "
                f"{float(np.median(lead)):.4f}); the plain argmax would decide {100 * argmax_share:.0f}% one class: "
                "set evaluation.decision_margin: auto (chosen on validation) or a smaller margin"
            )
        else:
            cause = "the model ranks one class first almost everywhere; its trades are few or none"
        out.append(f"{name} decides {CLASS_NAMES[top]} on {100 * share:.1f}% of {pred.size:,} windows: {cause}")
    if n is not None and n < SMALL_PERIOD:
        out.append(f"only {n} windows in this period (under {SMALL_PERIOD}): its figures are noisy")
    return out


def evaluate(
    y_true: np.ndarray,
    probs: np.ndarray,
    y_train: np.ndarray,
    margin: float = 0.0,
    seed: int = 0,
    references: dict[str, np.ndarray] | None = None,
    block: int | None = None,
    resamples: int = 1000,
) -> dict[str, Any]:
    """Metrics of the model's decisions (and of its plain argmax), of every baseline and of every
    reference model (`references`: name -> probabilities, decided by the same rule) on the same
    windows; the edge of the decisions over the best baseline and over the best reference model,
    with `block` (windows per block) a moving-block bootstrap 95% interval for each edge (windows
    in time order), and the warnings a trader must hear (decisions all one class, few windows)."""
    decided = decide(probs, margin)
    table = {"model": classification_metrics(y_true, decided)}
    if margin > 0:
        table["model_argmax"] = classification_metrics(y_true, probs.argmax(axis=1))
    for name, pred in baseline_predictions(y_train, y_true.shape[0], seed).items():
        table[name] = classification_metrics(y_true, pred)
    best = max(v["balanced_accuracy"] for k, v in table.items() if not k.startswith("model"))
    out: dict[str, Any] = {
        "n": int(y_true.shape[0]),
        "decision_margin": margin,
        "table": table,
        "edge_balanced_accuracy": table["model"]["balanced_accuracy"] - best,
    }
    warnings = decision_warnings("the model", probs, margin, int(y_true.shape[0]))
    for name, ref_probs in (references or {}).items():
        table[REFERENCE_PREFIX + name] = classification_metrics(y_true, decide(ref_probs, margin))
        warnings += decision_warnings(f"the reference {name}", ref_probs, margin)
    out["warnings"] = warnings
    if block is not None and y_true.size >= 2:
        from candleflow.evaluation.bootstrap import balanced_accuracy_resampled, block_indices, ci95

        idx = block_indices(int(y_true.size), block, resamples, np.random.default_rng(seed))
        model_r = balanced_accuracy_resampled(y_true, decided, idx)
        base_r = np.max(
            [
                balanced_accuracy_resampled(y_true, p, idx)
                for p in baseline_predictions(y_train, y_true.shape[0], seed).values()
            ],
            axis=0,
        )
        out["edge_ci95"] = ci95(model_r - base_r)
        if references:
            ref_r = np.max(
                [balanced_accuracy_resampled(y_true, decide(p, margin), idx) for p in references.values()], axis=0
            )
            out["edge_over_reference_ci95"] = ci95(model_r - ref_r)
        out["bootstrap"] = {"block_windows": block, "resamples": resamples}
    if references:
        ref_name, ref = max(
            ((k, v) for k, v in table.items() if k.startswith(REFERENCE_PREFIX)),
            key=lambda kv: kv[1]["balanced_accuracy"],
        )
        out["best_reference"] = ref_name.removeprefix(REFERENCE_PREFIX)
        out["edge_over_reference"] = table["model"]["balanced_accuracy"] - ref["balanced_accuracy"]
    return out
