"""The forecasts a regression target's model must beat, made from the causal context of
`dataset.targets` and fitted on the training windows only.

Forward returns: zero, the training mean, momentum (the last horizon's return) and reversal.

Volatility (log realised volatility over the next h bars), in the order a referee asks for them:

- mean: the training mean; persistence: the last h bars' volatility; ewma: an EWMA of the
  variance (span `labels.volatility_span`);
- har: HAR-RV (Corsi 2009): OLS of the target on the daily, weekly and monthly terms;
- har_seasonal: HAR plus one intercept per seasonal slot (hour of the week for intraday bars,
  weekday for daily bars): intraday and weekday seasonality in crypto and stocks is documented,
  and a HAR without it leaves the calendar to any learner to find;
- har_j: HAR plus the daily jump share (Andersen, Bollerslev and Diebold 2007);
- harq: HAR whose daily weight moves with the daily term's measurement error (Bollerslev,
  Patton and Quaedvlieg 2016): the daily term times sqrt(RQ) / RV;
- har_rolling: HAR re-estimated at every forecast on the latest windows whose targets had
  ended by then (as many as the fixed HAR was fitted on), so it follows a drifting level.

With `labels.fine` every term, and the target, are measured from the finer candles' returns:
that is HAR on realised variance from intraday data.

The baseline to beat is the best of them by MSE on the validation windows (the model never sees
those targets' choice), named in the verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from candleflow.dataset.targets import CONTEXT, RETURN_BASELINES, VOLATILITY_BASELINES, target

MIN_FIT_ROWS = 20  # fewer complete rows than this and a HAR forecasts the training mean
ASSET_FIT_ROWS = 250  # an asset's own HAR needs this many complete rows (and 10 per regressor), else the pooled fit
_COL = {name: i for i, name in enumerate(CONTEXT)}
_HAR_COLUMNS = [_COL[c] for c in ("har_d", "har_w", "har_m")]


@dataclass(frozen=True)
class TargetWindows:
    """Windows as the baselines read them: their targets, their context rows (len(CONTEXT)
    columns) and, for the baselines that look at time, each window's last bar (its forecast
    origin; a regression window's target ends `horizon` bars later)."""

    y: np.ndarray
    context: np.ndarray
    ends: np.ndarray | None = None

    def __add__(self, later: TargetWindows) -> TargetWindows:
        """These windows followed by `later` ones (a history grown by a scored period)."""
        ends = None if self.ends is None or later.ends is None else np.concatenate([self.ends, later.ends])
        return TargetWindows(np.concatenate([self.y, later.y]), np.concatenate([self.context, later.context]), ends)


def har_design(context: np.ndarray, variant: str = "har", slots: np.ndarray | None = None) -> np.ndarray:
    """The regressors of a HAR variant (intercept first), float64, NaN where a term is missing.
    `slots`: the seasonal slots that get their own intercept (har_seasonal; the first is the base)."""
    c = np.asarray(context, np.float64)
    cols = [np.ones(c.shape[0]), *(c[:, i] for i in _HAR_COLUMNS)]
    if variant == "har_j":
        cols.append(c[:, _COL["jump_d"]])
    elif variant == "harq":
        cols.append(c[:, _COL["har_d"]] * c[:, _COL["quarticity_d"]])
    elif variant == "har_seasonal":
        slot = c[:, _COL["slot"]]
        cols.extend((slot == s).astype(np.float64) for s in (slots if slots is not None else [])[1:])
    return np.column_stack(cols)


