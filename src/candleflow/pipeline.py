"""`run` (prepare, train, evaluate, save a run folder) and `resume` (continue an interrupted run)."""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from candleflow._version import __version__
from candleflow.config import RunConfig
from candleflow.dataset.prepare import prepare
from candleflow.errors import RegistryError
from candleflow.evaluation.metrics import decide
from candleflow.evaluation.trading import trading_evaluation
from candleflow.models.families import family
from candleflow.models.fitting import Trained, model_and_loader, seed_everything, train_and_score
from candleflow.models.resume import latest_resume_state
from candleflow.runs.folder import RunFolder
from candleflow.runs.record import headline, training_record, write_run
from candleflow.runs.report import build_report
from candleflow.runs.report_data import report_arrays

log = logging.getLogger("candleflow")


@dataclass(frozen=True)
class RunResult:
    """A finished run: its folder, metrics (per period), metadata, and its layout: series (one
    series), universe (one model over many series), panel (tickers side by side) or reward."""

    run_dir: Path
    metrics: dict[str, Any]
    metadata: dict[str, Any]
    layout: str = "series"
    tracking_id: str | None = None  # the MLflow run id where output.tracking_uri logged it


def _tracked(cfg: RunConfig, result: RunResult) -> RunResult:
    """The finished run logged to MLflow too, where output.tracking_uri asks (a failure warns)."""
    from candleflow.runs.tracking import track

    files = ["config.yaml", "metrics.json", "metadata.json", "data.json", "history.csv", "report.html", "run.log"]
    paths = [result.run_dir / f for f in files]
    return replace(result, tracking_id=track(cfg, result.run_dir.name, result.metrics, paths, model_dir=result.run_dir))


def run(cfg: RunConfig, callbacks: list | None = None) -> RunResult:
    """Train and evaluate the configured model; write the run folder, complete or not at all.

    The folder is assembled under a hidden temporary name and renamed when everything is in it;
    a failed or interrupted run leaves `.NAME.failed/` with its log and its last complete epoch,
    which `resume(NAME)` continues. `callbacks` are extra Keras callbacks for the fit.
    """
    family(cfg.model.kind).check_task(cfg)  # an unknown family fails here, before anything is written
    from candleflow.models.backend_choice import apply_backend, device_kind
    from candleflow.runs.tracking import check_tracking

    check_tracking(cfg)  # MLflow asked for but not installed: said now, not after training

    apply_backend(cfg.training.backend, cfg.model.kind, device_kind(cfg.training.device))  # Keras is loaded: a check
    started = dt.datetime.now(dt.UTC)
    runs_dir = Path(cfg.output.runs_dir)
    name = cfg.output.name or f"{started:%Y%m%d-%H%M%S}-{_slug(cfg)}"
    final = runs_dir / name
    if final.exists():
        raise FileExistsError(f"run folder {final} already exists; choose another output.name")
    work = runs_dir / f".{name}.tmp"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    RunFolder(work).write_started(started)
    from candleflow.fs.atomic import naming_full_disks

    with naming_full_disks(work):  # a full disk names the run folder being written
        return _execute(cfg, work, name, started, None, callbacks)


def resume(ref: str | Path, runs_dir: str | Path = "runs", callbacks: list | None = None) -> RunResult:
    """Continue an interrupted or crashed run from its last complete epoch (model, optimizer state,
    callback counters, loader epoch) to the result the uninterrupted run would have given.
    `ref` is the run's name (its `.NAME.failed` folder is found in runs_dir) or a folder path."""
    finished = Path(ref) if Path(ref).is_dir() else Path(runs_dir) / str(ref)
    if finished.is_dir() and not RunFolder(finished).missing():  # a complete run folder: nothing was interrupted
        raise RegistryError(
            f"{finished}: a complete run (it finished); nothing to resume: start a new one with candleflow run"
        )
    work, name = _interrupted_folder(ref, Path(runs_dir))
    folder = RunFolder(work)
    cfg = folder.config()
    if latest_resume_state(work) is None:
        raise RegistryError(
            f"{work}: no complete epoch to resume from (interrupted before the first epoch ended); "
            f"start it again with `candleflow run --config {work / RunFolder.CONFIG}`"
        )
    if (Path(cfg.output.runs_dir) / name).exists() or (work.parent / name).exists():
        raise FileExistsError(f"run folder {work.parent / name} already exists")
    started = folder.started()
    tmp = work.parent / f".{name}.tmp"
    if work != tmp:
        if tmp.exists():
            shutil.rmtree(tmp)
        os.replace(work, tmp)
    from candleflow.fs.atomic import naming_full_disks

    with naming_full_disks(tmp):  # a full disk names the run folder being written, as in run()
        return _execute(cfg, tmp, name, started, latest_resume_state(tmp), callbacks)


