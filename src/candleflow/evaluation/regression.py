"""Regression targets scored as quants score them, against the baselines they use.

Forward returns: the information coefficient (IC, Pearson), rank IC (Spearman), ICIR (the mean
over the std of the IC in contiguous periods), out-of-sample R^2 against a zero forecast, the hit
rate of the sign and the P&L of trading the sign on non-overlapping windows after costs.
Baselines: zero, the training mean, momentum (the last horizon's return) and reversal.

Volatility (log realised volatility): out-of-sample R^2 on log volatility (against the training
mean's forecast, as Campbell and Thompson define it), QLIKE
on the variance, MSE and the correlation of predicted with realised (IC). Baselines: the training
mean, persistence (the last horizon's volatility), EWMA and HAR-RV (OLS of the target on the
daily, weekly and monthly averages, fitted on the training windows).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from candleflow.dataset.targets import CONTEXT

RETURN_BASELINES = ("zero", "mean", "momentum", "reversal")
VOLATILITY_BASELINES = ("mean", "persistence", "ewma", "har")
IC_PERIODS = 20  # contiguous periods the ICIR is measured over
_HAR_COLUMNS = [CONTEXT.index(c) for c in ("har_d", "har_w", "har_m")]


def baseline_names(kind: str) -> tuple[str, ...]:
    """The baseline rows of a target kind."""
    return RETURN_BASELINES if kind == "forward_return" else VOLATILITY_BASELINES


def fit_har(context: np.ndarray, y: np.ndarray) -> np.ndarray:
    """HAR-RV's coefficients (intercept, daily, weekly, monthly) by least squares on the rows
    whose terms and target are finite."""
    x = np.asarray(context, np.float64)[:, _HAR_COLUMNS]
    ok = np.isfinite(x).all(axis=1) & np.isfinite(y)
    if ok.sum() < 5:
        return np.array([float(np.nanmean(y)) if np.isfinite(y).any() else 0.0, 0.0, 0.0, 0.0])
    a = np.column_stack([np.ones(ok.sum()), x[ok]])
    coef, *_ = np.linalg.lstsq(a, np.asarray(y, np.float64)[ok], rcond=None)
    return coef


def har_predict(coef: np.ndarray, context: np.ndarray) -> np.ndarray:
    x = np.asarray(context, np.float64)[:, _HAR_COLUMNS]
    return coef[0] + x @ coef[1:]


def baseline_predictions(
    kind: str, y_train: np.ndarray, context_train: np.ndarray, context: np.ndarray
) -> dict[str, np.ndarray]:
    """Each baseline's forecast for the rows of `context` (float64); where a baseline's input is
    missing (a segment's first bars) it forecasts the training mean."""
    mean = float(np.mean(y_train))
    n = context.shape[0]

    def filled(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, np.float64)
        return np.where(np.isfinite(v), v, mean)

    if kind == "forward_return":
        mom = context[:, CONTEXT.index("momentum")]
        return {"zero": np.zeros(n), "mean": np.full(n, mean), "momentum": filled(mom), "reversal": filled(-mom)}
    return {
        "mean": np.full(n, mean),
        "persistence": filled(context[:, CONTEXT.index("persistence")]),
        "ewma": filled(context[:, CONTEXT.index("ewma")]),
        "har": filled(har_predict(fit_har(context_train, y_train), context)),
    }


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


def r2_score(y: np.ndarray, pred: np.ndarray, reference: float | None = None) -> float:
    """1 - SSE / SST, SST around `reference` (the part's own mean when None)."""
    centre = float(np.mean(y)) if reference is None else reference
    sst = float(np.sum((y - centre) ** 2))
    return float(1.0 - np.sum((y - pred) ** 2) / sst) if sst > 0 else float("nan")


def qlike(log_vol: np.ndarray, pred_log_vol: np.ndarray) -> float:
    """QLIKE on the variance: mean(s/h - log(s/h) - 1), s the realised and h the forecast
    variance; 0 for a perfect forecast, robust to noise in the realised variance."""
    ratio = np.exp(2.0 * (np.asarray(log_vol, np.float64) - np.asarray(pred_log_vol, np.float64)))
    return float(np.mean(ratio - np.log(ratio) - 1.0))


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
) -> dict[str, Any]:
    """The metrics of one forecast (see the module); NaN where a metric is undefined (the IC of a
    constant forecast). R^2 is out of sample as Campbell and Thompson define it: 1 - SSE over the
    SSE of the naive forecast, zero for returns and the training mean (`train_mean`; the part's
    own mean when None) for volatility."""
    y = np.asarray(y, np.float64)
    pred = np.asarray(pred, np.float64).reshape(-1)
    out: dict[str, Any] = {**information_coefficients(y, pred), "mse": float(np.mean((y - pred) ** 2))}
    if kind == "forward_return":
        moved = y != 0
        out["r2"] = r2_score(y, pred, reference=0.0)
        out["hit_rate"] = float((np.sign(pred[moved]) == np.sign(y[moved])).mean()) if moved.any() else float("nan")
        out.update(sign_trading(y, pred, horizon, stride, round_trip))
    else:
        out["r2"] = r2_score(y, pred, reference=train_mean)
        out["qlike"] = qlike(y, pred)
    return out


