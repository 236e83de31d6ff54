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

from candleflow.evaluation.regression import baseline_names, fold_ic_interval, pearson_ic, regression_metrics
from candleflow.studies.common import _block_indices, _ci, load_fold, study_header


def fold_arrays(
    kind: str, y_train: np.ndarray, context_train: np.ndarray | None, context_test: np.ndarray | None
) -> dict[str, Any]:
    """What a regression fold file stores beside the forecasts: each baseline's forecast of the
    test windows (fitted on the fold's training windows) and the training mean."""
    from candleflow.evaluation.regression import baseline_predictions

    if context_train is None or context_test is None:
        raise ValueError("a regression fold needs its windows' baseline context")
    base = baseline_predictions(kind, y_train, context_train, context_test)
    return {f"baseline_{k}": v.astype(np.float64) for k, v in base.items()} | {
        "train_mean": np.float64(np.mean(y_train))
    }


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
    return _ci(values) if values.size else None


def summarise_regression(
    cfg: Any,
    prep: Any,
    splits: list[Any],
    folder: Path,
    families: list[str],
    seeds: list[int],
    resamples: int = 1000,
) -> dict[str, Any]:
    """The study's summary (walkforward.json) for a regression target."""
    kind = cfg.labels.kind
    names = baseline_names(kind)

    def parts_of(family: str, seed: int) -> list[dict[str, np.ndarray]]:
        return [load_fold(folder / "folds" / f"{family}-s{seed}-f{k}.npz") for k in range(len(splits))]

    first = parts_of(families[0], seeds[0])
    y = np.concatenate([p["y"] for p in first]).astype(np.float64)
    ends = np.concatenate([p["ends"] for p in first])
    train_mean = np.concatenate([np.full(p["y"].size, float(p["train_mean"])) for p in first])
    base = {b: np.concatenate([p[f"baseline_{b}"] for p in first]) for b in names}
    ref = np.zeros_like(y) if kind == "forward_return" else train_mean  # the naive forecast R^2 is against
    block = max(2 * cfg.labels.horizon, 24)
    idx = _block_indices(y.size, block, resamples, np.random.default_rng(cfg.training.seed))
    h, stride = cfg.labels.horizon, cfg.dataset.stride
    cost = 2 * (cfg.backtest.fee + cfg.backtest.slippage)

    def metrics(pred: np.ndarray) -> dict[str, Any]:
        m = regression_metrics(kind, y, pred, h, stride, cost, None)
        m["r2"] = float(1.0 - np.sum((y - pred) ** 2) / np.sum((y - ref) ** 2))
        return m

    fold_idx = [
        _block_indices(p["y"].size, block, resamples, np.random.default_rng(cfg.training.seed + k))
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

    base_metrics = {b: metrics(p) for b, p in base.items()}
    for b in names:
        ics_b, var_b = fold_ics([first], f"baseline_{b}")
        base_metrics[b]["ic_folds"] = [None if not np.isfinite(v) else float(v) for v in ics_b]
        base_metrics[b]["ic_fold_mean"], base_metrics[b]["ic_fold_ci95"], _ = fold_ic_interval(ics_b, var_b)
    best = "har" if kind == "volatility" else max(names, key=lambda b: base_metrics[b]["r2"])
    best_r2 = _resampled_r2(y, base[best], ref, idx)
    table: dict[str, Any] = {}
    for family in families:
        loaded = {s: parts_of(family, s) for s in seeds}  # each fold file read once
        forecasts = {s: np.concatenate([p["forecast"] for p in loaded[s]]).astype(np.float64) for s in seeds}
        mean_forecast = np.mean(list(forecasts.values()), axis=0)  # the seeds' ensemble
        per_seed = {str(s): metrics(f) for s, f in forecasts.items()}
        r2s = np.array([m["r2"] for m in per_seed.values()])
        per_fold, per_fold_var = fold_ics([loaded[s] for s in seeds], "forecast")
        ic_mean, ic_ci, tau2 = fold_ic_interval(per_fold, per_fold_var)
        finite = per_fold[np.isfinite(per_fold)]
        seconds = sum(float(p["fit_seconds"]) for s in seeds for p in loaded[s])
        resampled = np.mean([_resampled_r2(y, f, ref, idx) for f in forecasts.values()], axis=0)
        table[family] = {
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
            "ic_ci95_windows": _ci_or_none(np.nanmean([_resampled_ic(y, f, idx) for f in forecasts.values()], axis=0)),
            "gain_r2": float(r2s.mean() - base_metrics[best]["r2"]),
            "gain_r2_ci95": _ci(resampled - best_r2),
            "ensemble": metrics(mean_forecast),
            "training_seconds": round(seconds, 1),
            "seeds": per_seed,
            "folds": {
                str(s): [
                    {
                        "fold": k + 1,
                        "windows": int(p["y"].size),
                        "r2": float(
                            1.0
                            - np.sum((p["y"] - p["forecast"]) ** 2)
                            / max(
                                np.sum((p["y"] - (0.0 if kind == "forward_return" else p["train_mean"])) ** 2), 1e-300
                            )
                        ),
                    }
                    for k, p in enumerate(loaded[s])
                ]
                for s in seeds
            },
        }
    return {
        **study_header(prep.candles, splits, seeds, ends, resamples, block),
        "target": kind,
        "best_baseline": best,
        "baselines": base_metrics,
        "table": table,
    }
