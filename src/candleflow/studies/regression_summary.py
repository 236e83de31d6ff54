"""Walk-forward summaries of regression targets: each family's stitched out-of-sample forecasts
scored against the quants' baselines (fitted on each fold's own training windows), with a
moving-block bootstrap 95% interval for its R^2 gain over the baseline to beat (HAR for
volatility, the best of zero / mean / momentum / reversal for forward returns) and, for its IC,
the per-fold ICs combined as a random-effects meta-analysis (`fold_ic_interval`: each fold's
variance from a block bootstrap inside the fold, plus the spread between folds); the bootstrap
interval of the stitched IC over windows is kept beside it (`ic_ci95_windows`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from candleflow.config import RunConfig
from candleflow.dataset.prepare import PreparedData
from candleflow.dataset.targets import target
from candleflow.dataset.windows import WindowDataset
from candleflow.errors import ConfigError
from candleflow.evaluation.baselines import TargetWindows
from candleflow.evaluation.bootstrap import block_indices, ci95
from candleflow.evaluation.forecast_tests import LOSSES, giacomini_white, model_confidence_set
from candleflow.evaluation.regression import (
    against_baseline,
    choose_best_baseline,
    fold_ic_interval,
    overlap_lags,
    pearson_ic,
    r2_score,
    regression_metrics,
)
from candleflow.fs.atomic import write_json
from candleflow.models.fitting import Trained
from candleflow.studies.common import RESULT, SeriesFolds, load_fold, study_header


def fold_arrays(
    kind: str, train: TargetWindows, val: TargetWindows, test: TargetWindows, horizon: int
) -> dict[str, Any]:
    """What a regression fold file stores beside the forecasts: each baseline's forecast of the
    validation and test windows (fitted on the fold's training windows; the rolling HAR also reads
    the windows before each part), the validation targets (the baseline to beat is chosen there),
    the training mean and, where R^2 is against the period's mean, the prevailing mean of the test
    windows."""
    from candleflow.evaluation.baselines import baseline_predictions, prevailing_mean

    on_val = baseline_predictions(kind, train, val, horizon, train)
    on_test = baseline_predictions(kind, train, test, horizon, train + val)
    out: dict[str, Any] = {f"baseline_{k}": v.astype(np.float64) for k, v in on_test.items()}
    out |= {f"val_baseline_{k}": v.astype(np.float64) for k, v in on_val.items()}
    out |= {"val_y": np.asarray(val.y, np.float32), "train_mean": np.float64(np.mean(train.y))}
    if target(kind).r2_reference == "period_mean" and test.ends is not None:
        out["prevailing"] = prevailing_mean(train + val, test, horizon).astype(np.float64)
    return out


def _resampled_r2(y: np.ndarray, pred: np.ndarray, ref: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Out-of-sample R^2 (1 - SSE / SSE of `ref`) on each resample (rows of idx)."""
    e = (y - pred) ** 2
    e0 = (y - ref) ** 2
    return 1.0 - e[idx].sum(axis=1) / np.maximum(e0[idx].sum(axis=1), 1e-300)


