"""`prepare` (source to windows and split) and `run` (prepare, train, evaluate, save a run folder)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .atomic import write_json, write_text
from .backend import configure_devices, data_parallel, keras
from .candles import Candles
from .config import RunConfig
from .evaluation import decide, evaluate
from .features import Features
from .labels import CLASS_NAMES, Labels
from .loaders import class_weights, keras_loader
from .memory import estimate_training_memory, suggest_batch_size
from .model import build_gpt, build_lstm, build_mlp
from .preparation import features_and_labels
from .registry import load_model_file, save_model
from .report import PREDICTIONS, build_report, save_predictions
from .sources import load_candles
from .split import Split, chronological_split
from .store import PreparedCache, cache_key
from .trading import trading_evaluation
from .errors import ConfigError, RegistryError
from .training import RESUME_DIR, fit, latest_resume_state
from .validate import ValidationReport
from .windows import WindowDataset

log = logging.getLogger("candleflow")


@dataclass
class Prepared:
    """Everything between the source and the model: candles, features, labels, windows, split."""

    config: RunConfig
    candles: Candles
    report: ValidationReport
    features: Features
    labels: Labels
    dataset: WindowDataset
    split: Split
    fine_changed: int | None = None  # labels the finer candles changed (None: no finer candles)
    cache: str | None = None  # 'hit' or 'miss' in the prepared-data cache; None without one

    def summary(self) -> dict[str, Any]:
        """Shapes, class balance per split part and memory: what `candleflow prepare` prints."""
        parts = {}
        for name, pos in self.split.parts.items():
            y = self.dataset.labels_at(pos)
            parts[name] = {"windows": int(pos.size), "purged": self.split.purged.get(name, 0),
                           "first_end": self.candles.time_str(int(self.dataset.ends[pos[0]])) if pos.size else None,
                           "last_end": self.candles.time_str(int(self.dataset.ends[pos[-1]])) if pos.size else None,
                           "classes": {c: int((y == k).sum()) for k, c in enumerate(CLASS_NAMES)}}
        return {
            "symbol": self.candles.symbol, "interval": self.candles.interval, "rows": len(self.candles),
            "fingerprint": self.candles.fingerprint, "segments": int(len(self.candles.segments)),
            "features": self.features.descriptions, "feature_shape": list(self.features.values.shape),
            "window_shape": list(self.dataset.shape[1:]), "windows": len(self.dataset),
            "labels": self.labels.counts(), "label_kind": self.config.labels.kind,
            "labels_changed_by_finer_candles": self.fine_changed, "cache": self.cache, "split": parts,
            "feature_mb": round(self.features.values.nbytes / 2**20, 2),
            "materialised_windows_mb": round(self.dataset.materialised_nbytes() / 2**20, 1),
        }


def prepare(cfg: RunConfig, cache: PreparedCache | None = None) -> Prepared:
    """Source -> validated candles -> features, labels -> windows -> purged chronological split.
    With a cache (or `dataset.cache_dir`), features and labels come memory-mapped from an entry
    keyed by the candles' fingerprint and the config that shapes them, built on a miss."""
    t0 = time.perf_counter()
    candles, report = load_candles(cfg.source, cfg.validation)
    log.info("candles: %s %s, %s", candles.symbol, candles.interval, report.summary())
    if cache is None and cfg.dataset.cache_dir:
        cache = PreparedCache(Path(cfg.dataset.cache_dir))
    key = cache_key(candles.fingerprint, {"features": cfg.features.model_dump(mode="json"),
                                          "labels": cfg.labels.model_dump(mode="json"),
                                          "validation": cfg.validation.model_dump(mode="json")})
    entry = cache.load(key) if cache is not None else None
    if entry is not None:
        arrays, meta = entry["arrays"], entry["meta"]
        features = Features(arrays["features"], meta["feature_names"], meta["warmup"])
        labels, changed = Labels(arrays["labels"], arrays["t1"]), meta["fine_changed"]
    else:
        features, labels, changed = features_and_labels(cfg, candles)
        if cache is not None:
            cache.save(key, {"features": features.values, "labels": labels.y, "t1": labels.t1},
                       {"fingerprint": candles.fingerprint, "feature_names": features.names,
                        "warmup": features.warmup, "fine_changed": changed})
    dataset = WindowDataset.from_arrays(features.values, labels.y, candles.segments, cfg.dataset.window,
                                        cfg.dataset.sample_rate, cfg.dataset.stride)
    if len(dataset) == 0:
        raise ValueError(f"no complete {cfg.dataset.window}-bar window with a label: {len(candles)} rows in "
                         f"{len(candles.segments)} segments are too short")
    split = chronological_split(dataset.ends, labels.t1, cfg.dataset.val_fraction,
                                cfg.dataset.test_fraction, cfg.dataset.embargo)
    log.info("prepared %d windows of %s in %.2fs; split %s", len(dataset), dataset.shape[1:],
             time.perf_counter() - t0, split.summary())
    return Prepared(cfg, candles, report, features, labels, dataset, split, changed,
                    None if cache is None else ("hit" if entry is not None else "miss"))


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict[str, Any]
    metadata: dict[str, Any]


