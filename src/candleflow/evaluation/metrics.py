"""Classification metrics for a model and for the baselines it must beat, in one table."""

from __future__ import annotations

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


def evaluate(
    y_true: np.ndarray,
    probs: np.ndarray,
    y_train: np.ndarray,
    margin: float = 0.0,
    seed: int = 0,
    references: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Metrics of the model's decisions (and of its plain argmax), of every baseline and of every
    reference model (`references`: name -> probabilities, decided by the same rule) on the same
    windows; the edge of the decisions over the best baseline and over the best reference model."""
    table = {"model": classification_metrics(y_true, decide(probs, margin))}
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
    for name, ref_probs in (references or {}).items():
        table[REFERENCE_PREFIX + name] = classification_metrics(y_true, decide(ref_probs, margin))
    if references:
        ref_name, ref = max(
            ((k, v) for k, v in table.items() if k.startswith(REFERENCE_PREFIX)),
            key=lambda kv: kv[1]["balanced_accuracy"],
        )
        out["best_reference"] = ref_name.removeprefix(REFERENCE_PREFIX)
        out["edge_over_reference"] = table["model"]["balanced_accuracy"] - ref["balanced_accuracy"]
    return out
