"""Trading evaluation of a model's decisions on one period: backtest against buy and hold, random
signals at the model's trade rate and the labels themselves; calibration and coverage."""

from __future__ import annotations

from typing import Any

import numpy as np

from candleflow.config import RunConfig
from candleflow.data.candles import Candles
from candleflow.dataset.labels import LONG, SHORT
from candleflow.evaluation.backtest import BacktestResult, backtest, buy_and_hold, performance
from candleflow.evaluation.calibration import coverage, reliability

THRESHOLDS = [0.34, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8, 0.9]


def sides_of(classes: np.ndarray) -> np.ndarray:
    """+1 for LONG, -1 for SHORT, 0 for HOLD."""
    return np.where(classes == LONG, 1, np.where(classes == SHORT, -1, 0)).astype(np.int8)


def trading_evaluation(
    candles: Candles, ends: np.ndarray, y_true: np.ndarray, probs: np.ndarray, decisions: np.ndarray, cfg: RunConfig
) -> tuple[dict[str, Any], dict[str, BacktestResult]]:
    """Backtest table (model and baselines), reliability and coverage; plus the backtests."""
    bt, lab = cfg.backtest, cfg.labels
    span = (int(ends[0]), min(len(candles), int(ends[-1]) + lab.horizon + 1))

    def run(sides: np.ndarray) -> BacktestResult:
        return backtest(candles, ends, sides, lab, bt.fee, bt.slippage, bt.mode, span)

    model_sides = sides_of(decisions)
    rng = np.random.default_rng(bt.seed)
    n_signals = int((model_sides != 0).sum())
    random_sides = np.zeros_like(model_sides)
    if n_signals:
        chosen = rng.choice(ends.size, size=n_signals, replace=False)
        random_sides[chosen] = rng.choice(np.array([-1, 1], dtype=np.int8), size=n_signals)
    results = {
        "model": run(model_sides),
        "buy_and_hold": buy_and_hold(candles, span, bt.fee, bt.slippage),
        "random_signals": run(random_sides),
        "labels": run(sides_of(y_true)),
    }
    table = {name: performance(res, candles.interval) for name, res in results.items()}

    def masked_return(act: np.ndarray) -> float:
        return float(run(np.where(act, sides_of(probs.argmax(axis=1)), 0).astype(np.int8)).equity[-1] - 1.0)

    out = {
        "mode": bt.mode,
        "fee": bt.fee,
        "slippage": bt.slippage,
        "span": [candles.time_str(span[0]), candles.time_str(span[1] - 1)],
        "signals": {
            "model": n_signals,
            "random_signals": int((random_sides != 0).sum()),
            "labels": int((sides_of(y_true) != 0).sum()),
        },
        "table": table,
        "reliability": reliability(y_true, probs),
        "coverage": coverage(y_true, probs, THRESHOLDS, masked_return),
    }
    return out, results