def run(cfg: RunConfig, callbacks: list | None = None) -> RunResult:
    """Train and evaluate the configured model; write the run folder, complete or not at all.

    The folder is assembled under a hidden temporary name and renamed when everything is in it;
    a failed or interrupted run leaves `.NAME.failed/` with its log and its last complete epoch,
    which `resume(NAME)` continues. `callbacks` are extra Keras callbacks for the fit.
    """
    started = dt.datetime.now(dt.timezone.utc)
    runs_dir = Path(cfg.output.runs_dir)
    name = cfg.output.name or f"{started:%Y%m%d-%H%M%S}-{_slug(cfg)}"
    final = runs_dir / name
    if final.exists():
        raise FileExistsError(f"run folder {final} already exists; choose another output.name")
    work = runs_dir / f".{name}.tmp"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    write_json(work / "started.json", {"created": started.isoformat(timespec="seconds")})
    return _execute(cfg, work, name, started, None, callbacks)


def resume(ref: str | Path, runs_dir: str | Path = "runs", callbacks: list | None = None) -> RunResult:
    """Continue an interrupted or crashed run from its last complete epoch (model, optimizer state,
    callback counters, loader epoch) to the result the uninterrupted run would have given.
    `ref` is the run's name (its `.NAME.failed` folder is found in runs_dir) or a folder path."""
    work, name = _interrupted_folder(ref, Path(runs_dir))
    from .config import load_config

    cfg = load_config(work / "config.yaml")
    if latest_resume_state(work) is None:
        raise RegistryError(f"{work}: no complete epoch to resume from (interrupted before the first epoch ended); "
                            f"start it again with `candleflow run --config {work / 'config.yaml'}`")
    if (Path(cfg.output.runs_dir) / name).exists() or (work.parent / name).exists():
        raise FileExistsError(f"run folder {work.parent / name} already exists")
    started = dt.datetime.fromisoformat(json.loads((work / "started.json").read_text())["created"])
    tmp = work.parent / f".{name}.tmp"
    if work != tmp:
        if tmp.exists():
            shutil.rmtree(tmp)
        os.replace(work, tmp)
    return _execute(cfg, tmp, name, started, latest_resume_state(tmp), callbacks)


def _interrupted_folder(ref: str | Path, runs_dir: Path) -> tuple[Path, str]:
    path = Path(ref)
    candidates = [path] if path.is_dir() else [runs_dir / f".{ref}.failed", runs_dir / f".{ref}.tmp"]
    for c in candidates:
        if c.is_dir() and (c / "config.yaml").is_file():
            name = c.name
            if name.startswith(".") and name.endswith((".failed", ".tmp")):
                name = name[1:].rsplit(".", 1)[0]
            return c, name
    raise RegistryError(f"no interrupted run {str(ref)!r}: looked for {', '.join(str(c) for c in candidates)} "
                        f"with a config.yaml")