def evaluate_regression(
    kind: str,
    y_true: np.ndarray,
    pred: np.ndarray,
    y_train: np.ndarray,
    context_train: np.ndarray,
    context: np.ndarray,
    references: dict[str, np.ndarray] | None = None,
    horizon: int = 1,
    stride: int = 1,
    round_trip: float = 0.0,
) -> dict[str, Any]:
    """One part's table (the model, the reference models, the baselines), the best baseline by
    R^2 (for volatility HAR, the one to beat) and the model's R^2 and IC gains over it."""
    train_mean = float(np.mean(y_train))
    score = lambda p: regression_metrics(kind, y_true, p, horizon, stride, round_trip, train_mean)  # noqa: E731
    table: dict[str, dict[str, Any]] = {"model": score(pred)}
    for name, p in (references or {}).items():
        table[name] = score(p)
    base = baseline_predictions(kind, y_train, context_train, context)
    for name, p in base.items():
        table[name] = score(p)
    if kind == "volatility":
        best = "har"
    else:
        best = max(base, key=lambda n: table[n]["r2"] if np.isfinite(table[n]["r2"]) else -np.inf)
    m = table["model"]
    out: dict[str, Any] = {
        "windows": int(y_true.size),
        "target": kind,
        "table": table,
        "best_baseline": best,
        "gain_r2": m["r2"] - table[best]["r2"],
    }
    reference = 0.0 if kind == "forward_return" else train_mean  # the naive forecast R^2 is against
    block = max(2 * horizon // max(stride, 1), 1)
    out["gain_r2_ci95"] = gain_interval(y_true, pred, base[best], reference, block)
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
    from candleflow.evaluation.bootstrap import block_indices, ci95

    y = np.asarray(y, np.float64)
    if y.size < 2:
        return None
    idx = block_indices(int(y.size), block, resamples, np.random.default_rng(0))
    e_model = (y - np.asarray(pred, np.float64).reshape(-1)) ** 2
    e_base = (y - np.asarray(base, np.float64).reshape(-1)) ** 2
    spread = (y - reference) ** 2
    sst = spread[idx].sum(axis=1)
    ok = sst > 0
    if not ok.any():
        return None
    gains = (e_base[idx].sum(axis=1) - e_model[idx].sum(axis=1))[ok] / sst[ok]
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
    "pearson_ic",
    "fold_ic_interval",
    "RETURN_BASELINES",
    "VOLATILITY_BASELINES",
    "baseline_names",
    "baseline_predictions",
    "evaluate_regression",
    "fit_har",
    "har_predict",
    "information_coefficients",
    "qlike",
    "r2_score",
    "regression_metrics",
]