def _interrupted_folder(ref: str | Path, runs_dir: Path) -> tuple[Path, str]:
    path = Path(ref)
    candidates = [path] if path.is_dir() else [runs_dir / f".{ref}.failed", runs_dir / f".{ref}.tmp"]
    for c in candidates:
        if c.is_dir() and (c / RunFolder.CONFIG).is_file():
            name = c.name
            if name.startswith(".") and name.endswith((".failed", ".tmp")):
                name = name[1:].rsplit(".", 1)[0]
            return c, name
    raise RegistryError(
        f"no interrupted run {str(ref)!r}: looked for {', '.join(str(c) for c in candidates)} with a {RunFolder.CONFIG}"
    )


def _execute(
    cfg: RunConfig, work: Path, name: str, started: dt.datetime, state: dict[str, Any] | None, callbacks: list | None
) -> RunResult:
    network = not family(cfg.model.kind).tabular  # a tabular run never loads Keras (nor its backend)
    seed_everything(cfg.training.seed, network=network)
    runs_dir = work.parent
    final = runs_dir / name
    console = _api_console()  # before the file handler: None when the CLI (or the user) set logging up
    handler = logging.FileHandler(work / RunFolder.LOG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    level = log.level
    if log.getEffectiveLevel() > logging.INFO:  # logging left unconfigured: run.log still gets every line
        log.setLevel(logging.INFO)
    try:
        replicas = _devices(cfg) if network else _no_devices(cfg)
        if state is not None:
            log.info("resuming %s after epoch %d", name, state["epochs_done"])
        result = LAYOUT_RUNS[cfg.layout](cfg, work, name, started, state, callbacks, replicas)
        log.removeHandler(handler)
        handler.close()
        shutil.rmtree(work / RunFolder.RESUME, ignore_errors=True)  # model.keras holds the result
        os.replace(work, final)
        return _tracked(cfg, replace(result, run_dir=final))
    except BaseException as exc:
        # the traceback goes to the run's log only; the CLI prints the one-line reason
        handler.handle(log.makeRecord(log.name, logging.ERROR, __file__, 0, "run failed", (), sys.exc_info()))
        log.removeHandler(handler)
        handler.close()
        failed = runs_dir / f".{name}.failed"
        if failed.exists():
            shutil.rmtree(failed)
        os.replace(work, failed)
        if latest_resume_state(failed) is not None:
            exc.add_note(f"resume with: candleflow train --resume {name}")
        raise
    finally:
        log.setLevel(level)
        if console is not None:
            log.removeHandler(console)
        if network:
            _reset_backend()


def _devices(cfg: RunConfig) -> int:
    """A network run's devices and precision set up and logged; its data-parallel replicas."""
    from candleflow.models.backend import configure_devices, data_parallel, keras

    devices = configure_devices(cfg.training.device, cfg.training.precision)
    log.info(
        "candleflow %s, keras %s, %s, %s", __version__, keras.__version__, devices["devices"], devices["dtype_policy"]
    )
    return data_parallel(cfg.training.distribution, devices["device"] == "gpu")


def _no_devices(cfg: RunConfig) -> int:
    """A tabular run: logged, with no device set up (the fit runs on the CPU's cores)."""
    log.info(
        "candleflow %s, %s (a tabular family) on the CPU's %d cores; Keras not loaded",
        __version__,
        cfg.model.kind,
        os.cpu_count() or 1,
    )
    return 1


def _reset_backend() -> None:
    """Precision and distribution are a run's choice, not the process's: put back after it."""
    from candleflow.models.backend import keras

    keras.config.set_dtype_policy("float32")
    if keras.backend.backend() == "jax":
        keras.distribution.set_distribution(None)


def _api_console() -> logging.Handler | None:
    """From Python with logging unconfigured (a script, a notebook), the run's lines and progress
    go to stderr as the CLI shows them; None when the CLI or the user has set logging up (a
    handler on candleflow's logger or the root logger), which then decides."""
    if log.handlers or logging.getLogger().handlers:
        return None
    console = logging.StreamHandler()
    console.setLevel(logging.INFO)
    console.setFormatter(logging.Formatter("%(message)s"))
    console.addFilter(lambda record: record.name != "candleflow.epochs")  # the epoch line is Keras' own
    log.addHandler(console)
    return console


@dataclass
class LayoutRun:
    """What one layout brings to the run assembly (`_assemble`): data.json's and the identity's
    entries, how its model is trained and scored, and what it adds after scoring (predictions,
    what the report draws, training entries such as the refit)."""

    data: dict[str, Any]
    identity: dict[str, Any]
    train: Callable[[RunConfig, Path, dict[str, Any] | None, list | None, int], Trained]
    extras: Callable[[RunConfig, Trained, Path], tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any]]]
    data_parallel: bool = True  # replicas apply to its training (the panel GPT trains on one device)
    report: bool = True  # report.html after the run (a universe's report is per series)
    finished: str = "run finished in %.1fs"


