"""Regression targets scored as quants score them, against the baselines they use.

Forward returns: the information coefficient (IC, Pearson), rank IC (Spearman), ICIR (the mean
over the std of the IC in contiguous periods), out-of-sample R^2 against a zero forecast, the hit
rate of the sign and the P&L of trading the sign on non-overlapping windows after costs.
Baselines: zero, the training mean, momentum (the last horizon's return) and reversal.

Volatility (log realised volatility): R^2 on log volatility stated three ways, each under its
own name: `r2` against the period's own mean (the share of the period's variance explained),
`r2_train_mean` against the training mean, and `r2_prevailing_mean` against the mean of every
target known at each forecast (Campbell and Thompson's out-of-sample R^2); where the level moved
between training and test, the last two count the move as skill. Beside them QLIKE on the
variance, MSE and the correlation of predicted with realised (IC). The baselines
(`evaluation.baselines`) include HAR and its seasonal, jump, quarticity and rolling variants.

Every model row also carries its MSE and QLIKE over those of the baseline to beat (below 1: the
model's loss is smaller) and the Diebold-Mariano t-statistic of each loss difference (positive:
the model is better; Newey-West over the windows the targets overlap).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from candleflow.dataset.targets import target
from candleflow.evaluation.baselines import (
    RETURN_BASELINES,
    VOLATILITY_BASELINES,
    TargetWindows,
    baseline_predictions,
    fit_har,
    har_predict,
    prevailing_mean,
)
from candleflow.evaluation.forecast_tests import LOSSES, diebold_mariano, qlike_loss

IC_PERIODS = 20  # contiguous periods the ICIR is measured over


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 3 or np.std(a) < 1e-15 or np.std(b) < 1e-15:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def pearson_ic(y: np.ndarray, pred: np.ndarray) -> float:
    """Pearson IC of a forecast; NaN where either side is constant or under 3 windows."""
    return _corr(np.asarray(y, dtype=np.float64), np.asarray(pred, dtype=np.float64))


def _ranks(a: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(a)


def information_coefficients(y: np.ndarray, pred: np.ndarray, periods: int = IC_PERIODS) -> dict[str, float]:
    """IC (Pearson), rank IC (Spearman) over all rows, and the ICIR over `periods` contiguous
    periods (mean IC / std IC; NaN with fewer than 3 periods of 3 rows)."""
    ic = _corr(y, pred)
    rank_ic = _corr(_ranks(y), _ranks(pred))
    chunks = [c for c in np.array_split(np.arange(y.size), min(periods, max(y.size // 3, 1))) if c.size >= 3]
    per = np.array([_corr(y[c], pred[c]) for c in chunks])
    per = per[np.isfinite(per)]
    icir = float(per.mean() / per.std()) if per.size >= 3 and per.std() > 0 else float("nan")
    return {"ic": ic, "rank_ic": rank_ic, "icir": icir}


def fold_ic_interval(
    per_fold: np.ndarray, variances: np.ndarray
) -> tuple[float | None, list[float] | None, float | None]:
    """The walk-forward IC: per-fold ICs combined as a random-effects meta-analysis, with its 95%
    interval and the between-fold variance tau^2.

    Each fold has its own fitted model and its own test months, so its IC is one estimate with
    its own sampling variance (`variances`, from a block bootstrap inside the fold). tau^2 is
    DerSimonian and Laird's: 0 where the folds agree within that noise, larger where they
    disagree more (a refit that took another stance, a stretch of market with a trend). The
    interval is the modified Knapp-Hartung one that meta-analyses of few studies use (Roever et
    al. 2015): Student's t with folds - 1 degrees of freedom, and a standard error never below
    the random-effects one. With 5 or 6 folds the normal interval covers too rarely; this one
    keeps 95% on a market without a signal, at the price of width.

    A pooled IC over the stitched folds instead weights each fold by its model's forecast
    variance and conditions on the fitted models, so one fold's tail can decide it. Folds with
    no IC (a constant forecast) or no variance are left out; with one fold left the interval is
    its own bootstrap's normal interval, with none there is no IC."""
    from scipy.stats import t as student_t

    r = np.asarray(per_fold, dtype=np.float64)
    v = np.asarray(variances, dtype=np.float64)
    ok = np.isfinite(r) & np.isfinite(v) & (v > 0)
    r, v = r[ok], v[ok]
    if r.size == 0:
        return None, None, None
    w = 1.0 / v
    fixed = float((w * r).sum() / w.sum())
    q_fixed = float((w * (r - fixed) ** 2).sum())
    spread = float(w.sum() - (w * w).sum() / w.sum())
    tau2 = max(0.0, (q_fixed - (r.size - 1)) / spread) if spread > 0 else 0.0
    ws = 1.0 / (v + tau2)
    mean = float((ws * r).sum() / ws.sum())
    if r.size == 1:
        half = 1.959963984540054 * float(np.sqrt(v[0]))
    else:
        scale = max(1.0, float((ws * (r - mean) ** 2).sum()) / (r.size - 1))
        half = float(student_t.ppf(0.975, r.size - 1)) * float(np.sqrt(scale / ws.sum()))
    return mean, [mean - half, mean + half], tau2