def _resampled_ic(y: np.ndarray, pred: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Pearson correlation on each resample, from its moments (NaN for a constant forecast)."""
    a, b = y[idx], pred[idx]
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(axis=1) / den, np.nan)


def _seed_mean(rows: list[np.ndarray]) -> np.ndarray:
    """Per-fold mean over seeds (seeds share the fold's path, so they are not replicates); NaN
    where every seed's forecast was constant on the fold."""
    a = np.asarray(rows, dtype=np.float64)
    n = np.isfinite(a).sum(axis=0)
    return np.where(n > 0, np.nansum(a, axis=0) / np.maximum(n, 1), np.nan)


def _ci_or_none(values: np.ndarray) -> list[float] | None:
    values = values[np.isfinite(values)]
    return ci95(values) if values.size else None


class Stitched:
    """The folds' test windows end to end, with what every forecast is scored against: the
    targets, each baseline's forecast, the naive forecasts the R^2 variants use, and the
    validation targets and baseline forecasts the baseline to beat is chosen on."""

    def __init__(self, kind: str, first: list[dict[str, np.ndarray]], names: tuple[str, ...]) -> None:
        self.kind = kind
        self.y = np.concatenate([p["y"] for p in first]).astype(np.float64)
        self.ends = np.concatenate([p["ends"] for p in first])
        self.base = {b: np.concatenate([p[f"baseline_{b}"] for p in first]) for b in names}
        self.val_y = np.concatenate([p["val_y"] for p in first]).astype(np.float64)
        self.val_base = {b: np.concatenate([p[f"val_baseline_{b}"] for p in first]) for b in names}
        self.train_mean = np.concatenate([np.full(p["y"].size, float(p["train_mean"])) for p in first])
        self.test_mean = np.concatenate([np.full(p["y"].size, float(np.mean(p["y"]))) for p in first])
        self.prevailing = np.concatenate([p["prevailing"] for p in first]) if "prevailing" in first[0] else None
        # what R^2 is against: zero (returns) or each fold's own test mean
        self.around_mean = target(kind).r2_reference == "period_mean"
        self.ref = self.test_mean if self.around_mean else np.zeros_like(self.y)


def _stitched_metrics(st: Stitched, pred: np.ndarray, h: int, stride: int, cost: float) -> dict[str, Any]:
    """A forecast's metrics over the stitched folds, R^2 against each fold's own naive forecast."""
    m = regression_metrics(st.kind, st.y, pred, h, stride, cost, None, st.prevailing)
    m["r2"] = r2_score(st.y, pred, reference=st.ref)
    if st.around_mean:
        m["r2_train_mean"] = r2_score(st.y, pred, reference=st.train_mean)
    return m


def _confidence_sets(st: Stitched, forecasts: dict[str, np.ndarray], block: int, seed: int) -> dict[str, Any]:
    """The model confidence set over every family's seed-mean forecast and every baseline, on MSE
    (and the target's other losses: QLIKE for volatility); a note where `arch` is missing."""
    out: dict[str, Any] = {}
    for name in target(st.kind).losses:
        loss = LOSSES[name]
        mcs = model_confidence_set({k: loss(st.y, f) for k, f in forecasts.items()}, block, seed)
        out[name] = mcs if mcs is not None else "not computed: pip install 'candleflow[stats]' (the arch package)"
    return out


def _family_row(
    st: Stitched,
    loaded: dict[int, list[dict[str, np.ndarray]]],
    best: str,
    score: Any,
    fold_ics: Any,
    idx: np.ndarray,
    lags: int,
    horizon: int,
) -> tuple[dict[str, Any], np.ndarray]:
    """One family's row of the study table (seeds, folds, intervals, losses against `best`), and
    its seeds' mean forecast."""
    seeds = list(loaded)
    forecasts = {s: np.concatenate([p["forecast"] for p in loaded[s]]).astype(np.float64) for s in seeds}
    mean_forecast = np.mean(list(forecasts.values()), axis=0)  # the seeds' ensemble
    per_seed = {str(s): score(f) for s, f in forecasts.items()}
    r2s = np.array([m["r2"] for m in per_seed.values()])
    per_fold, per_fold_var = fold_ics([loaded[s] for s in seeds], "forecast")
    ic_mean, ic_ci, tau2 = fold_ic_interval(per_fold, per_fold_var)
    finite = per_fold[np.isfinite(per_fold)]
    resampled = np.mean([_resampled_r2(st.y, f, st.ref, idx) for f in forecasts.values()], axis=0)
    best_r2 = _resampled_r2(st.y, st.base[best], st.ref, idx)
    losses = against_baseline(st.kind, st.y, mean_forecast, st.base[best], lags)
    for name in target(st.kind).losses:
        loss = LOSSES[name]
        losses[f"gw_p_{name}"] = giacomini_white(loss(st.y, st.base[best]), loss(st.y, mean_forecast), horizon)["p"]
    return {
        "r2_mean": float(r2s.mean()),
        "r2_std": float(r2s.std(ddof=1)) if r2s.size > 1 else 0.0,
        "ic_mean": ic_mean,
        "ic_ci95": ic_ci,
        "ic_folds": [None if not np.isfinite(v) else float(v) for v in per_fold],
        "ic_between_folds_var": tau2,
        "icir_folds": (
            float(finite.mean() / finite.std(ddof=1)) if finite.size > 1 and finite.std(ddof=1) > 0 else None
        ),
        "ic_stitched": float(np.nanmean([m["ic"] for m in per_seed.values()])),
        "ic_ci95_windows": _ci_or_none(np.nanmean([_resampled_ic(st.y, f, idx) for f in forecasts.values()], axis=0)),
        "gain_r2": float(r2s.mean() - score(st.base[best])["r2"]),
        "gain_r2_ci95": ci95(resampled - best_r2),
        "against_best": losses,
        "ensemble": score(mean_forecast),
        "training_seconds": round(sum(float(p["fit_seconds"]) for s in seeds for p in loaded[s]), 1),
        "seeds": per_seed,
        "folds": {
            str(s): [
                {"fold": k + 1, "windows": int(p["y"].size), "r2": _fold_r2(st.kind, p)}
                for k, p in enumerate(loaded[s])
            ]
            for s in seeds
        },
    }, mean_forecast


def _fold_r2(kind: str, p: dict[str, np.ndarray]) -> float:
    """A fold's R^2 (against zero for returns, the fold's own test mean otherwise)."""
    y = p["y"].astype(np.float64)
    return r2_score(y, p["forecast"], reference=None if target(kind).r2_reference == "period_mean" else 0.0)


def summarise_regression(
    cfg: Any,
    prep: Any,
    splits: list[Any],
    folder: Path,
    families: list[str],
    seeds: list[int],
    resamples: int = 1000,
) -> dict[str, Any]:
    """The study's summary (walkforward.json) for a regression target: every family and baseline
    over the stitched folds, the baseline to beat (smallest MSE on the folds' validation windows),
    each family's losses against it (ratios, Diebold-Mariano, Giacomini-White) and the model
    confidence set over all of them."""
    kind = cfg.labels.kind

    def parts_of(family: str, seed: int) -> list[dict[str, np.ndarray]]:
        return [load_fold(folder / "folds" / f"{family}-s{seed}-f{k}.npz") for k in range(len(splits))]

    first = parts_of(families[0], seeds[0])
    names = tuple(k.removeprefix("baseline_") for k in first[0] if k.startswith("baseline_"))
    st = Stitched(kind, first, names)
    block = max(2 * cfg.labels.horizon, 24)
    idx = block_indices(st.y.size, block, resamples, np.random.default_rng(cfg.training.seed))
    h, stride = cfg.labels.horizon, cfg.dataset.stride
    cost = 2 * (cfg.backtest.fee + cfg.backtest.slippage)
    score = lambda pred: _stitched_metrics(st, pred, h, stride, cost)  # noqa: E731

    fold_idx = [
        block_indices(p["y"].size, block, resamples, np.random.default_rng(cfg.training.seed + k))
        for k, p in enumerate(first)
    ]

    def fold_ics(runs: list[list[dict[str, np.ndarray]]], key: str) -> tuple[np.ndarray, np.ndarray]:
        """Per fold: the seeds' mean IC, and the bootstrap variance of that mean inside the fold."""
        ics, var = [], []
        for k, ix in enumerate(fold_idx):
            yk = runs[0][k]["y"].astype(np.float64)
            ics.append(_seed_mean([np.array([pearson_ic(yk, r[k][key])]) for r in runs])[0])
            boot = _seed_mean([_resampled_ic(yk, r[k][key].astype(np.float64), ix) for r in runs])
            boot = boot[np.isfinite(boot)]
            var.append(float(boot.var(ddof=1)) if boot.size > 1 else np.nan)
        return np.array(ics), np.array(var)

    base_metrics = {b: score(p) for b, p in st.base.items()}
    for b in names:
        ics_b, var_b = fold_ics([first], f"baseline_{b}")
        base_metrics[b]["ic_folds"] = [None if not np.isfinite(v) else float(v) for v in ics_b]
        base_metrics[b]["ic_fold_mean"], base_metrics[b]["ic_fold_ci95"], _ = fold_ic_interval(ics_b, var_b)
    val_mse = {b: {"mse": float(np.mean((st.val_y - p) ** 2))} for b, p in st.val_base.items()}
    best = choose_best_baseline(val_mse, names)
    lags = overlap_lags(h, stride)
    table: dict[str, Any] = {}
    forecasts = dict(st.base)
    for family in families:
        loaded = {s: parts_of(family, s) for s in seeds}  # each fold file read once
        table[family], forecasts[family] = _family_row(st, loaded, best, score, fold_ics, idx, lags, -(-h // stride))
    return {
        **study_header(prep.candles, splits, seeds, st.ends, resamples, block),
        "target": kind,
        "target_task": "regress",
        "best_baseline": best,
        "best_baseline_val_mse": {b: v["mse"] for b, v in val_mse.items()},
        "baselines": base_metrics,
        "table": table,
        "confidence_set": _confidence_sets(st, forecasts, block, cfg.training.seed),
    }


def fold_forecasts(
    cfg: RunConfig, prep: PreparedData, train_ds: WindowDataset, trained: Trained, y_true: np.ndarray, probs: np.ndarray
) -> dict[str, Any]:
    """A regression fold's forecasts, and each baseline's fitted on the fold's training windows."""
    part_ds = trained.scored["test"][0]
    out = {"y": y_true.astype(np.float32), "forecast": np.asarray(probs, np.float32).reshape(-1)}
    val_ds, val_y, _ = trained.scored["val"]
    contexts = [c for c in (train_ds.context_at(), val_ds.context_at(), part_ds.context_at()) if c is not None]
    if len(contexts) < 3:
        raise ConfigError("a regression fold's windows carry no baseline context (prepare them with prepare())")
    return out | fold_arrays(
        cfg.labels.kind,
        TargetWindows(train_ds.labels_at(), contexts[0], train_ds.ends),
        TargetWindows(np.asarray(val_y, np.float64), contexts[1], val_ds.ends),
        TargetWindows(np.asarray(y_true, np.float64), contexts[2], part_ds.ends),
        cfg.labels.horizon,
    )


def summarise_forecasts(f: SeriesFolds) -> dict[str, Any]:
    """A regression study: each family's stitched forecasts against the baselines."""
    from candleflow.evaluation.regression import finite_or_none
    from candleflow.runs.walkforward_report import write_regression_walkforward_report

    summary = finite_or_none(
        summarise_regression(f.cfg, f.prep, f.splits, f.folder, f.families, f.seed_list, f.resamples)
    )
    summary |= {"rolling": f.rolling, "objective": f.objective or "r2"}
    write_json(f.folder / RESULT, summary)
    write_regression_walkforward_report(f.folder, summary)
    return summary