def _series_run(cfg: RunConfig, state: dict[str, Any] | None) -> LayoutRun:
    """One series: prepare its candles, features, labels, windows and purged split."""
    prep = prepare(cfg)
    return LayoutRun(
        data={
            "fingerprint": prep.candles.fingerprint,
            "validation": prep.report.to_dict(),
            "dataset": prep.summary(),
            "split": prep.split.summary(),
        },
        identity={
            "data_fingerprint": prep.candles.fingerprint,
            "symbol": prep.candles.symbol,
            "interval": prep.candles.interval,
            "feature_names": prep.features.names,
        },
        train=lambda cfg, work, state, callbacks, replicas: train_and_score(
            cfg,
            work,
            prep.dataset,
            prep.split.parts,
            model_and_loader(cfg, prep, state),
            state,
            callbacks,
            replicas,
            candles=prep.candles,
        ),
        extras=lambda cfg, trained, work: _series_extras(cfg, prep, trained, work),
    )


def _series_extras(
    cfg: RunConfig, prep: Any, trained: Trained, work: Path
) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any]]:
    """Each period's dates; the predictions of the target's task (SERIES_PREDICTIONS) and what
    the report draws of them; the production model where `training.refit`."""
    for part, (part_ds, _, _) in trained.scored.items():
        ends = part_ds.ends
        trained.metrics[part]["period"] = {
            "from": prep.candles.time_str(int(ends[0])),
            "to": prep.candles.time_str(int(ends[-1])),
        }
    predictions, drawn = SERIES_PREDICTIONS[cfg.labels.task](cfg, prep, trained)
    # the production model: every labelled window, the validated run's choices
    more = {"refit": _refit(cfg, prep, trained, work)} if cfg.training.refit else {}
    return predictions, drawn, more


def _series_forecasts(cfg: RunConfig, prep: Any, trained: Trained) -> tuple[dict[str, Any], None]:
    """A regression's forecasts in the target's units, beside the baseline to beat's."""
    return {
        part: {
            "ends": part_ds.ends,
            "times": prep.candles.open_time[part_ds.ends],
            "y": y_true.astype(np.float32),
            "forecast": probs,
            "baseline": trained.baselines[part],
        }
        for part, (part_ds, y_true, probs) in trained.scored.items()
    }, None


def _series_decisions(cfg: RunConfig, prep: Any, trained: Trained) -> tuple[dict[str, Any], dict[str, Any]]:
    """A classifier's probabilities, each period's backtest of its decisions (into its metrics)
    and what the report draws of it."""
    predictions, drawn = {}, {}
    for part, (part_ds, y_true, probs) in trained.scored.items():
        ends = part_ds.ends
        trained.metrics[part]["trading"], results = trading_evaluation(
            prep.candles, ends, y_true, probs, decide(probs, cfg.evaluation.margin), cfg
        )
        predictions[part] = {"ends": ends, "y": y_true.astype(np.int8), "probs": probs.astype(np.float32)}
        drawn[part] = report_arrays(prep.candles, ends, results, cfg.dataset.window, cfg.labels.horizon)
    return predictions, drawn