def _execute(cfg: RunConfig, work: Path, name: str, started: dt.datetime, state: dict[str, Any] | None,
             callbacks: list | None) -> RunResult:
    k = keras()
    k.utils.set_random_seed(cfg.training.seed)
    runs_dir = work.parent
    final = runs_dir / name
    handler = logging.FileHandler(work / "run.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    try:
        devices = configure_devices(cfg.training.device, cfg.training.precision)
        log.info("candleflow %s, keras %s, %s, %s", __version__, k.__version__, devices["devices"], devices["dtype_policy"])
        if state is not None:
            log.info("resuming %s after epoch %d", name, state["epochs_done"])
        if cfg.task == "reward":
            from .reward_pipeline import run_reward_into

            metrics, metadata = run_reward_into(cfg, work, name, started, _versions(), state, callbacks)
            result = RunResult(work, metrics, metadata)
        else:
            replicas = data_parallel(cfg.training.distribution, devices["device"] == "gpu")
            result = _run_into(cfg, work, name, started, state, callbacks, replicas)
        log.removeHandler(handler)
        handler.close()
        shutil.rmtree(work / RESUME_DIR, ignore_errors=True)  # model.keras holds the result
        os.replace(work, final)
        result.run_dir = final
        return result
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
        k.config.set_dtype_policy("float32")  # precision and distribution are this run's choice, not the process's
        if k.backend.backend() == "jax":
            k.distribution.set_distribution(None)


def model_from(state: dict[str, Any] | None, build):
    """The model saved with a resume state (optimizer state included, loaded in safe_mode), else build()."""
    return build() if state is None else load_model_file(state["model_path"])


@dataclass
class _Trained:
    """What training and scoring leave for the run folder: the model, its fit, and per evaluated
    part the windows, true labels and predicted probabilities."""

    model: Any
    fitted: dict[str, Any]
    fit_seconds: float
    estimate: dict[str, float]
    scored: dict[str, tuple[Any, np.ndarray, np.ndarray]]
    metrics: dict[str, Any]


def _train_and_score(cfg: RunConfig, work: Path, ds, split, model_and_loader, state: dict[str, Any] | None,
                     callbacks: list | None, replicas: int) -> _Trained:
    """Fit on the training part (every `train_stride`-th window), then score val [and test]
    against the baselines. `model_and_loader(train_ds)` gives the model and a loader factory."""
    tc = cfg.training
    train_pos = split["train"][:: cfg.dataset.train_stride]
    train_ds, val_ds = ds.subset(train_pos), ds.subset(split["val"])
    y_train = train_ds.labels_at()
    if tc.shuffle_labels:
        y_train = np.random.default_rng(tc.seed).permutation(y_train)
        log.warning("training labels permuted (training.shuffle_labels): a control run that must learn nothing")
    weights = class_weights(y_train) if tc.class_weight == "balanced" and not cfg.dataset.balanced else None

    model, loader = model_and_loader(train_ds)
    estimate = estimate_training_memory(model, cfg.dataset.batch_size)
    log.info("model %s: %s parameters; training memory estimate %.0f MB at batch %d (runtime %.0f, weights+Adam "
             "%.1f, activations %.0f, batch %.1f); batch size that fits half the available memory: %d",
             cfg.model.kind, f"{model.count_params():,}", estimate["total_mb"], cfg.dataset.batch_size,
             estimate["runtime_mb"], estimate["weights_optimizer_mb"], estimate["activations_mb"],
             estimate["batch_mb"], suggest_batch_size(model))

    extra = {"balanced": True} if cfg.dataset.balanced else {}
    if replicas > 1:
        extra["multiple_of"] = replicas  # batches padded with zero-weight rows to split evenly
    train = loader(train_ds, cfg.dataset.batch_size, shuffle=True, seed=tc.seed, labels=y_train, weights=weights, **extra)
    val = loader(val_ds, cfg.dataset.batch_size, multiple_of=replicas)
    log.info("training on %d windows (every %d-th of %d), validating on %d", len(train_ds),
             cfg.dataset.train_stride, split["train"].size, len(val_ds))
    t_fit = time.perf_counter()
    fitted = fit(model, train, val, tc, work, state, callbacks)
    fit_s = time.perf_counter() - t_fit

    scored, metrics = {}, {}
    for part in [p for p in ("val", "test") if p in split.parts]:
        part_ds = ds.subset(split[part])
        probs = model.predict(loader(part_ds, 1024 * replicas, multiple_of=replicas), verbose=0)[:len(part_ds)]
        y_true = part_ds.labels_at()
        scored[part] = (part_ds, y_true, probs)
        metrics[part] = evaluate(y_true, probs, y_train, cfg.evaluation.decision_margin, seed=tc.seed)
    return _Trained(model, fitted, fit_s, estimate, scored, metrics)


def _metadata(cfg: RunConfig, name: str, started: dt.datetime, t0: float, trained: _Trained, input_shape,
              replicas: int, data: dict[str, Any]) -> dict[str, Any]:
    """metadata.json: versions, data identity, model, memory, timing and the headline metrics."""
    fitted, model = trained.fitted, trained.model
    finished = dt.datetime.now(dt.timezone.utc)
    return {
        "run": name, "task": "classify",
        "created": started.isoformat(timespec="seconds"), "finished": finished.isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - t0, 1), "fit_seconds": round(trained.fit_seconds, 1),
        "versions": _versions(), **data,
        "input_shape": list(input_shape), "model_kind": cfg.model.kind, "classes": list(CLASS_NAMES),
        "parameters": int(model.count_params()), "memory_estimate": trained.estimate, "replicas": replicas,
        "measured_training_mb": None if fitted["training_mb"] is None else round(fitted["training_mb"], 1),
        "peak_rss_mb": round(fitted["peak_rss_mb"], 1), "epochs_run": fitted["epochs_run"],
        "resumed_from_epoch": fitted["resumed_from_epoch"],
        "metrics": {part: {"balanced_accuracy": m["table"]["model"]["balanced_accuracy"],
                           "accuracy": m["table"]["model"]["accuracy"],
                           "macro_f1": m["table"]["model"]["macro_f1"],
                           "edge_balanced_accuracy": m["edge_balanced_accuracy"]} for part, m in trained.metrics.items()},
    }


