"""Walk-forward evaluation of model families: retrain at every fold, stitch the out-of-sample
predictions into one series per family and seed, and say with a block-bootstrap confidence
interval whether a family's edge over the naive baselines (and over LightGBM) is more than noise.

Every (family, seed, fold) trains through the same `train_and_score` as `candleflow run`, on the
fold's training period (its last share validates: checkpoints, early stopping) and predicts the
fold's test period, which no fitted or selected label ever saw. Each result is written atomically
as soon as it exists, so a stopped study continues where it stopped.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from candleflow.config import RunConfig
from candleflow.data.candles import Candles
from candleflow.dataset.prepare import PreparedData, prepare
from candleflow.dataset.split import Split, walk_forward_splits
from candleflow.errors import ConfigError
from candleflow.evaluation.backtest import buy_and_hold, configured_backtest, performance
from candleflow.evaluation.baselines import TargetWindows
from candleflow.evaluation.bootstrap import balanced_accuracy_resampled, block_indices, ci95
from candleflow.evaluation.funding import funding_for
from candleflow.evaluation.metrics import baseline_predictions, choose_margin, classification_metrics, decide
from candleflow.evaluation.trading import sides_of, trade_score
from candleflow.fs.atomic import write_json, write_text
from candleflow.fs.guard import check_name
from candleflow.models import families as registry
from candleflow.studies.common import (
    BASELINES,
    WalkForwardResult,
    continue_only_the_same_study,
    load_fold,
    save_fold,
    study_header,
)

log = logging.getLogger("candleflow")

RESULT = "walkforward.json"
STUDY = "study.json"  # the settings the fold files were made with


def study_families() -> list[str]:
    """The registered families a walk-forward study trains: those over windows or lagged rows of
    one series (the CNN renders images from candles of one run, not per fold)."""
    return [
        n for n in registry.names() if registry.family(n).inputs != "images" and "series" in registry.family(n).layouts
    ]


def walkforward(
    cfg: RunConfig,
    folds: int = 6,
    seeds: int = 1,
    families: list[str] | tuple[str, ...] = ("lstm", "lightgbm", "linear"),
    rolling: bool = False,
    name: str | None = None,
    val_fraction: float = 0.15,
    resamples: int = 1000,
    progress: Callable[[str], None] | None = None,
    dask: bool = False,
    objective: str | None = None,
) -> WalkForwardResult:
    """Train every family with `seeds` seeds on `folds` walk-forward folds of the periods before
    the test period, stitch the test predictions, and write `runs_dir/walkforward-NAME/`.

    With `dask`, the (family, seed, fold) tasks run on the `cluster:` config's Dask cluster (local
    worker processes, or `cluster.scheduler`; the workers must see the runs folder): each task
    prepares the data, trains and writes its fold file atomically, so a killed worker's task is
    rerun by Dask and a rerun of the study skips every fold already written.

    `objective` (classes: balanced_accuracy, sharpe or return) chooses each fold's decision margin
    again on that fold's validation period, so one study's folds can be read under several
    objectives (the same --name, another --objective: nothing retrains). Regression targets take
    ic or r2: which figure the verdict leads with."""
    check_objective(cfg, objective)
    from candleflow.runs.tracking import check_tracking, track

    check_tracking(cfg)
    if cfg.layout == "universe" and cfg.labels.regression:  # one pooled model over every asset
        from candleflow.studies.pooled_walkforward import pooled_walkforward

        if rolling or dask or seeds > 1:
            raise ConfigError(
                "a pooled study runs expanding folds, one seed, in this process (no --rolling, --dask, --seeds)"
            )
        return pooled_walkforward(cfg, folds, families, name, val_fraction, progress)
    if cfg.layout == "panel":  # the panel GPT and the pooled references, over (window, ticker) labels
        from candleflow.studies.panel_walkforward import panel_walkforward

        if rolling or dask:
            raise ConfigError(
                "a panel study runs expanding folds in this process; --rolling and --dask are for single series"
            )
        log.info(
            "panel study: model.kind %s and the references %s (--families applies to single series)",
            cfg.model.kind,
            ", ".join(cfg.evaluation.reference_models),
        )
        return panel_walkforward(cfg, folds, seeds, name, val_fraction, resamples, progress)
    folder = _study_folder(cfg, families, folds, seeds, rolling, name, val_fraction)
    prep = prepare(cfg)
    splits = _splits(cfg, prep, folds, val_fraction, rolling)
    seed_list = [cfg.training.seed + s for s in range(seeds)]
    grid = [(f, s, k) for f in families for s in seed_list for k in range(len(splits))]
    if dask:
        _run_on_dask(cfg, grid, folder, folds, val_fraction, rolling, progress)
    for done, (family, seed, k) in enumerate(grid, 1):
        path = folder / "folds" / f"{family}-s{seed}-f{k}.npz"
        if not path.is_file():
            _train_fold(cfg, prep, splits[k], family, seed, path)
        if progress is not None:
            progress(f"{done}/{len(grid)} {family} seed {seed} fold {k + 1}")
    summary = _summarise_and_report(cfg, prep, splits, folder, list(families), seed_list, resamples, rolling, objective)
    track(cfg, folder.name, summary, [folder / RESULT, folder / "report.html"], kind="walkforward")
    return WalkForwardResult(folder, summary)


def _summarise_and_report(
    cfg: RunConfig,
    prep: Any,
    splits: list[Any],
    folder: Path,
    families: list[str],
    seed_list: list[int],
    resamples: int,
    rolling: bool,
    objective: str | None,
) -> dict[str, Any]:
    """A series study's folds summarised (a regression's or a classifier's), written as its
    result and its report."""
    if cfg.labels.regression:
        from candleflow.evaluation.regression import finite_or_none
        from candleflow.runs.walkforward_report import write_regression_walkforward_report
        from candleflow.studies.regression_summary import summarise_regression

        summary = finite_or_none(summarise_regression(cfg, prep, splits, folder, families, seed_list, resamples))
        summary |= {"rolling": rolling, "objective": objective or "r2"}
        write_json(folder / RESULT, summary)
        write_regression_walkforward_report(folder, summary)
    else:
        from candleflow.runs.walkforward_report import write_walkforward_report

        summary = summarise(cfg, prep, splits, folder, families, seed_list, resamples, objective)
        summary |= {"target": cfg.labels.kind, "target_task": "classify", "rolling": rolling}
        summary["objective"] = objective or (
            f"{cfg.evaluation.margin_objective} (chosen when each fold trained)"
            if cfg.evaluation.decision_margin == "auto"
            else f"decision_margin {cfg.evaluation.decision_margin}"
        )
        write_json(folder / RESULT, summary)
        write_walkforward_report(folder, summary, equity_curves(cfg, prep, folder, families, seed_list[0]))
    return summary


def _study_folder(
    cfg: RunConfig,
    families: list[str] | tuple[str, ...],
    folds: int,
    seeds: int,
    rolling: bool,
    name: str | None,
    val_fraction: float,
) -> Path:
    """The study's folder, its setup written (or the same setup found: a study continues only
    with the folds and config it was made with), after checking the families and counts."""
    known = study_families()
    unknown = [f for f in families if f not in known]
    if unknown or not families:
        what = f"{unknown[0]!r}" if unknown else "is empty"
        raise ConfigError(f"--families {what}: expected some of {', '.join(known)}")
    if seeds < 1 or folds < 1:
        raise ConfigError(f"--folds {folds} --seeds {seeds}: expected at least 1 of each")
    name = check_name(name or f"{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}", "walk-forward name")
    folder = Path(cfg.output.runs_dir) / f"walkforward-{name}"
    study = cfg.model_copy(deep=True)
    study.output = type(cfg.output)()  # where the study lives and where it runs do not change its folds
    study.cluster = type(cfg.cluster)()
    setup = {"folds": folds, "rolling": rolling, "val_fraction": val_fraction, "config": study.model_dump(mode="json")}
    continue_only_the_same_study(folder, setup, STUDY)
    (folder / "folds").mkdir(parents=True, exist_ok=True)
    write_json(folder / STUDY, setup)
    write_text(folder / "config.yaml", cfg.to_yaml())
    return folder


def check_objective(cfg: RunConfig, objective: str | None) -> None:
    """A one-line error for an objective the target cannot be scored by."""
    if objective is None:
        return
    allowed = cfg.labels.rules.objectives
    if objective not in allowed:
        what = f"labels.kind {cfg.labels.kind}"
        raise ConfigError(f"--objective {objective!r}: {what} is scored by {', '.join(allowed)}")
    if cfg.layout in ("panel", "universe"):
        raise ConfigError("--objective re-chooses one series' decision rule; a universe or panel study has none")


def fold_task(
    config_json: str, family: str, seed: int, k: int, folds: int, val_fraction: float, rolling: bool, path: str
) -> str:
    """One (family, seed, fold) on a worker: prepare the data, train, write the fold file
    atomically (a no-op when it exists). The worker-side unit of a walk-forward study on Dask."""
    from candleflow.config import RunConfig

    out = Path(path)
    if not out.is_file():
        cfg = RunConfig.model_validate_json(config_json)
        prep = prepare(cfg)
        _train_fold(cfg, prep, _splits(cfg, prep, folds, val_fraction, rolling)[k], family, seed, out)
    return path


def _run_on_dask(
    cfg: RunConfig,
    grid: list[tuple[str, int, int]],
    folder: Path,
    folds: int,
    val_fraction: float,
    rolling: bool,
    progress: Callable[[str], None] | None,
) -> None:
    from distributed import as_completed

    from candleflow.scale.cluster import dask_client

    todo = [(f, s, k) for f, s, k in grid if not (folder / "folds" / f"{f}-s{s}-f{k}.npz").is_file()]
    if not todo:
        return
    c = cfg.cluster
    payload = cfg.model_dump_json()
    with dask_client(c.scheduler, c.workers, c.threads_per_worker, c.memory_limit, c.connect_timeout) as client:
        futures = [
            client.submit(
                fold_task,
                payload,
                f,
                s,
                k,
                folds,
                val_fraction,
                rolling,
                str((folder / "folds" / f"{f}-s{s}-f{k}.npz").resolve()),
                key=f"walkforward-{folder.name}-{f}-s{s}-f{k}",
                retries=c.retries,
                pure=False,
            )
            for f, s, k in todo
        ]
        for done, fut in enumerate(as_completed(futures), 1):
            fut.result()  # a task that failed after its retries: its error, one line, from the CLI
            if progress is not None:
                progress(f"{done}/{len(todo)} fold tasks on Dask")


def _splits(cfg: RunConfig, prep: PreparedData, folds: int, val_fraction: float, rolling: bool) -> list[Split]:
    """Folds over every window before the test period (kept untouched when test_fraction > 0)."""
    ds = prep.dataset
    n_test = prep.split.parts["test"].size if "test" in prep.split.parts else 0
    positions = np.arange(len(ds) - n_test) if n_test else np.arange(len(ds))
    if n_test:  # the windows right before the test period may not look into it either
        positions = positions[prep.labels.t1[ds.ends[positions]] + cfg.dataset.embargo < ds.ends[len(ds) - n_test]]
    return walk_forward_splits(ds.ends, prep.labels.t1, folds, val_fraction, cfg.dataset.embargo, rolling, positions)


def _train_fold(cfg: RunConfig, prep: PreparedData, split: Split, family: str, seed: int, path: Path) -> None:
    """Fit one family with one seed on one fold and save its test predictions (atomically)."""
    from candleflow.models.fitting import model_and_loader, train_and_score

    fcfg = cfg.model_copy(deep=True)
    fcfg.model.kind = family
    fcfg.training.seed = seed
    work = Path(tempfile.mkdtemp(prefix=".work-", dir=path.parent))
    t0 = time.perf_counter()
    try:
        trained = train_and_score(
            fcfg, work, prep.dataset, split.parts, model_and_loader(fcfg, prep), references=False, candles=prep.candles
        )
        part_ds, y_true, probs = trained.scored["test"]
        refitted: dict[str, Any] = {}
        if cfg.training.refit:  # the fold's model trained again on train + validation, as it would be deployed
            from candleflow.models.refit import refit

            positions = np.sort(np.concatenate([split.parts["train"], split.parts["val"]]))
            refitted = refit(fcfg, prep.dataset, positions, trained, prep, work / "refit")
            probs = registry.family(family).probabilities(refitted.pop("model"), part_ds, fcfg, prep.candles)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds = time.perf_counter() - t0
    train_ds = prep.dataset.subset(split.parts["train"])
    y_train = train_ds.labels_at()
    arrays: dict[str, Any] = {"ends": part_ds.ends.astype(np.int64), "fit_seconds": np.float64(seconds)}
    if refitted:  # what the refit trained: epochs (networks) or boosting rounds, and how many windows
        arrays["refit_windows"] = np.int64(refitted["windows"])
        arrays["refit_epochs"] = np.int64(refitted.get("epochs") or refitted.get("rounds") or 0)
    if cfg.labels.regression:  # the forecasts, and each baseline's fitted on this fold's training windows
        from candleflow.studies.regression_summary import fold_arrays

        arrays |= {"y": y_true.astype(np.float32), "forecast": np.asarray(probs, np.float32).reshape(-1)}
        val_ds, val_y, _ = trained.scored["val"]
        contexts = [c for c in (train_ds.context_at(), val_ds.context_at(), part_ds.context_at()) if c is not None]
        if len(contexts) < 3:
            raise ConfigError("a regression fold's windows carry no baseline context (prepare them with prepare())")
        arrays |= fold_arrays(
            cfg.labels.kind,
            TargetWindows(y_train, contexts[0], train_ds.ends),
            TargetWindows(np.asarray(val_y, np.float64), contexts[1], val_ds.ends),
            TargetWindows(np.asarray(y_true, np.float64), contexts[2], part_ds.ends),
            cfg.labels.horizon,
        )
    else:
        train_ends = prep.dataset.ends[split.parts["train"]]
        val_ds, val_y, val_probs = trained.scored["val"]
        arrays |= {  # the fold's validation period too: a study re-chooses its decision rule by --objective
            "val_ends": val_ds.ends.astype(np.int64),
            "val_y": np.asarray(val_y).astype(np.int8),
            "val_probs": np.asarray(val_probs, np.float32),
        }
        arrays |= {
            "y": y_true.astype(np.int8),
            "probs": probs.astype(np.float32),
            "class_counts": np.bincount(y_train[y_train >= 0], minlength=3),
            "margin": np.float64(trained.metrics["test"]["decision_margin"]),  # the fold's rule (auto: on its val)
            "train_last_end": np.int64(train_ends.max()),
            "train_last_label_end": np.int64(prep.labels.t1[train_ends].max()),
        }
    save_fold(path, arrays)
    log.info("walk-forward %s seed %d: %d test windows, %.1fs", family, seed, y_true.size, seconds)


def _margin_rule(
    cfg: RunConfig, prep: PreparedData, objective: str | None, funding: np.ndarray | None
) -> Callable[[dict[str, np.ndarray]], float]:
    """A fold's decision rule: chosen again on its validation period by the study's --objective,
    else the one it chose when it trained (decision_margin auto) or the configured one."""
    chosen: dict[int, float] = {}

    def margin(p: dict[str, np.ndarray]) -> float:
        if objective is None:
            return float(p["margin"]) if "margin" in p else cfg.evaluation.margin
        key = id(p)
        if key not in chosen:
            if "val_probs" not in p:
                raise ConfigError(
                    "--objective re-chooses each fold's decision rule on its validation period, which this "
                    "study's fold files do not hold (written by an older candleflow); rerun it under another --name"
                )
            score = None
            if objective != "balanced_accuracy":
                ends_v = p["val_ends"]
                score = lambda d: trade_score(prep.candles, ends_v, d, cfg, objective, funding)  # noqa: E731
            chosen[key] = choose_margin(p["val_y"], p["val_probs"], score=score)[0]
        return chosen[key]

    return margin


@dataclass
class _Stitched:
    """One family's folds, per seed: the fold files, the stitched test period, per-fold scores."""

    parts: dict[int, list[dict[str, np.ndarray]]]
    runs: dict[int, dict[str, np.ndarray]]
    per_fold: dict[int, list[dict[str, Any]]]
    seconds: float


