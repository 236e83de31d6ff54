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
from candleflow.dataset.prepare import PreparedData, prepare
from candleflow.dataset.split import Split, walk_forward_splits
from candleflow.errors import ConfigError
from candleflow.fs.atomic import write_json, write_text
from candleflow.fs.guard import check_name
from candleflow.models import families as registry
from candleflow.studies.class_summary import fold_decisions, summarise_decisions
from candleflow.studies.common import (
    RESULT,
    STUDY,
    SeriesFolds,
    WalkForwardResult,
    continue_only_the_same_study,
    save_fold,
)
from candleflow.studies.regression_summary import fold_forecasts, summarise_forecasts

log = logging.getLogger("candleflow")


def study_families() -> list[str]:
    """The registered families a walk-forward study trains: those over windows or lagged rows of
    one series (the CNN renders images from candles of one run, not per fold)."""
    return [n for n in registry.names() if registry.family(n).inputs != "images" and registry.family(n).fits("series")]


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
    study = STUDIES.get((cfg.layout, cfg.labels.task)) or STUDIES.get((cfg.layout, "*"))
    if study is not None:  # a study across assets: its own folds, in this process
        asked = StudyRequest(cfg, folds, seeds, tuple(families), rolling, name, val_fraction, resamples, progress, dask)
        return study(asked)
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
    summary = STUDY_SUMMARIES[cfg.labels.task](
        SeriesFolds(cfg, prep, splits, folder, list(families), seed_list, resamples, rolling, objective)
    )
    track(cfg, folder.name, summary, [folder / RESULT, folder / "report.html"], kind="walkforward")
    return WalkForwardResult(folder, summary)


@dataclass(frozen=True)
class StudyRequest:
    """What `walkforward` was asked, passed whole to a study with folds of its own (STUDIES)."""

    cfg: RunConfig
    folds: int
    seeds: int
    families: tuple[str, ...]
    rolling: bool
    name: str | None
    val_fraction: float
    resamples: int
    progress: Callable[[str], None] | None
    dask: bool


def _pooled_study(r: StudyRequest) -> WalkForwardResult:
    """A universe's regression: one pooled model over every asset, on expanding folds."""
    from candleflow.studies.pooled_walkforward import pooled_walkforward

    if r.rolling or r.dask or r.seeds > 1:
        raise ConfigError(
            "a pooled study runs expanding folds, one seed, in this process (no --rolling, --dask, --seeds)"
        )
    return pooled_walkforward(r.cfg, r.folds, r.families, r.name, r.val_fraction, r.progress)


def _panel_study(r: StudyRequest) -> WalkForwardResult:
    """A panel: the panel GPT and the pooled references, over (window, ticker) labels."""
    from candleflow.studies.panel_walkforward import panel_walkforward

    if r.rolling or r.dask:
        raise ConfigError(
            "a panel study runs expanding folds in this process; --rolling and --dask are for single series"
        )
    log.info(
        "panel study: model.kind %s and the references %s (--families applies to single series)",
        r.cfg.model.kind,
        ", ".join(r.cfg.evaluation.reference_models),
    )
    return panel_walkforward(r.cfg, r.folds, r.seeds, r.name, r.val_fraction, r.resamples, r.progress)


def _universe_classes(r: StudyRequest) -> WalkForwardResult:
    """A universe of classes has no study yet: refused in one line, never studied as the one
    series its source names (which is what it silently did)."""
    raise ConfigError(
        f"walkforward: a universe's classes (labels.kind {r.cfg.labels.kind}) are not studied yet; the pooled "
        "study scores a regression target (labels.kind forward_return or volatility); for classes, study one "
        "source (no universe:) or a panel (dataset.layout panel)"
    )


def _reward_model(r: StudyRequest) -> WalkForwardResult:
    raise ConfigError("walkforward compares model families on labels; a reward model (task reward) has no study")


# the studies with folds of their own, by (layout, target task; "*" any task); a series runs the
# series study above; a reward model has no study
STUDIES: dict[tuple[str, str], Callable[[StudyRequest], WalkForwardResult]] = {
    ("universe", "regress"): _pooled_study,
    ("universe", "classify"): _universe_classes,
    ("panel", "*"): _panel_study,
    ("reward", "*"): _reward_model,
}


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
    if not cfg.layout_rules.trades:
        raise ConfigError(
            f"--objective re-chooses one series' decision rule; a {cfg.layout} study ({cfg.layout_rules.what}) has none"
        )


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
    arrays: dict[str, Any] = {"ends": part_ds.ends.astype(np.int64), "fit_seconds": np.float64(seconds)}
    if refitted:  # what the refit trained: epochs (networks) or boosting rounds, and how many windows
        arrays["refit_windows"] = np.int64(refitted["windows"])
        arrays["refit_epochs"] = np.int64(refitted.get("epochs") or refitted.get("rounds") or 0)
    train_ds = prep.dataset.subset(split.parts["train"])
    arrays |= FOLD_ARRAYS[cfg.labels.task](cfg, prep, train_ds, trained, y_true, probs)
    save_fold(path, arrays)
    log.info("walk-forward %s seed %d: %d test windows, %.1fs", family, seed, y_true.size, seconds)


# what a fold file holds besides its test windows' ends, and how a study's folds are summarised,
# by target task
FOLD_ARRAYS = {"regress": fold_forecasts, "classify": fold_decisions}
STUDY_SUMMARIES = {"regress": summarise_forecasts, "classify": summarise_decisions}
