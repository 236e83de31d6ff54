"""Walk-forward of pooled models over a universe (one model over every asset's windows) on a
regression target, scored as the cross-section is (`evaluation.pooled`).

The universe's forecast times are cut into `folds + 1` equal stretches; fold k trains on every
stretch before k (expanding; its last `val_fraction` of times validate: early stopping, the
baseline to beat) and tests on stretch k. Training windows whose target reaches validation, and
validation windows whose target reaches the test stretch, are purged (at the same instants for
every asset). Each (family, fold) and each fold's cross-section baselines are written as
`folds/NAME-fK.npz` (plain arrays), so a rerun of the same study skips what is done.

The summary, per family and baseline: the stitched test periods' figures (daily rank IC with its
Newey-West t, ICIR, books after costs for returns; MSE, QLIKE, R^2 for volatility), the
per-fold rank IC combined by the random-effects meta-analysis the series studies use (an
interval that keeps 95% with few folds), and each family against the baseline to beat (chosen
on the folds' validation windows) on the per-time differences.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from candleflow.config import RunConfig
from candleflow.dataset.split import Split, walk_forward_by_time
from candleflow.dataset.targets import target
from candleflow.dataset.windows import MultiWindowDataset
from candleflow.errors import ConfigError, DataError
from candleflow.evaluation.baselines import pooled_baseline_predictions
from candleflow.evaluation.cross_section_scores import (
    PooledWindows,
    asset_means,
    choose_pooled_best,
    forecast_figures,
)
from candleflow.evaluation.forecast_tests import hac_variance
from candleflow.evaluation.pooled import daily_ic, loss_difference_t, rank_ic_difference
from candleflow.evaluation.regression import finite_or_none, fold_ic_interval
from candleflow.fs.atomic import write_json
from candleflow.fs.guard import check_name
from candleflow.studies.common import (
    RESULT,
    STUDY,
    WalkForwardResult,
    continue_only_the_same_study,
    load_fold,
    save_fold,
)

log = logging.getLogger("candleflow")
FIELDS = ("times", "asset", "y", "forecast", "train_mean")


def _fold_family(cfg: RunConfig, raw: MultiWindowDataset, split: Split, family: str, path: Path) -> None:
    """Train one family on one fold and write its validation and test forecasts."""
    from candleflow.models.fitting import model_and_loader, train_and_score
    from candleflow.scale.pooled import pooled_dataset, pooled_windows

    fcfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"kind": family})})
    ds = pooled_dataset(fcfg, raw, split.parts)
    with tempfile.TemporaryDirectory(prefix="candleflow-fold-") as work:
        trained = train_and_score(fcfg, Path(work), ds, split.parts, model_and_loader(fcfg, None), references=False)
    train = pooled_windows(raw.subset(split.parts["train"]), raw.subset(split.parts["train"]))
    means = asset_means(train, len(raw.parts))
    out: dict[str, np.ndarray] = {}
    for part in ("val", "test"):
        part_ds, _, forecast = trained.scored[part]
        w = pooled_windows(part_ds, part_ds.with_labels(raw.series_labels))
        out |= _part_arrays(part, w, np.asarray(forecast, np.float64).reshape(-1), means)
    save_fold(path, out)


def _part_arrays(part: str, w: PooledWindows, forecast: np.ndarray, means: np.ndarray) -> dict[str, np.ndarray]:
    return {
        f"{part}_times": w.times,
        f"{part}_asset": w.asset,
        f"{part}_y": np.asarray(w.y, np.float64),
        f"{part}_forecast": forecast,
        f"{part}_train_mean": means[w.asset],
    }


def _fold_baselines(cfg: RunConfig, raw: MultiWindowDataset, split: Split, path: Path) -> None:
    """One fold's cross-section baselines, fitted on its training windows."""
    from candleflow.scale.pooled import pooled_windows

    train = pooled_windows(raw.subset(split.parts["train"]), raw.subset(split.parts["train"]))
    means = asset_means(train, len(raw.parts))
    out: dict[str, np.ndarray] = {}
    for part in ("val", "test"):
        sub = raw.subset(split.parts[part])
        w = pooled_windows(sub, sub)
        base = pooled_baseline_predictions(
            cfg.labels.kind, train.target_windows, train.asset, w.target_windows, w.asset
        )
        out |= _part_arrays(part, w, np.zeros(w.y.shape[0]), means)
        out |= {f"{part}_baseline_{name}": f for name, f in base.items()}
    save_fold(path, out)