def _stitch_family(
    folder: Path, family: str, seeds: list[int], n_folds: int, margin: Callable[[dict[str, np.ndarray]], float]
) -> _Stitched:
    out = _Stitched({}, {}, {}, 0.0)
    for seed in seeds:
        parts = [load_fold(folder / "folds" / f"{family}-s{seed}-f{k}.npz") for k in range(n_folds)]
        out.parts[seed] = parts
        out.seconds += sum(float(p["fit_seconds"]) for p in parts)
        decided = [decide(p["probs"], margin(p)) for p in parts]
        out.runs[seed] = {
            "ends": np.concatenate([p["ends"] for p in parts]),
            "y": np.concatenate([p["y"] for p in parts]),
            "probs": np.concatenate([p["probs"] for p in parts]),
            "pred": np.concatenate(decided),
        }
        out.per_fold[seed] = [
            {"fold": k + 1, "windows": int(p["y"].size)}
            | {m: classification_metrics(p["y"], d)[m] for m in ("balanced_accuracy", "macro_f1")}
            for k, (p, d) in enumerate(zip(parts, decided, strict=True))
        ]
    return out


def _family_entry(
    cfg: RunConfig,
    prep: PreparedData,
    st: _Stitched,
    y: np.ndarray,
    ends: np.ndarray,
    idx: np.ndarray,
    best_base: np.ndarray,
    base_point: dict[str, float],
    margin: Callable[[dict[str, np.ndarray]], float],
    funding: np.ndarray | None,
) -> tuple[dict[str, Any], np.ndarray]:
    """One family's row of the study table, and its resampled balanced accuracy."""
    scores = [classification_metrics(y, r["pred"]) for r in st.runs.values()]
    ba = np.array([s["balanced_accuracy"] for s in scores])
    f1 = np.array([s["macro_f1"] for s in scores])
    resampled = np.mean([balanced_accuracy_resampled(y, r["pred"], idx) for r in st.runs.values()], axis=0)
    trading = [_stitched_backtest(cfg, prep, ends, r["pred"], funding) for r in st.runs.values()]
    return {
        "balanced_accuracy_mean": float(ba.mean()),
        "balanced_accuracy_std": float(ba.std(ddof=1)) if ba.size > 1 else 0.0,
        "macro_f1_mean": float(f1.mean()),
        "edge_over_baseline": float(ba.mean() - max(base_point.values())),
        "edge_over_baseline_ci95": ci95(resampled - best_base),
        "sharpe_mean": float(np.mean([t["sharpe"] for t in trading])),
        "total_return_mean": float(np.mean([t["total_return"] for t in trading])),
        "trades_mean": float(np.mean([t["trades"] for t in trading])),
        **{
            f"{k}_mean": _mean_or_none([t[k] for t in trading])
            for k in ("hit_rate", "average_win", "average_loss", "turnover", "cost_share", "costs", "gross_move")
        },
        "margins": {str(seed): [margin(p) for p in st.parts[seed]] for seed in st.runs},
        "training_seconds": round(st.seconds, 1),
        "seeds": {
            str(seed): {"balanced_accuracy": float(b), "macro_f1": float(m)} for seed, b, m in zip(st.runs, ba, f1)
        },
        "folds": {str(seed): st.per_fold[seed] for seed in st.runs},
    }, resampled


