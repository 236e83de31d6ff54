"""Trading evaluation of a model's decisions on one period: backtest against buy and hold, random
signals at the model's trade rate and the labels themselves; calibration and coverage."""

from __future__ import annotations

from typing import Any

import numpy as np

from candleflow.config import RunConfig
from candleflow.data.calendar import bars_per_year
from candleflow.data.candles import Candles
from candleflow.dataset.labels import LONG, SHORT
from candleflow.evaluation.backtest import BacktestResult, buy_and_hold, configured_backtest, performance
from candleflow.evaluation.calibration import coverage, reliability
from candleflow.evaluation.funding import funding_for

QUANTILES = [0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99]
COST_MULTIPLES = (0.0, 1.0, 2.0)
SHORT_PERIOD_DAYS = 90  # a Sharpe annualised from fewer days is flagged
TRADE_LIST = 200  # trades listed in metrics.json (the first ones of the period)


def confidence_thresholds(probs: np.ndarray) -> list[float]:
    """Coverage thresholds from the model's own top-class probabilities (quantiles), so a model
    whose top class never passes 0.37 still gets a table."""
    if probs.size == 0:
        return [0.34]
    return sorted({round(float(q), 4) for q in np.quantile(probs.max(axis=1), QUANTILES)})


def sides_of(classes: np.ndarray) -> np.ndarray:
    """+1 for LONG, -1 for SHORT, 0 for HOLD."""
    return np.where(classes == LONG, 1, np.where(classes == SHORT, -1, 0)).astype(np.int8)


def trading_evaluation(
    candles: Candles, ends: np.ndarray, y_true: np.ndarray, probs: np.ndarray, decisions: np.ndarray, cfg: RunConfig
) -> tuple[dict[str, Any], dict[str, BacktestResult]]:
    """Backtest table (model and baselines), reliability and coverage; plus the backtests."""
    bt, lab = cfg.backtest, cfg.labels
    span = (int(ends[0]), min(len(candles), int(ends[-1]) + lab.horizon + 1))
    funding, funding_notes = funding_for(cfg, candles)

    def run(sides: np.ndarray, cost: float = 1.0) -> BacktestResult:
        return configured_backtest(candles, ends, sides, cfg, span, cost, funding)

    per_year = bars_per_year(candles.calendar, candles.interval, int(candles.open_time[-1]))
    model_sides = sides_of(decisions)
    rng = np.random.default_rng(bt.seed)
    n_signals = int((model_sides != 0).sum())
    random_sides = np.zeros_like(model_sides)
    if n_signals:
        chosen = rng.choice(ends.size, size=n_signals, replace=False)
        random_sides[chosen] = rng.choice(np.array([-1, 1], dtype=np.int8), size=n_signals)
    results = {
        "model": run(model_sides),
        "buy_and_hold": buy_and_hold(candles, span, bt.fee, bt.slippage, funding, bt.capital),
        "random_signals": run(random_sides),
        "labels": run(sides_of(y_true)),
    }
    table = {name: performance(res, candles.interval, per_year) for name, res in results.items()}
    legs = {
        "model_long_only": run(np.where(model_sides > 0, model_sides, 0).astype(np.int8)),
        "model_short_only": run(np.where(model_sides < 0, model_sides, 0).astype(np.int8)),
    }
    legs_table = {name: performance(res, candles.interval, per_year) for name, res in legs.items()}
    costs = {f"{c:g}x": performance(run(model_sides, c), candles.interval, per_year) for c in COST_MULTIPLES}
    days = (int(candles.open_time[span[1] - 1]) - int(candles.open_time[span[0]])) / 86_400e9

    def masked_return(act: np.ndarray) -> float:
        return float(run(np.where(act, sides_of(probs.argmax(axis=1)), 0).astype(np.int8)).equity[-1] - 1.0)

    out = {
        "mode": bt.mode,
        "fee": bt.fee,
        "slippage": bt.slippage,
        "fill": bt.fill,
        "sizing": bt.sizing,
        "capital": bt.capital,
        "min_order": bt.min_order,
        "funding": "charged" if funding is not None else "none",
        "funding_notes": funding_notes,
        "span": [candles.time_str(span[0]), candles.time_str(span[1] - 1)],
        "signals": {
            "model": n_signals,
            "random_signals": int((random_sides != 0).sum()),
            "labels": int((sides_of(y_true) != 0).sum()),
        },
        "table": table,
        "legs": legs_table,
        "costs": costs,
        "days": round(days, 1),
        "note": "; ".join(_notes(days, results["model"], n_signals, bt.min_order, funding_notes + _planted(cfg))),
        "trades": trade_list(candles, results["model"], ends, model_sides),
        "reliability": reliability(y_true, probs),
        "coverage": coverage(y_true, probs, confidence_thresholds(probs), masked_return),
    }
    return out, results


def _planted(cfg: RunConfig) -> list[str]:
    """The embedded market's backtest is the planted signal's, said beside it."""
    strength = float(getattr(cfg.source, "signal_strength", 0.0))
    if getattr(cfg.source, "kind", None) == "synthetic" and strength > 0:
        return [
            f"a synthetic market with a planted signal (source.signal_strength {strength:g}): these returns show "
            "that the pipeline finds it, not what a real market pays"
        ]
    return []


def _notes(days: float, model: BacktestResult, signals: int, min_order: float, funding: list[str]) -> list[str]:
    """What a reader of the backtest must know: a period too short for annual figures, signals
    not traded because their order was under the exchange's minimum, funding not charged."""
    out = []
    if days < SHORT_PERIOD_DAYS:
        out.append(
            f"the period spans {days:.0f} days: annualised figures (Sharpe, annual return) from so short a period "
            "are unreliable"
        )
    if model.below_minimum:
        out.append(
            f"{model.below_minimum:,} of the model's {signals:,} signals were not traded: their order was under "
            f"backtest.min_order ({min_order:g}); buy and hold is not held to it"
        )
    return out + funding


def trade_list(candles: Candles, res: BacktestResult, ends: np.ndarray, sides: np.ndarray) -> list[dict[str, Any]]:
    """The first TRADE_LIST trades: entry and exit times, side, return after costs, exit reason."""
    from candleflow.evaluation.backtest import REASONS

    side_at = dict(zip(ends.tolist(), sides.tolist()))
    return [
        {
            "entry": candles.time_str(int(e)),
            "exit": candles.time_str(int(x)),
            "side": "LONG" if side_at.get(int(e), 0) > 0 else "SHORT",
            "return": float(r),
            "exit_reason": REASONS[int(k)],
        }
        for e, x, r, k in list(zip(res.entry, res.exit, res.trade_returns, res.reason))[:TRADE_LIST]
    ]


def trade_score(
    candles: Candles,
    ends: np.ndarray,
    decisions: np.ndarray,
    cfg: RunConfig,
    objective: str,
    funding: np.ndarray | None = None,
) -> float:
    """The Sharpe ratio or total return (after costs) of trading `decisions` at window ends
    `ends`, as the run's backtest trades them: what `evaluation.margin_objective` maximises."""
    lab = cfg.labels
    span = (int(ends[0]), min(len(candles), int(ends[-1]) + lab.horizon + 1))
    res = configured_backtest(candles, ends, sides_of(decisions), cfg, span, funding=funding)
    per_year = bars_per_year(candles.calendar, candles.interval, int(candles.open_time[-1]))
    perf = performance(res, candles.interval, per_year)
    return float(perf["sharpe"] if objective == "sharpe" else perf["total_return"])