def r2_score(y: np.ndarray, pred: np.ndarray, reference: float | np.ndarray | None = None) -> float:
    """1 - SSE / SST, SST around `reference`: the part's own mean when None, a number, or a naive
    forecast per window (the prevailing mean, each fold's own mean)."""
    centre = float(np.mean(y)) if reference is None else np.asarray(reference, np.float64)
    sst = float(np.sum((y - centre) ** 2))
    return float(1.0 - np.sum((y - pred) ** 2) / sst) if sst > 0 else float("nan")


def qlike(log_vol: np.ndarray, pred_log_vol: np.ndarray) -> float:
    """QLIKE on the variance: mean(s/h - log(s/h) - 1), s the realised and h the forecast
    variance; 0 for a perfect forecast, robust to noise in the realised variance."""
    return float(np.mean(qlike_loss(log_vol, pred_log_vol)))


def sign_trading(y: np.ndarray, pred: np.ndarray, horizon: int, stride: int, round_trip: float) -> dict[str, float]:
    """Trading the forecast's sign over non-overlapping windows (every ceil(horizon / stride)-th):
    each trade earns sign * (exp(y) - 1) less the round-trip cost; mean per trade, the sum, and
    the number of trades."""
    step = max(1, -(-horizon // max(stride, 1)))
    yy, pp = y[::step], pred[::step]
    side = np.sign(pp)
    pnl = side * np.expm1(yy) - round_trip * (side != 0)
    return {
        "pnl_per_trade": float(pnl.mean()) if pnl.size else float("nan"),
        "pnl_total": float(pnl.sum()),
        "trades": int((side != 0).sum()),
    }


def regression_metrics(
    kind: str,
    y: np.ndarray,
    pred: np.ndarray,
    horizon: int = 1,
    stride: int = 1,
    round_trip: float = 0.0,
    train_mean: float | None = None,
    prevailing: np.ndarray | None = None,
) -> dict[str, Any]:
    """The metrics of one forecast (see the module); NaN where a metric is undefined (the IC of a
    constant forecast). Forward returns: R^2 against a zero forecast (the naive forecast of a
    return). Volatility: `r2` against the period's own mean, and, where given, against the
    training mean (`train_mean`) and the prevailing mean (`prevailing`, one value per window)."""
    y = np.asarray(y, np.float64)
    pred = np.asarray(pred, np.float64).reshape(-1)
    spec = target(kind)
    out: dict[str, Any] = {**information_coefficients(y, pred), "mse": float(np.mean((y - pred) ** 2))}
    if spec.r2_reference == "zero":
        out["r2"] = r2_score(y, pred, reference=0.0)
    else:
        out["r2"] = r2_score(y, pred)
        if train_mean is not None:
            out["r2_train_mean"] = r2_score(y, pred, reference=train_mean)
        if prevailing is not None:
            out["r2_prevailing_mean"] = r2_score(y, pred, reference=prevailing)
    for loss in spec.losses:
        if loss != "mse":
            out[loss] = float(np.mean(LOSSES[loss](y, pred)))
    if spec.trades_sign:
        moved = y != 0
        out["hit_rate"] = float((np.sign(pred[moved]) == np.sign(y[moved])).mean()) if moved.any() else float("nan")
        out.update(sign_trading(y, pred, horizon, stride, round_trip))
    return out


def choose_best_baseline(table: dict[str, dict[str, Any]], names: list[str] | tuple[str, ...]) -> str:
    """The baseline with the smallest MSE in `table` (the validation period's)."""
    return min(names, key=lambda n: table[n]["mse"] if np.isfinite(table[n]["mse"]) else np.inf)


def against_baseline(kind: str, y: np.ndarray, pred: np.ndarray, base: np.ndarray, lags: int) -> dict[str, Any]:
    """A forecast's losses over the baseline to beat's, for each loss the target is judged on:
    their ratio and the Diebold-Mariano t and p."""
    out: dict[str, Any] = {}
    for loss in target(kind).losses:
        l_m, l_b = LOSSES[loss](y, pred), LOSSES[loss](y, base)
        dm = diebold_mariano(l_b, l_m, lags)
        out |= {
            f"{loss}_ratio": float(l_m.mean() / l_b.mean()) if l_b.mean() > 0 else float("nan"),
            f"dm_t_{loss}": dm["t"],
            f"dm_p_{loss}": dm["p"],
        }
    return out


def overlap_lags(horizon: int, stride: int) -> int:
    """Windows apart over which overlapping targets share bars: the Newey-West lag count."""
    return max(-(-horizon // max(stride, 1)) - 1, 0)


def evaluate_regression(
    kind: str,
    y_true: np.ndarray,
    pred: np.ndarray,
    train: TargetWindows,
    part: TargetWindows,
    references: dict[str, np.ndarray] | None = None,
    horizon: int = 1,
    stride: int = 1,
    round_trip: float = 0.0,
    best: str | None = None,
    history: TargetWindows | None = None,
    forecasts: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """One part's table (the model, the reference models, the baselines), the baseline to beat
    (`best`, chosen on validation; None: the smallest MSE here, which is how validation chooses
    it), the model's R^2 gain over it with an interval, and every forecast's losses against it.
    `history`: the windows before `part` (the rolling HAR and prevailing mean read them);
    `forecasts`, where given, receives each baseline's forecast (what the report plots)."""
    past = history if history is not None else train
    train_mean = float(np.mean(train.y))
    around_mean = target(kind).r2_reference == "period_mean"
    timed = past.ends is not None and part.ends is not None and around_mean
    prevailing = prevailing_mean(past, part, horizon) if timed else None
    score = lambda p: regression_metrics(kind, y_true, p, horizon, stride, round_trip, train_mean, prevailing)  # noqa: E731
    table: dict[str, dict[str, Any]] = {"model": score(pred)}
    for name, p in (references or {}).items():
        table[name] = score(p)
    base = baseline_predictions(kind, train, part, horizon, past)
    if forecasts is not None:
        forecasts.update(base)
    for name, p in base.items():
        table[name] = score(p)
    chosen = best if best in base else choose_best_baseline(table, list(base))
    lags = overlap_lags(horizon, stride)
    for name in ["model", *(references or {})]:
        forecast = pred if name == "model" else np.asarray((references or {})[name], np.float64)
        table[name] |= against_baseline(kind, y_true, forecast, base[chosen], lags)
    m = table["model"]
    out: dict[str, Any] = {
        "windows": int(y_true.size),
        "target": kind,
        "table": table,
        "best_baseline": chosen,
        "best_baseline_chosen_on": "val" if best in base else "this period",
        "gain_r2": m["r2"] - table[chosen]["r2"],
    }
    reference = float(np.mean(y_true)) if around_mean else 0.0  # what R^2 is against
    block = max(2 * horizon // max(stride, 1), 1)
    out["gain_r2_ci95"] = gain_interval(y_true, pred, base[chosen], reference, block)
    out["bootstrap"] = {"block_windows": block, "resamples": GAIN_RESAMPLES}
    if references:
        out["gain_r2_over_reference"] = {name: m["r2"] - table[name]["r2"] for name in references}
    return out


GAIN_RESAMPLES = 1000


def gain_interval(
    y: np.ndarray, pred: np.ndarray, base: np.ndarray, reference: float, block: int, resamples: int = GAIN_RESAMPLES
) -> list[float] | None:
    """The 95% moving-block bootstrap interval of a single run's R^2 gain over a baseline, as the
    classifier's edge gets one: on each resample of consecutive windows (blocks of `block`, which
    keep the overlap of neighbouring targets inside a block), (SSE_base - SSE_model) / SST, SST
    around the naive forecast `reference`. None with fewer than 2 windows or no spread."""
    from candleflow.evaluation.bootstrap import block_resampled_sums, ci95

    y = np.asarray(y, np.float64)
    if y.size < 2:
        return None
    e_model = (y - np.asarray(pred, np.float64).reshape(-1)) ** 2
    e_base = (y - np.asarray(base, np.float64).reshape(-1)) ** 2
    spread = (y - reference) ** 2
    base_sum, model_sum, sst = block_resampled_sums(
        [e_base, e_model, spread], block, resamples, np.random.default_rng(0)
    )
    ok = sst > 0
    if not ok.any():
        return None
    gains = (base_sum - model_sum)[ok] / sst[ok]
    return ci95(gains)


def finite_or_none(value: Any) -> Any:
    """NaN and inf as None (JSON null), recursively."""
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_none(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


__all__ = [
    "TargetWindows",
    "against_baseline",
    "choose_best_baseline",
    "overlap_lags",
    "pearson_ic",
    "fold_ic_interval",
    "RETURN_BASELINES",
    "VOLATILITY_BASELINES",
    "baseline_predictions",
    "evaluate_regression",
    "fit_har",
    "har_predict",
    "information_coefficients",
    "qlike",
    "r2_score",
    "regression_metrics",
]