def pooled_walkforward(
    cfg: RunConfig,
    folds: int = 5,
    families: list[str] | tuple[str, ...] = ("lightgbm", "linear"),
    name: str | None = None,
    val_fraction: float = 0.15,
    progress: Callable[[str], None] | None = None,
) -> WalkForwardResult:
    """Run (or continue) the study and write `runs_dir/walkforward-NAME/walkforward.json`."""
    import datetime as dt

    from candleflow.models.families import family as family_of
    from candleflow.scale.pooled import universe_windows

    if not (cfg.labels.regression and cfg.layout_rules.pooled):
        raise ConfigError("a pooled walk-forward scores a regression target over a universe (universe.symbols)")
    for f in families:
        family_of(f).check_layout(cfg.layout)
    if folds < 2:
        raise ConfigError(f"--folds {folds}: a pooled walk-forward needs at least 2")
    name = check_name(name or f"{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}", "walk-forward name")
    folder = Path(cfg.output.runs_dir) / f"walkforward-{name}"
    (folder / "folds").mkdir(parents=True, exist_ok=True)
    setup = {
        "folds": folds,
        "val_fraction": val_fraction,
        "config": cfg.model_dump(mode="json", exclude={"output", "cluster"}),  # where it runs changes no fold
    }
    continue_only_the_same_study(folder, setup, STUDY)
    write_json(folder / STUDY, setup)
    u = universe_windows(cfg)
    raw, names, per_year = u.raw, u.names, u.per_year
    splits = walk_forward_by_time(raw.end_times(), raw.label_end_times(cfg.dataset.embargo), folds, val_fraction)
    jobs = [("baselines", k) for k in range(folds)] + [(f, k) for f in families for k in range(folds)]
    for done, (who, k) in enumerate(jobs, 1):
        path = folder / "folds" / f"{who}-f{k}.npz"
        if not path.is_file():
            if who == "baselines":
                _fold_baselines(cfg, raw, splits[k], path)
            else:
                _fold_family(cfg, raw, splits[k], who, path)
        if progress is not None:
            progress(f"{done}/{len(jobs)} {who} fold {k + 1}")
    summary = summarise_pooled(cfg, folder, list(families), folds, per_year, progress)
    summary |= {
        "series": names,
        "folds_detail": [
            {p: {"windows": int(s.parts[p].size)} for p in s.parts} | {"starts": s.summary()} for s in splits
        ],
        "rows": int(sum(len(p.features) for p in raw.parts)),
    }
    write_json(folder / RESULT, finite_or_none(summary))
    from candleflow.runs.pooled_tables import write_pooled_walkforward_report

    write_pooled_walkforward_report(folder, finite_or_none(summary))
    return WalkForwardResult(folder, summary)


def _stitched(folder: Path, who: str, folds: int, part: str) -> dict[str, np.ndarray]:
    files = [load_fold(folder / "folds" / f"{who}-f{k}.npz") for k in range(folds)]
    keys = [k for k in files[0] if k.startswith(f"{part}_")]
    out = {k[len(part) + 1 :]: np.concatenate([f[k] for f in files]) for k in keys}
    out["fold"] = np.concatenate([np.full(f[f"{part}_y"].shape[0], i) for i, f in enumerate(files)])
    return out


def _windows(a: dict[str, np.ndarray]) -> PooledWindows:
    return PooledWindows(a["times"], a["asset"], a["y"], np.empty((a["y"].shape[0], 0), np.float32))


def _fold_rank_ics(w: PooledWindows, forecast: np.ndarray, fold: np.ndarray, horizon: int) -> dict[str, Any]:
    """Each fold's mean daily rank IC with its Newey-West variance, combined (fold_ic_interval)."""
    means, variances = [], []
    for k in np.unique(fold):
        m = fold == k
        r = daily_ic(w.times[m], w.y[m], forecast[m])["rank_ic"]
        r = r[np.isfinite(r)]
        if r.size < 3:
            means.append(np.nan)
            variances.append(np.nan)
            continue
        means.append(float(r.mean()))
        variances.append(hac_variance(r - r.mean(), max(horizon - 1, 0)) / r.size)
    mean, ci, tau2 = fold_ic_interval(np.array(means), np.array(variances))
    return {"rank_ic_folds": means, "rank_ic_meta": mean, "rank_ic_ci95": ci, "rank_ic_tau2": tau2}


def summarise_pooled(
    cfg: RunConfig,
    folder: Path,
    families: list[str],
    folds: int,
    per_year: float,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The study's summary (see the module) from its fold files; `progress` hears of each forecast
    scored (a large universe's take seconds each)."""
    say = progress or log.info
    kind, h = cfg.labels.kind, cfg.labels.horizon
    cost = cfg.backtest.fee + cfg.backtest.slippage
    base_val, base_test = _stitched(folder, "baselines", folds, "val"), _stitched(folder, "baselines", folds, "test")
    names = [k[len("baseline_") :] for k in base_test if k.startswith("baseline_")]
    val_w = _windows(base_val)
    val_table = {
        n: forecast_figures(kind, val_w, base_val[f"baseline_{n}"], base_val["train_mean"], h, cost, per_year)
        for n in names
    }
    best = choose_pooled_best(kind, val_table, names)
    test_w = _windows(base_test)
    forecasts = {n: base_test[f"baseline_{n}"] for n in names}
    rows: dict[str, dict[str, Any]] = {}
    for fam in families:
        fam_test = _stitched(folder, fam, folds, "test")
        if not (
            np.array_equal(fam_test["times"], base_test["times"])
            and np.array_equal(fam_test["asset"], base_test["asset"])
        ):
            raise DataError(f"{folder}: {fam}'s test windows differ from the baselines'; delete the folder and rerun")
        forecasts = {fam: fam_test["forecast"], **forecasts}
    for done, (n, f) in enumerate(forecasts.items(), 1):
        say(f"scoring {n} ({done} of {len(forecasts)}) on {test_w.y.shape[0]:,} test windows")
        row = forecast_figures(kind, test_w, f, base_test["train_mean"], h, cost, per_year)
        row |= _fold_rank_ics(test_w, f, base_test["fold"], h)
        if n in families:
            if target(kind).trades_sign:
                row["vs_best_rank_ic"] = rank_ic_difference(test_w.times, test_w.y, f, forecasts[best], h)
            else:
                for loss in target(kind).losses:
                    row[f"vs_best_{loss}"] = loss_difference_t(test_w.times, test_w.y, f, forecasts[best], loss, h)
        rows[n] = row
    return {
        "kind": "pooled",
        "target": kind,
        "horizon": h,
        "folds": folds,
        "families": families,
        "baselines": names,
        "best_baseline": best,
        "best_baseline_chosen_on": "the folds' validation windows",
        "cost_per_side": cost,
        "assets": int(np.unique(test_w.asset).size),
        "test_times": int(np.unique(test_w.times).size),
        "test_windows": int(test_w.y.shape[0]),
        "table": rows,
    }


__all__ = ["pooled_walkforward", "summarise_pooled"]
