"""Is the model's confidence worth anything: reliability of probabilities, and accuracy and
backtest return as a function of a confidence threshold."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from candleflow.dataset.labels import HOLD


def reliability(y_true: np.ndarray, probs: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Per confidence bin (top probability): count, mean confidence, accuracy; and the expected
    calibration error (bin-weighted mean |accuracy - confidence|)."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    rows = []
    ece = 0.0
    for b in range(bins):
        m = idx == b
        if not m.any():
            continue
        acc, c = float(correct[m].mean()), float(conf[m].mean())
        rows.append(
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "count": int(m.sum()),
                "confidence": c,
                "accuracy": acc,
            }
        )
        ece += m.mean() * abs(acc - c)
    return {"bins": rows, "ece": float(ece)}


def coverage(
    y_true: np.ndarray, probs: np.ndarray, thresholds: list[float], trade_return: Callable[[np.ndarray], float]
) -> list[dict[str, Any]]:
    """For each threshold t: the share of windows where the model trades (top class LONG or SHORT
    with probability >= t), its accuracy there, and the backtest return of trading only those."""
    pred = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    out = []
    for t in thresholds:
        act = (conf >= t) & (pred != HOLD)
        out.append(
            {
                "threshold": float(t),
                "coverage": float(act.mean()),
                "accuracy": float((pred[act] == y_true[act]).mean()) if act.any() else 0.0,
                "trades_signalled": int(act.sum()),
                "total_return": float(trade_return(act)),
            }
        )
    return out