def summarise(
    cfg: RunConfig,
    prep: PreparedData,
    splits: list[Split],
    folder: Path,
    families: list[str],
    seeds: list[int],
    resamples: int = 1000,
    objective: str | None = None,
) -> dict[str, Any]:
    """Per family: per fold and stitched metrics per seed, mean and std over seeds, the stitched
    backtest, and block-bootstrap CIs of the edge over the best baseline and over LightGBM. With
    `objective` (balanced_accuracy, sharpe, return) every fold's decision margin is chosen again on
    its own validation period to maximise it (never on test)."""
    funding = funding_for(cfg, prep.candles)[0]  # read once for the study's every backtest
    margin = _margin_rule(cfg, prep, objective, funding)
    stitched = {f: _stitch_family(folder, f, seeds, len(splits), margin) for f in families}
    first = stitched[families[0]].runs[seeds[0]]
    y, ends = first["y"], first["ends"]
    baselines = _stitched_baselines(folder, families[0], seeds[0], len(splits), cfg.training.seed)
    block = max(2 * cfg.labels.horizon, 24)
    idx = block_indices(y.size, block, resamples, np.random.default_rng(cfg.training.seed))
    base_ba = {b: balanced_accuracy_resampled(y, p, idx) for b, p in baselines.items()}
    best_base = np.max(np.stack(list(base_ba.values())), axis=0)  # the best baseline in each resample
    base_point = {b: classification_metrics(y, p)["balanced_accuracy"] for b, p in baselines.items()}
    table: dict[str, Any] = {}
    resampled: dict[str, np.ndarray] = {}
    for family in families:
        table[family], resampled[family] = _family_entry(
            cfg, prep, stitched[family], y, ends, idx, best_base, base_point, margin, funding
        )
    if "lightgbm" in stitched:
        gbm_ba = _balanced_accuracy_resampled_mean(y, stitched["lightgbm"], idx)
        gbm_point = np.mean(
            [classification_metrics(y, r["pred"])["balanced_accuracy"] for r in stitched["lightgbm"].runs.values()]
        )
        for family in families:
            if family != "lightgbm":
                table[family]["edge_over_lightgbm"] = float(table[family]["balanced_accuracy_mean"] - gbm_point)
                table[family]["edge_over_lightgbm_ci95"] = ci95(resampled[family] - gbm_ba)
    span = _span(cfg, prep, ends)
    buy_hold = performance(
        buy_and_hold(prep.candles, span, cfg.backtest.fee, cfg.backtest.slippage, funding, cfg.backtest.capital),
        prep.candles.interval,
        _per_year(prep.candles),
    )
    return {
        **study_header(prep.candles, splits, seeds, ends, resamples, block),
        "baselines": base_point,
        "buy_and_hold": {"sharpe": buy_hold["sharpe"], "total_return": buy_hold["total_return"]},
        "table": table,
    }


