"""One period of a pooled run (one model over a universe's assets) scored as the cross-section
is: every forecast (the model's, the reference models', the cross-section's baselines) gets
its daily IC and rank IC, and, by the target: books of its ranking (returns) or per-asset
losses and R^2 (volatility); the baseline to beat is chosen on validation (the highest rank IC
for a target whose sign trades, else the smallest MSE) and the model is tested against it on
the per-time differences (Newey-West), so the cross-section's correlation is respected."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from candleflow.dataset.targets import target
from candleflow.evaluation.baselines import TargetWindows, pooled_baseline_predictions
from candleflow.evaluation.pooled import (
    ic_summary,
    loss_difference_t,
    per_asset_regression,
    quantile_book,
    rank_ic_difference,
    topk_dropout,
)


@dataclass(frozen=True)
class PooledWindows:
    """A pooled run's windows as the cross-section reads them: each window's forecast time (its
    last bar's open, int64 ns), asset (an index into the run's series), raw target and the
    baselines' context row."""

    times: np.ndarray
    asset: np.ndarray
    y: np.ndarray
    context: np.ndarray

    @property
    def target_windows(self) -> TargetWindows:
        return TargetWindows(np.asarray(self.y, np.float64), self.context)


def periods_per_year(interval_bars_per_year: float, horizon: int) -> float:
    """Non-overlapping holding periods of `horizon` bars in a year."""
    return interval_bars_per_year / max(horizon, 1)


def forecast_figures(
    kind: str,
    part: PooledWindows,
    forecast: np.ndarray,
    train_means: np.ndarray,
    horizon: int,
    cost: float,
    per_year: float,
) -> dict[str, Any]:
    """The cross-section's figures of one forecast or score over `part`'s windows;
    `train_means`: each window's asset's training mean (what R^2 against the training mean reads)."""
    spec = target(kind)
    out = ic_summary(part.times, part.y, forecast, horizon)
    if spec.trades_sign:  # a ranking of returns is a book
        simple = np.expm1(np.asarray(part.y, np.float64))  # log returns as simple returns
        assets = int(np.unique(part.asset).size)
        k = max(1, assets // 6)
        out["book_q5"] = quantile_book(part.times, part.asset, forecast, simple, horizon, cost, per_year, 5)
        out["book_q10"] = quantile_book(part.times, part.asset, forecast, simple, horizon, cost, per_year, 10)
        out["topk"] = topk_dropout(
            part.times, part.asset, forecast, simple, horizon, cost, per_year, k, max(1, k // 10)
        )
    else:
        out |= per_asset_regression(kind, part.asset, part.y, forecast, train_means)
    return out


def asset_means(train: PooledWindows, at_least: int = 0) -> np.ndarray:
    """Each asset's mean training target (the pooled mean for an asset without one)."""
    n_assets = max(int(train.asset.max(initial=0)) + 1, at_least)
    ty = np.asarray(train.y, np.float64)
    ok = np.isfinite(ty)
    count = np.bincount(train.asset, weights=ok.astype(float), minlength=n_assets)
    sums = np.bincount(train.asset, weights=np.where(ok, ty, 0.0), minlength=n_assets)
    pooled = float(ty[ok].mean()) if ok.any() else 0.0
    return np.where(count > 0, sums / np.maximum(count, 1), pooled)


def choose_pooled_best(kind: str, table: dict[str, dict[str, Any]], names: list[str]) -> str:
    """The cross-section baseline to beat in `table`: the highest rank IC where the target's sign
    trades, else the smallest MSE."""
    if target(kind).trades_sign:
        return max(names, key=lambda n: table[n]["rank_ic"] if table[n]["rank_ic"] is not None else -np.inf)
    return min(names, key=lambda n: table[n]["mse"] if table[n].get("mse") is not None else np.inf)


def score_cross_section(
    kind: str,
    train: PooledWindows,
    part: PooledWindows,
    forecasts: dict[str, np.ndarray],
    horizon: int,
    cost: float,
    per_year: float,
    best: str | None = None,
) -> dict[str, Any]:
    """`part`'s cross-section table: every forecast in `forecasts` (the model first) and every
    cross-section baseline of the target fitted on `train`; the baseline to beat (`best`, chosen
    on validation; None: chosen here) and each forecast's difference from it with its t and
    95% interval."""
    train_means = asset_means(train, int(part.asset.max(initial=0)) + 1)[part.asset]
    base = pooled_baseline_predictions(kind, train.target_windows, train.asset, part.target_windows, part.asset)
    table = {
        name: forecast_figures(kind, part, f, train_means, horizon, cost, per_year)
        for name, f in {**forecasts, **base}.items()
    }
    chosen = best if best in base else choose_pooled_best(kind, table, list(base))
    for name, f in forecasts.items():
        if target(kind).trades_sign:
            table[name]["vs_best_rank_ic"] = rank_ic_difference(part.times, part.y, f, base[chosen], horizon)
        else:
            for loss in target(kind).losses:
                table[name][f"vs_best_{loss}"] = loss_difference_t(part.times, part.y, f, base[chosen], loss, horizon)
    return {
        "table": table,
        "best_baseline": chosen,
        "best_baseline_chosen_on": "val" if best in base else "this period",
        "assets": int(np.unique(part.asset).size),
        "times": int(np.unique(part.times).size),
        "cost_per_side": cost,
    }


__all__ = [
    "PooledWindows",
    "asset_means",
    "choose_pooled_best",
    "forecast_figures",
    "periods_per_year",
    "score_cross_section",
]