SERIES_PREDICTIONS = {"classify": _series_decisions, "regress": _series_forecasts}


def _universe_run(cfg: RunConfig, state: dict[str, Any] | None) -> LayoutRun:
    """A universe: every series built into the store on Dask (only what is missing), read
    memory-mapped, one model over all of them, split at the same instants for every series."""
    from candleflow.dataset.split import split_by_time
    from candleflow.scale.across_assets import UNIVERSE_PREDICTIONS, PooledRun, per_ticker_data, store_identity
    from candleflow.scale.pooled import pooled_dataset, save_asset_scales, universe_windows

    family(cfg.model.kind).check_layout(cfg.layout)
    u = universe_windows(cfg)
    raw, names, records, per_year, d = u.raw, u.names, u.records, u.per_year, cfg.dataset
    split = split_by_time(raw.end_times(), raw.label_end_times(d.embargo), d.val_fraction, d.test_fraction)
    log.info("%d series, %d windows of %s; split %s", len(names), len(raw), raw.shape[1:], split.summary())
    ds = pooled_dataset(cfg, raw, split.parts)
    return LayoutRun(
        data={
            "store": u.report.store,
            "prepare": u.report.to_dict(),
            "series": names,
            "fingerprints": {n: records[n]["fingerprint"] for n in names},
            "windows": len(ds),
            "split": split.summary(),
            "per_series": per_ticker_data(records, names),
        },
        identity={
            "symbol": sorted({records[n]["symbol"] for n in names}),
            "interval": sorted({records[n]["interval"] for n in names}),
            "series": names,
            **store_identity(records, names, cfg.features.cross_section, cfg.dataset.asset_embedding),
        },
        train=lambda cfg, work, state, callbacks, replicas: train_and_score(
            cfg, work, ds, split.parts, model_and_loader(cfg, None, state), state, callbacks, replicas
        ),
        extras=lambda cfg, trained, work: (
            UNIVERSE_PREDICTIONS[cfg.labels.task](
                cfg, trained, PooledRun(ds.names, raw, split.parts["train"], per_year)
            ),
            None,
            save_asset_scales(work, ds, records),
        ),
        **UNIVERSE_ENDINGS[cfg.labels.task],
    )


# how a universe run ends, by target task: a pooled regression's report is the cross-section's;
# a pooled classifier's decisions are scored per series, with no report
UNIVERSE_ENDINGS: dict[str, dict[str, Any]] = {
    "regress": {"report": True},
    "classify": {
        "report": False,
        "finished": "run finished in %.1fs (a universe run writes metrics per series; the backtest and HTML report "
        "are per series: run them on one source)",
    },
}


def _panel_run(cfg: RunConfig, state: dict[str, Any] | None) -> LayoutRun:
    """A panel: the universe's series built into the store and aligned on one time axis; the panel
    GPT trains on windows of all tickers side by side and is scored on every ticker's labels and
    the cross-sectional backtest."""
    from candleflow.dataset.split import split_by_time
    from candleflow.scale.across_assets import PANEL_PREDICTIONS, per_ticker_data, store_identity
    from candleflow.scale.panel import PANEL_FITS, panel_inputs

    family(cfg.model.kind).check_layout(cfg.layout)
    inputs = panel_inputs(cfg)
    panel, ds, names = inputs.panel, inputs.dataset, inputs.names
    split = split_by_time(ds.end_times(), ds.label_end_times(), cfg.dataset.val_fraction, cfg.dataset.test_fraction)
    log.info(
        "panel: %d tickers on %s, %d rows, %d windows of %s; split %s",
        panel.n_tickers,
        panel.calendar,
        panel.times.size,
        len(ds),
        ds.shape[1:],
        split.summary(),
    )

    return LayoutRun(
        data={
            "store": str(cfg.universe.store),
            "prepare": inputs.report.to_dict(),
            "layout": cfg.layout,
            "tickers": names,
            "calendar": panel.calendar,
            "rows": int(panel.times.size),
            "windows": len(ds),
            "split": split.summary(),
            "per_ticker": per_ticker_data(inputs.records, names),
        },
        identity={"tickers": names, "interval": inputs.interval, **store_identity(inputs.records, names)},
        train=lambda cfg, work, state, callbacks, replicas: PANEL_FITS[cfg.labels.task](
            cfg, work, ds, split.parts, inputs.per_year, state, callbacks
        ),
        extras=lambda cfg, trained, work: (*PANEL_PREDICTIONS[cfg.labels.task](cfg, trained), {}),
        data_parallel=False,
        finished="panel run finished in %.1fs",
    )