def _balanced_accuracy_resampled_mean(y: np.ndarray, st: _Stitched, idx: np.ndarray) -> np.ndarray:
    return np.mean([balanced_accuracy_resampled(y, r["pred"], idx) for r in st.runs.values()], axis=0)


def _stitched_baselines(folder: Path, family: str, seed: int, n_folds: int, rng_seed: int) -> dict[str, np.ndarray]:
    """Each baseline's predictions per fold (from that fold's training class counts), stitched."""
    out: dict[str, list[np.ndarray]] = {b: [] for b in BASELINES}
    for k in range(n_folds):
        p = load_fold(folder / "folds" / f"{family}-s{seed}-f{k}.npz")
        y_train = np.repeat(np.arange(3), p["class_counts"])
        for b, pred in baseline_predictions(y_train, p["y"].size, rng_seed + k).items():
            out[b].append(pred)
    return {b: np.concatenate(v) for b, v in out.items()}


def _per_year(candles: Candles) -> float:
    from candleflow.data.calendar import bars_per_year

    return bars_per_year(candles.calendar, candles.interval, int(candles.open_time[-1]))


def _span(cfg: RunConfig, prep: PreparedData, ends: np.ndarray) -> tuple[int, int]:
    return int(ends[0]), min(len(prep.candles), int(ends[-1]) + cfg.labels.horizon + 1)