def fit_ols(x: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """Least-squares coefficients on the rows whose regressors and target are finite (None with
    fewer than MIN_FIT_ROWS of them)."""
    ok = np.isfinite(x).all(axis=1) & np.isfinite(y)
    if ok.sum() < max(MIN_FIT_ROWS, x.shape[1] + 1):
        return None
    coef, *_ = np.linalg.lstsq(x[ok], np.asarray(y, np.float64)[ok], rcond=None)
    return coef


def fit_har(context: np.ndarray, y: np.ndarray) -> np.ndarray:
    """HAR-RV's coefficients (intercept, daily, weekly, monthly); the training mean as the
    intercept alone where too few rows are complete."""
    coef = fit_ols(har_design(context), np.asarray(y, np.float64))
    if coef is None:
        return np.array([float(np.nanmean(y)) if np.isfinite(y).any() else 0.0, 0.0, 0.0, 0.0])
    return coef


def har_predict(coef: np.ndarray, context: np.ndarray) -> np.ndarray:
    return har_design(context) @ coef


def seasonal_har(train: TargetWindows, part: TargetWindows) -> np.ndarray:
    """HAR with one intercept per seasonal slot, fitted by the within-slot transformation
    (Frisch-Waugh): the HAR terms and the target demeaned within each slot give the slopes, each
    slot's mean residual its intercept. The same least squares as a design with one dummy column
    per slot, in memory of (rows, 4) rather than (rows, 4 + 167): a pooled run's 750,000 hourly
    windows made that design 1 GB before lstsq copied it. A slot the training windows never saw
    takes the mean intercept."""
    x = har_design(train.context)[:, 1:]
    y = np.asarray(train.y, np.float64)
    slot = train.context[:, _COL["slot"]]
    ok = np.isfinite(x).all(axis=1) & np.isfinite(y) & np.isfinite(slot)
    slots, of = np.unique(slot[ok], return_inverse=True)
    if ok.sum() < max(MIN_FIT_ROWS, x.shape[1] + slots.size + 1):
        return np.full(part.y.shape[0], np.nan)
    x, y = x[ok], y[ok]
    count = np.bincount(of, minlength=slots.size).astype(np.float64)
    x_mean = (
        np.stack([np.bincount(of, weights=x[:, j], minlength=slots.size) for j in range(x.shape[1])], 1)
        / count[:, None]
    )
    y_mean = np.bincount(of, weights=y, minlength=slots.size) / count
    slope, *_ = np.linalg.lstsq(x - x_mean[of], y - y_mean[of], rcond=None)
    intercept = y_mean - x_mean @ slope
    px = har_design(part.context)[:, 1:]
    where = np.searchsorted(slots, part.context[:, _COL["slot"]])
    seen = (where < slots.size) & (slots[np.minimum(where, slots.size - 1)] == part.context[:, _COL["slot"]])
    a = np.where(seen, intercept[np.minimum(where, slots.size - 1)], float(np.average(intercept, weights=count)))
    return a + px @ slope


def har_variant(variant: str, train: TargetWindows, part: TargetWindows) -> np.ndarray:
    """A fixed HAR variant fitted on `train` and applied to `part` (NaN where a term is missing
    or too few training rows are complete)."""
    if variant == "har_seasonal":
        return seasonal_har(train, part)
    coef = fit_ols(har_design(train.context, variant), np.asarray(train.y, np.float64))
    if coef is None:
        return np.full(part.y.shape[0], np.nan)
    return har_design(part.context, variant) @ coef


def known_before(history: TargetWindows, part: TargetWindows, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """(order, k): the history and part windows in the order their targets end (`order` indexes
    history + part), and for each part window how many of them had ended by its origin (its last
    bar): the windows whose targets a forecaster at that time knows."""
    if history.ends is None or part.ends is None:
        raise ValueError("the rolling HAR and the prevailing mean need each window's last bar (ends)")
    ends = np.concatenate([history.ends, part.ends]).astype(np.int64)
    order = np.argsort(ends + horizon, kind="stable")
    k = np.searchsorted((ends + horizon)[order], np.asarray(part.ends, np.int64), side="right")
    return order, k


def prevailing_mean(history: TargetWindows, part: TargetWindows, horizon: int) -> np.ndarray:
    """The mean of every target known at each part window's origin (Campbell and Thompson's
    prevailing mean: the training targets and the part's own that had ended)."""
    order, k = known_before(history, part, horizon)
    y = np.concatenate([history.y, part.y]).astype(np.float64)[order]
    ok = np.isfinite(y)
    csum = np.concatenate([[0.0], np.cumsum(np.where(ok, y, 0.0))])
    count = np.concatenate([[0], np.cumsum(ok)])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count[k] > 0, csum[k] / np.maximum(count[k], 1), np.nan)


def rolling_har(history: TargetWindows, part: TargetWindows, horizon: int, length: int) -> np.ndarray:
    """HAR re-fitted for each part window on the latest `length` windows whose targets had ended
    by its origin (NaN where fewer than MIN_FIT_ROWS of them are complete). The normal equations
    come from running sums of centred terms, so each refit costs a 4 x 4 solve."""
    order, k = known_before(history, part, horizon)
    x = har_design(np.concatenate([history.context, part.context]))[order]
    y = np.concatenate([history.y, part.y]).astype(np.float64)[order]
    ok = np.isfinite(x).all(axis=1) & np.isfinite(y)
    if not ok.any():
        return np.full(part.y.shape[0], np.nan)
    # centred terms keep the running sums' normal equations well conditioned (the intercept absorbs it)
    cx, cy = x[ok].mean(axis=0) * (np.arange(4) > 0), float(y[ok].mean())
    x0, y0 = np.where(ok[:, None], x - cx, 0.0), np.where(ok, y - cy, 0.0)
    xx = np.concatenate([np.zeros((1, 4, 4)), np.cumsum(x0[:, :, None] * x0[:, None, :], axis=0)])
    xy = np.concatenate([np.zeros((1, 4)), np.cumsum(x0 * y0[:, None], axis=0)])
    count = np.concatenate([[0], np.cumsum(ok)])
    lo = np.maximum(k - length, 0)
    a, b, n = xx[k] - xx[lo], xy[k] - xy[lo], count[k] - count[lo]
    coef = (np.linalg.pinv(a, hermitian=True) @ b[:, :, None])[:, :, 0]
    pred = cy + np.einsum("ij,ij->i", har_design(part.context) - cx, coef)
    return np.where(n >= MIN_FIT_ROWS, pred, np.nan)


Baseline = Callable[[TargetWindows, TargetWindows, int, TargetWindows], "np.ndarray | None"]


def _column(name: str, sign: float = 1.0) -> Baseline:
    return lambda train, part, horizon, past: sign * np.asarray(part.context[:, _COL[name]], np.float64)


def _rolling(train: TargetWindows, part: TargetWindows, horizon: int, past: TargetWindows) -> np.ndarray | None:
    if past.ends is None or part.ends is None:
        return None  # without each window's last bar there is no "known by then"
    return rolling_har(past, part, horizon, max(train.y.shape[0], MIN_FIT_ROWS))


# every baseline by name: (train, part, horizon, the windows before part) -> forecast (NaN: none
# there, the training mean is used) or None (not computable here: left out). A target lists
# the ones it is judged against (`dataset.targets.Target.baselines`).
BASELINES: dict[str, Baseline] = {
    "zero": lambda train, part, horizon, past: np.zeros(part.context.shape[0]),
    "mean": lambda train, part, horizon, past: np.full(part.context.shape[0], float(np.mean(train.y))),
    "momentum": _column("momentum"),
    "reversal": _column("momentum", -1.0),
    "persistence": _column("persistence"),
    "ewma": _column("ewma"),
    "har": lambda train, part, horizon, past: har_predict(fit_har(train.context, train.y), part.context),
    "har_seasonal": lambda train, part, horizon, past: har_variant("har_seasonal", train, part),
    "har_j": lambda train, part, horizon, past: har_variant("har_j", train, part),
    "harq": lambda train, part, horizon, past: har_variant("harq", train, part),
    "har_rolling": _rolling,
}


# the cross-section's baselines: (train windows, their assets, part windows, their assets) ->
# forecast or score per part window. The returns' known effects are scores (scored by rank
# across the assets at each time, `evaluation.pooled`); the volatility ones are forecasts.
PooledBaseline = Callable[[TargetWindows, np.ndarray, TargetWindows, np.ndarray], np.ndarray]


def _score_of(name: str, sign: float = 1.0) -> PooledBaseline:
    return lambda train, train_asset, part, part_asset: sign * np.asarray(part.context[:, _COL[name]], np.float64)


def _pooled_har(
    train: TargetWindows, train_asset: np.ndarray, part: TargetWindows, part_asset: np.ndarray
) -> np.ndarray:
    return har_variant("har", train, part)


def _per_asset(variant: str) -> PooledBaseline:
    """A HAR variant fitted on each asset's own training windows (the pooled fit where an asset has
    fewer than ASSET_FIT_ROWS complete ones, or 10 per regressor: a pair listed months before the
    fold's cut has too few for 168 hour-of-week intercepts, and its own fit would extrapolate wildly)."""

    def forecast(
        train: TargetWindows, train_asset: np.ndarray, part: TargetWindows, part_asset: np.ndarray
    ) -> np.ndarray:
        out = har_variant(variant, train, part)  # the pooled fit: where an asset's own is missing
        regressors = har_design(train.context[:1], variant, _slots(train) if variant == "har_seasonal" else None).shape[
            1
        ]
        for a in np.unique(part_asset):
            mine, theirs = train_asset == a, part_asset == a
            complete = np.isfinite(har_design(train.context[mine])).all(axis=1) & np.isfinite(train.y[mine])
            if complete.sum() < max(ASSET_FIT_ROWS, 10 * regressors):
                continue  # too short a history for its own fit (a late listing): the pooled one
            own = har_variant(variant, TargetWindows(train.y[mine], train.context[mine]), _rows(part, theirs))
            # inside the asset's own training range: a short, collinear history (the monthly term near
            # the listing is the weekly one) can give coefficients that explode on a later spike
            y_own = train.y[mine][np.isfinite(train.y[mine])]
            own = np.clip(own, y_own.min(), y_own.max())
            out[theirs] = np.where(np.isfinite(own), own, out[theirs])
        return out

    return forecast


def _slots(train: TargetWindows) -> np.ndarray:
    slots = np.unique(train.context[:, _COL["slot"]])
    return slots[np.isfinite(slots)]


def _rows(windows: TargetWindows, mask: np.ndarray) -> TargetWindows:
    return TargetWindows(windows.y[mask], windows.context[mask])


POOLED_BASELINES: dict[str, PooledBaseline] = {
    "reversal_1": _score_of("ret_1", -1.0),  # 1-bar reversal
    "reversal": _score_of("momentum", -1.0),  # the last horizon's return, reversed
    "momentum_12_1": _score_of("mom_12_1"),
    "low_volatility": _score_of("vol_20d", -1.0),
    "size": _score_of("dollar_volume", -1.0),  # small and illiquid first
    "persistence": _score_of("persistence"),
    "har": _pooled_har,  # one HAR over every asset's training windows
    "har_asset": _per_asset("har"),
    "har_seasonal_asset": _per_asset("har_seasonal"),
}


def pooled_baseline_predictions(
    kind: str, train: TargetWindows, train_asset: np.ndarray, part: TargetWindows, part_asset: np.ndarray
) -> dict[str, np.ndarray]:
    """Each of the target's cross-section baselines on the windows of `part` (float64; a score
    or forecast, NaN where its input is missing: that asset is left out at that time)."""
    return {
        name: np.asarray(POOLED_BASELINES[name](train, train_asset, part, part_asset), np.float64)
        for name in target(kind).pooled_baselines
    }


def baseline_predictions(
    kind: str,
    train: TargetWindows,
    part: TargetWindows,
    horizon: int = 1,
    history: TargetWindows | None = None,
) -> dict[str, np.ndarray]:
    """Each of the target's baselines' forecast for the windows of `part` (float64), fitted on
    `train`; where a baseline's input is missing (a segment's first bars) it forecasts the
    training mean. The rolling HAR reads `history` (default `train`: every window before
    `part`) and needs `ends`; without them it is left out."""
    mean = float(np.mean(train.y))
    past = history if history is not None else train
    out = {}
    for name in target(kind).baselines:
        forecast = BASELINES[name](train, part, horizon, past)
        if forecast is not None:
            v = np.asarray(forecast, np.float64)
            out[name] = np.where(np.isfinite(v), v, mean)
    return out


__all__ = [
    "BASELINES",
    "POOLED_BASELINES",
    "pooled_baseline_predictions",
    "RETURN_BASELINES",
    "VOLATILITY_BASELINES",
    "TargetWindows",
    "baseline_predictions",
    "fit_har",
    "fit_ols",
    "har_design",
    "har_predict",
    "har_variant",
    "seasonal_har",
    "prevailing_mean",
    "rolling_har",
]