def _run_into(cfg: RunConfig, work: Path, name: str, started: dt.datetime, state: dict[str, Any] | None,
              callbacks: list | None, replicas: int = 1) -> RunResult:
    if cfg.universe.active:
        return _run_store_into(cfg, work, name, started, state, callbacks, replicas)
    t0 = time.perf_counter()
    prep = prepare(cfg)
    write_text(work / "config.yaml", cfg.to_yaml())
    shape: list = []

    def model_and_loader(train_ds: WindowDataset):
        model, loader, input_shape = _model_and_loader(cfg, prep, train_ds, state)
        shape.extend(input_shape)
        return model, loader

    trained = _train_and_score(cfg, work, prep.dataset, prep.split, model_and_loader, state, callbacks, replicas)
    metrics, predictions = trained.metrics, {}
    for part, (part_ds, y_true, probs) in trained.scored.items():
        metrics[part]["trading"], _ = trading_evaluation(prep.candles, part_ds.ends, y_true, probs,
                                                         decide(probs, cfg.evaluation.decision_margin), cfg)
        predictions[part] = {"ends": part_ds.ends, "y": y_true.astype(np.int8), "probs": probs.astype(np.float32)}
    write_json(work / "metrics.json", metrics)
    save_predictions(work / PREDICTIONS, predictions)

    save_model(trained.model, work)
    write_json(work / "data.json", {"fingerprint": prep.candles.fingerprint, "validation": prep.report.to_dict(),
                                    "dataset": prep.summary(), "split": prep.split.summary()})
    metadata = _metadata(cfg, name, started, t0, trained, shape, replicas, {
        "data_fingerprint": prep.candles.fingerprint, "symbol": prep.candles.symbol,
        "interval": prep.candles.interval, "feature_names": prep.features.names})
    write_json(work / "metadata.json", metadata)
    build_report(work, prep)
    log.info("run finished in %.1fs", metadata["seconds"])
    return RunResult(work, metrics, metadata)