def _mean_or_none(values: list[Any]) -> float | None:
    kept = [float(v) for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def _stitched_backtest(
    cfg: RunConfig, prep: PreparedData, ends: np.ndarray, pred: np.ndarray, funding: np.ndarray | None
) -> dict[str, Any]:
    span = _span(cfg, prep, ends)
    res = configured_backtest(prep.candles, ends, sides_of(pred), cfg, span, funding=funding)
    return performance(res, prep.candles.interval, _per_year(prep.candles))


def equity_curves(cfg: RunConfig, prep: PreparedData, folder: Path, families: list[str], seed: int) -> dict[str, Any]:
    """Stitched equity curves of each family (one seed) and buy and hold, for the report."""
    curves: dict[str, np.ndarray] = {}
    ends_all = None
    funding = funding_for(cfg, prep.candles)[0]
    for family in families:
        parts = sorted((folder / "folds").glob(f"{family}-s{seed}-f*.npz"), key=lambda p: int(p.stem.rsplit("f", 1)[1]))
        loaded = [load_fold(p) for p in parts]
        ends_all = np.concatenate([p["ends"] for p in loaded])
        pred = np.concatenate(
            [decide(p["probs"], float(p["margin"]) if "margin" in p else cfg.evaluation.margin) for p in loaded]
        )
        span_all = _span(cfg, prep, ends_all)
        res = configured_backtest(prep.candles, ends_all, sides_of(pred), cfg, span_all, funding=funding)
        curves[family] = res.equity
    assert ends_all is not None  # families is never empty
    span = _span(cfg, prep, ends_all)
    curves["buy_and_hold"] = buy_and_hold(
        prep.candles, span, cfg.backtest.fee, cfg.backtest.slippage, funding, cfg.backtest.capital
    ).equity
    return {"times": prep.candles.open_time[span[0] : span[1]], "curves": curves}