def _assemble(
    cfg: RunConfig,
    work: Path,
    name: str,
    started: dt.datetime,
    state: dict[str, Any] | None,
    callbacks: list | None,
    replicas: int = 1,
) -> RunResult:
    """The one run assembly of every layout but reward: the layout's inputs, the config written,
    train and score, the margin chosen on validation resolved into the config, the layout's
    extras, the run folder's files, the report."""
    t0 = time.perf_counter()
    folder = RunFolder(work)
    run = LAYOUT_INPUTS[cfg.layout](cfg, state)
    folder.write_config(cfg)
    trained = run.train(cfg, work, state, callbacks, replicas)
    cfg = _resolved(cfg, trained.metrics, folder)
    predictions, drawn, more = run.extras(cfg, trained, work)
    metadata = write_run(
        work,
        cfg,
        name,
        started,
        t0,
        layout=cfg.layout,
        model=trained.model,
        metrics=trained.metrics,
        headline=headline(cfg, trained.metrics),
        data=run.data,
        identity=run.identity,
        training=training_record(trained, cfg, replicas if run.data_parallel else 1) | more,
        predictions=predictions,
        report_data=drawn,
    )
    if run.report and cfg.output.report:
        build_report(work)
    log.info(run.finished, metadata["seconds"])
    return RunResult(work, trained.metrics, metadata, cfg.layout)


def _refit(cfg: RunConfig, prep: Any, trained: Trained, work: Path) -> dict[str, Any]:
    """Train the production model and describe it for metadata.json (what predict loads by default)."""
    from candleflow.fs.digest import sha256_file
    from candleflow.models.refit import REFIT_DIR, refit

    positions = np.sort(np.concatenate(list(prep.split.parts.values())))
    info = refit(cfg, prep.dataset, positions, trained, prep, work / REFIT_DIR)
    info.pop("model")
    ends = prep.dataset.ends[positions]
    name = f"{REFIT_DIR}/{family(cfg.model.kind).model_file}"
    return {
        **info,
        "from": prep.candles.time_str(int(ends[0])),
        "to": prep.candles.time_str(int(ends[-1])),
        "model_file": {"name": name, "sha256": sha256_file(work / name)},
    }


def _run_reward_into(
    cfg: RunConfig,
    work: Path,
    name: str,
    started: dt.datetime,
    state: dict[str, Any] | None,
    callbacks: list | None,
    replicas: int = 1,
) -> RunResult:
    """A reward model on reward samples (one network; `candleflow.rewards`)."""
    from candleflow.rewards.task import run_reward_into

    metrics, metadata = run_reward_into(cfg, work, name, started, state, callbacks)
    return RunResult(work, metrics, metadata, cfg.layout)


# each layout's inputs for the one run assembly (RunConfig.layout decides which); a reward model
# is one network on reward samples, assembled by `candleflow.rewards`
LAYOUT_INPUTS: dict[str, Callable[[RunConfig, dict[str, Any] | None], LayoutRun]] = {
    "series": _series_run,
    "universe": _universe_run,
    "panel": _panel_run,
}
LAYOUT_RUNS = {"series": _assemble, "universe": _assemble, "panel": _assemble, "reward": _run_reward_into}


def _resolved(cfg: RunConfig, metrics: dict[str, Any], folder: RunFolder) -> RunConfig:
    """With `evaluation.decision_margin: auto`, the config with the margin chosen on validation,
    written over the run's config.yaml so predict, export and the report apply the same rule."""
    if cfg.evaluation.decision_margin != "auto" or "decision_margin" not in metrics.get("val", {}):
        return cfg
    chosen = float(metrics["val"]["decision_margin"])
    cfg = cfg.model_copy(update={"evaluation": cfg.evaluation.model_copy(update={"decision_margin": chosen})})
    folder.write_config(cfg)
    return cfg


def _slug(cfg: RunConfig) -> str:
    src = cfg.source
    symbol = getattr(src, "symbol", None) or "files"
    interval = getattr(src, "interval", None) or "auto"
    return f"{symbol}-{interval}".replace("/", "_")