def _run_store_into(cfg: RunConfig, work: Path, name: str, started: dt.datetime, state: dict[str, Any] | None,
                    callbacks: list | None, replicas: int = 1) -> RunResult:
    """A universe: prepare every series into the store on Dask (only what is missing), then train
    one model on all of them, read memory-mapped, split at the same instants for every series."""
    from .cluster import plan_tasks, prepare_store
    from .prepared_store import PreparedStore, open_dataset
    from .split import split_by_time

    if cfg.model.kind == "cnn":
        raise ConfigError("model.kind 'cnn' renders charts from one series' candles: train it on one source, "
                          "not on a universe")
    t0 = time.perf_counter()
    report = prepare_store(cfg)
    names = [t.name for t in plan_tasks(cfg)]
    d = cfg.dataset
    ds = open_dataset(cfg.universe.store, d.window, names, d.sample_rate, d.stride)
    split = split_by_time(ds.end_times(), ds.label_end_times(d.embargo), d.val_fraction, d.test_fraction)
    log.info("%d series, %d windows of %s; split %s", len(names), len(ds), ds.shape[1:], split.summary())
    write_text(work / "config.yaml", cfg.to_yaml())

    def model_and_loader(train_ds):
        return _window_model(cfg, train_ds, state), keras_loader

    trained = _train_and_score(cfg, work, ds, split, model_and_loader, state, callbacks, replicas)
    for part, (part_ds, y_true, probs) in trained.scored.items():  # each series' share of the score
        decided = decide(probs, cfg.evaluation.decision_margin)
        trained.metrics[part]["series"] = {
            ds.names[k]: {"windows": int((part_ds.which == k).sum()),
                          "accuracy": float((decided[part_ds.which == k] == y_true[part_ds.which == k]).mean())}
            for k in np.unique(part_ds.which)}
    write_json(work / "metrics.json", trained.metrics)
    save_model(trained.model, work)
    store = PreparedStore(cfg.universe.store)
    records = store.manifest()["entries"]
    write_json(work / "data.json", {"store": store.url, "prepare": report.to_dict(), "series": names,
                                    "fingerprints": {n: records[n]["fingerprint"] for n in names},
                                    "windows": len(ds), "split": split.summary()})
    metadata = _metadata(cfg, name, started, t0, trained, ds.shape[1:], replicas, {
        "data_fingerprint": hashlib.sha256(" ".join(records[n]["fingerprint"] for n in names).encode()).hexdigest(),
        "symbol": sorted({records[n]["symbol"] for n in names}), "interval": sorted({records[n]["interval"] for n in names}),
        "series": names, "feature_names": records[names[0]]["feature_names"]})
    write_json(work / "metadata.json", metadata)
    log.info("run finished in %.1fs (a universe run writes metrics per series; the backtest and HTML report are "
             "per series: run them on one source)", metadata["seconds"])
    return RunResult(work, trained.metrics, metadata)


def _model_and_loader(cfg: RunConfig, prep: Prepared, train_ds: WindowDataset, state: dict[str, Any] | None = None):
    """The configured model (or the one saved with a resume state), a loader factory
    (dataset, batch, ...) -> PyDataset over the same windows, and the model's input shape."""
    tc = cfg.training
    if cfg.model.kind == "cnn":
        from .images import ImageWindows
        from .loaders import image_loader
        from .model import build_cnn

        def loader(ds: WindowDataset, batch_size: int, shuffle: bool = False, seed: int = 0,
                   labels: np.ndarray | None = None, weights: np.ndarray | None = None, balanced: bool = False,
                   multiple_of: int = 1):
            y = ds.labels_at() if labels is None else labels
            return image_loader(ImageWindows(prep.candles, ds.ends, cfg.images), y, batch_size, shuffle, seed, weights,
                                balanced, multiple_of)

        shape = ImageWindows(prep.candles, train_ds.ends[:1], cfg.images).shape
        return model_from(state, lambda: build_cnn(cfg.model, shape, tc.learning_rate)), loader, (*shape, 1)
    return _window_model(cfg, train_ds, state), keras_loader, train_ds.shape[1:]


def _window_model(cfg: RunConfig, train_ds, state: dict[str, Any] | None):
    """The configured window model (LSTM, GPT, MLP) with normalisation fitted on the rows the
    training windows read, or the model saved with a resume state."""
    mean, var = train_ds.moments()
    window, n_feat = train_ds.shape[1:]
    builders = {"lstm": build_lstm, "gpt": build_gpt, "mlp": build_mlp}
    return model_from(state, lambda: builders[cfg.model.kind](cfg.model, window, n_feat, mean,
                                                              np.maximum(var, 1e-12), cfg.training.learning_rate))


def _versions() -> dict[str, str]:
    import numpy

    k = keras()
    out = {"candleflow": __version__, "python": platform.python_version(), "numpy": numpy.__version__,
           "keras": k.__version__, "backend": k.backend.backend()}
    try:
        import jax

        out["jax"] = jax.__version__
    except ImportError:
        pass
    return out


def _slug(cfg: RunConfig) -> str:
    src = cfg.source
    symbol = getattr(src, "symbol", None) or "files"
    interval = getattr(src, "interval", None) or "auto"
    return f"{symbol}-{interval}".replace("/", "_")
