"""Is one forecast's loss smaller than another's beyond noise? The tests forecasters are judged by.

- Losses per window: squared error of the log volatility (or return), and QLIKE on the variance
  (Patton 2011: robust to noise in the realised variance that stands in for the true one).
- Diebold and Mariano (1995): the mean loss difference d = L(baseline) - L(model) over its
  heteroskedasticity-and-autocorrelation-consistent standard error (Newey-West, Bartlett
  weights; overlapping h-step targets make d autocorrelated up to h - 1 windows apart).
  Positive t: the model's loss is smaller. Two-sided p from the normal.
- Giacomini and White (2006), conditional: the loss difference tested against the instruments
  (1, d lagged by the horizon), a chi-squared test with 2 degrees of freedom; it asks whether one
  forecasting method (model and refits) is better, not one fitted model, so walk-forward studies,
  whose folds refit, report it.
- The model confidence set (Hansen, Lunde and Nason 2011) over many forecasts, from the `arch`
  package (`pip install candleflow[stats]`): the forecasts not beaten at 10%.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

MCS_SIZE = 0.10  # forecasts kept where no test rejects them at this level
MCS_RESAMPLES = 500


def squared_error(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    return (np.asarray(y, np.float64) - np.asarray(pred, np.float64).reshape(-1)) ** 2


def qlike_loss(log_vol: np.ndarray, pred_log_vol: np.ndarray) -> np.ndarray:
    """QLIKE per window on the variance: s/h - log(s/h) - 1, s the realised and h the forecast
    variance (the targets are log volatilities)."""
    ratio = np.exp(2.0 * (np.asarray(log_vol, np.float64) - np.asarray(pred_log_vol, np.float64).reshape(-1)))
    return ratio - np.log(ratio) - 1.0


LOSSES = {"mse": squared_error, "qlike": qlike_loss}  # a target names the ones it is judged on


def hac_variance(d: np.ndarray, lags: int) -> float:
    """Newey-West long-run variance of `d` (Bartlett weights 1 - j / (lags + 1), j = 1..lags),
    with the 1/n autocovariances of the textbook formula."""
    d = np.asarray(d, np.float64)
    e = d - d.mean()
    n = e.size
    var = float(e @ e) / n
    for j in range(1, min(lags, n - 1) + 1):
        var += 2.0 * (1.0 - j / (lags + 1)) * float(e[j:] @ e[:-j]) / n
    return var


def _normal_p(t: float) -> float:
    return math.erfc(abs(t) / math.sqrt(2.0))


def diebold_mariano(loss_base: np.ndarray, loss_model: np.ndarray, lags: int = 0) -> dict[str, float | None]:
    """DM test of d = loss_base - loss_model: {'t', 'p', 'mean_diff'}; None where undefined (under
    3 windows, or d constant)."""
    d = np.asarray(loss_base, np.float64) - np.asarray(loss_model, np.float64)
    d = d[np.isfinite(d)]
    if d.size < 3:
        return {"t": None, "p": None, "mean_diff": None}
    var = hac_variance(d, lags)
    if not var > 0:
        return {"t": None, "p": None, "mean_diff": float(d.mean())}
    t = float(d.mean() / math.sqrt(var / d.size))
    return {"t": t, "p": _normal_p(t), "mean_diff": float(d.mean())}


def giacomini_white(loss_base: np.ndarray, loss_model: np.ndarray, horizon: int = 1) -> dict[str, float | None]:
    """Conditional GW test with instruments (1, d_(t - horizon)): {'stat', 'p'} (chi-squared, 2
    degrees of freedom; Newey-West with horizon - 1 lags); None where undefined."""
    from scipy.stats import chi2

    d = np.asarray(loss_base, np.float64) - np.asarray(loss_model, np.float64)
    d = d[np.isfinite(d)]
    tau = max(int(horizon), 1)
    if d.size < tau + 10:
        return {"stat": None, "p": None}
    z = np.column_stack([d[tau:], d[tau:] * d[:-tau]])
    n = z.shape[0]
    zbar = z.mean(axis=0)
    e = z - zbar
    omega = e.T @ e / n
    for j in range(1, min(tau - 1, n - 1) + 1):
        g = e[j:].T @ e[:-j] / n
        omega += (1.0 - j / tau) * (g + g.T)
    try:
        stat = float(n * zbar @ np.linalg.solve(omega, zbar))
    except np.linalg.LinAlgError:
        return {"stat": None, "p": None}
    return {"stat": stat, "p": float(chi2.sf(stat, 2))}


def model_confidence_set(
    losses: dict[str, np.ndarray], block: int, seed: int = 0, size: float = MCS_SIZE
) -> dict[str, Any] | None:
    """Hansen, Lunde and Nason's model confidence set over the forecasts' per-window losses (the
    range statistic, a stationary block bootstrap of mean block `block`): each forecast's MCS
    p-value and the set kept at `size`. None where `arch` is not installed."""
    try:
        from arch.bootstrap import MCS
    except ImportError:
        return None
    names = list(losses)
    mat = np.column_stack([np.asarray(losses[k], np.float64) for k in names])
    mat = mat[np.isfinite(mat).all(axis=1)]
    if mat.shape[0] < 10 or len(names) < 2:
        return None
    mcs = MCS(mat, size=size, reps=MCS_RESAMPLES, block_size=max(int(block), 1), method="R", seed=seed)
    mcs.compute()
    pvalues = {names[int(str(i))]: float(p) for i, p in zip(mcs.pvalues.index, mcs.pvalues.iloc[:, 0], strict=True)}
    return {
        "size": size,
        "included": [names[int(str(i))] for i in mcs.included],
        "pvalues": {k: pvalues[k] for k in names},
    }


__all__ = [
    "LOSSES",
    "diebold_mariano",
    "giacomini_white",
    "hac_variance",
    "model_confidence_set",
    "qlike_loss",
    "squared_error",
]
