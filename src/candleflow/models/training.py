"""Training with checkpoints on the best validation metric, early stopping, LR reduction, a CSV
history, TensorBoard event files, and the process's resident memory logged every epoch."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from candleflow.config import TrainingConfig
from candleflow.errors import RegistryError
from candleflow.fs.atomic import atomic_path, write_json, write_text
from candleflow.models import files
from candleflow.models.backend import device_memory_mb, gpu_utilisation, keras
from candleflow.models.progress import PROGRESS_SECONDS, progress_log
from candleflow.models.resume import RESUME_DIR
from candleflow.models.tensorboard import EventLogger

log = logging.getLogger("candleflow.epochs")  # the run log gets these; the console has Keras' own progress


class MemoryMonitor(keras.callbacks.Callback):
    """Adds `rss_mb` and `peak_rss_mb` (and `device_mb` where the backend reports device memory,
    e.g. JAX on a GPU) to each epoch's logs."""

    def __init__(self) -> None:
        super().__init__()
        self.process = psutil.Process()
        self.peak = 0.0
        self.peak_gpu_mb = 0.0
        self.base: float | None = None  # resident memory when training began: the rest is training's own

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.base = self.process.memory_info().rss / 2**20

    def _rss(self) -> float:
        rss = self.process.memory_info().rss / 2**20
        self.peak = max(self.peak, rss)
        return rss

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if batch % 20 == 0:
            self._rss()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        rss = self._rss()
        if logs is not None:
            logs["rss_mb"] = round(rss, 1)
            logs["peak_rss_mb"] = round(self.peak, 1)
            device = device_memory_mb()
            if device is not None:
                logs["device_mb"] = round(device, 1)
            gpu = gpu_utilisation()  # NVML, where a GPU and nvidia-ml-py are there: utilisation and memory
            if gpu is not None:
                self.peak_gpu_mb = max(self.peak_gpu_mb, gpu["gpu_mem_mb"])
                logs["gpu_util"] = round(gpu["gpu_util"], 1)
                logs["gpu_peak_mb"] = round(self.peak_gpu_mb, 1)
        log.info(
            "epoch %d: %s",
            epoch + 1,
            ", ".join(f"{k}={v:.4g}" for k, v in (logs or {}).items() if isinstance(v, (int, float))),
        )
        if self.model is not None:  # the memory account's training parts, each epoch (the run log)
            from candleflow.models.memory import memory_usage

            m = memory_usage(model=self.model)
            log.info(
                "epoch %d memory: model %.1f MB, optimizer %.1f MB, resident %.0f MB",
                epoch + 1,
                m["model_mb"],
                m["optimizer_mb"],
                m["resident_mb"],
            )


class MemoryWatch(keras.callbacks.Callback):
    """`dataset.batch_size: auto` watched while it trains: every few batches the memory in use
    (the accelerator's where the backend reports it, else this process's resident memory) is
    compared with `limit_mb`; once it passes, the epoch finishes (its state is saved like any
    epoch's) and the fit stops so the caller can continue at a smaller batch. `tripped` says
    when and what was seen."""

    def __init__(self, limit_mb: float, every: int = 5) -> None:
        super().__init__()
        self.limit_mb, self.every = float(limit_mb), max(int(every), 1)
        self.process = psutil.Process()
        self.tripped: dict[str, Any] | None = None

    def used_mb(self) -> tuple[float, str]:
        device = device_memory_mb()
        if device is not None:
            return device, "device memory"
        return self.process.memory_info().rss / 2**20, "resident memory"

    def _check(self, epoch: int) -> None:
        if self.tripped is None:
            used, what = self.used_mb()
            if used > self.limit_mb:
                self.tripped = {"epoch": epoch + 1, "used_mb": round(used, 1), "what": what, "limit_mb": self.limit_mb}

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if batch % self.every == 0:
            self._check(getattr(self, "epoch", 0))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._check(epoch)
        if self.tripped is not None and self.model is not None:
            self.model.stop_training = True


def memory_limit_mb(cfg: TrainingConfig) -> float:
    """What `MemoryWatch` allows: `training.memory_limit_mb` when set, else what is in use now plus
    `training.memory_share` of what is free (the budget `dataset.batch_size: auto` sized the batch
    for)."""
    if cfg.memory_limit_mb is not None:
        return float(cfg.memory_limit_mb)
    from candleflow.models.memory import available_memory_mb

    free, _ = available_memory_mb()
    device = device_memory_mb()
    in_use = device if device is not None else psutil.Process().memory_info().rss / 2**20
    return in_use + cfg.memory_share * free


INTERNALS = ("input_s", "input_wait", "rss_mb", "peak_rss_mb", "device_mb")


class EpochLine(keras.callbacks.ProgbarLogger):
    """Keras' progress bar and epoch line without the training loop's internals (input time and
    wait, memory): those stay in history.csv, TensorBoard and the run log's epoch lines."""

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        super().on_train_batch_end(batch, _without_internals(logs))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        super().on_epoch_end(epoch, _without_internals(logs))


class StepProgress(keras.callbacks.Callback):
    """Off a terminal (a log file, CI, nohup, a notebook's captured output) Keras prints an epoch's
    line only when the epoch ends: minutes of silence. This logs one line every `every` seconds
    while an epoch runs: the step, its share, the loss so far and the time left in the epoch."""

    def __init__(self, epochs: int, every: float = PROGRESS_SECONDS) -> None:
        super().__init__()
        self.epochs, self.every = epochs, every
        self.epoch, self.steps, self.t0, self.last = 0, None, 0.0, 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch, self.t0 = epoch, time.perf_counter()
        self.last = self.t0
        self.steps = self.params.get("steps") if isinstance(self.params, dict) else None

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        now = time.perf_counter()
        if now - self.last < self.every:
            return
        self.last = now
        done, elapsed = batch + 1, now - self.t0
        loss = (logs or {}).get("loss")
        shown = "" if loss is None else f", loss {float(loss):.4f}"
        if self.steps:
            left = elapsed / done * (self.steps - done)
            where = f"step {done:,}/{self.steps:,} ({done / self.steps:.0%}){shown}, {elapsed:.0f} s in, about {left:.0f} s left"
        else:
            where = f"step {done:,}{shown}, {elapsed:.0f} s in"
        progress_log.info("epoch %d/%d: %s", self.epoch + 1, self.epochs, where)


def _without_internals(logs: dict | None) -> dict | None:
    return None if logs is None else {k: v for k, v in logs.items() if k not in INTERNALS}


class InputMonitor(keras.callbacks.Callback):
    """Adds `input_s` (seconds the epoch spent making training batches, in whichever thread) and
    `input_wait` (the share of the epoch the training loop waited for them: with
    `dataset.prefetch` the batches are made while the model trains, and only the wait is lost)."""

    def __init__(self, loader: Any) -> None:
        super().__init__()
        self.loader, self.t0, self.busy0, self.waited0 = loader, 0.0, 0.0, 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.t0 = time.perf_counter()
        self.busy0 = getattr(self.loader, "busy", 0.0)
        self.waited0 = getattr(self.loader, "waited", self.busy0)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        spent = getattr(self.loader, "busy", 0.0) - self.busy0
        waited = getattr(self.loader, "waited", getattr(self.loader, "busy", 0.0)) - self.waited0
        if logs is not None:
            logs["input_s"] = round(spent, 3)
            logs["input_wait"] = round(waited / max(time.perf_counter() - self.t0, 1e-9), 4)


# the callback attributes a resumed fit restores, per named callback
RESUME_COUNTERS = {
    "early_stopping": ("wait", "best", "best_epoch", "stopped_epoch"),
    "reduce_lr": ("wait", "best", "cooldown_counter"),
    "checkpoint": ("best",),
}


class ResumeCheckpoint(keras.callbacks.Callback):
    """Saves the whole training state after every epoch (model with optimizer state, callback
    counters, history so far) and, given `state`, restores it when fit begins."""

    def __init__(
        self, run_dir: Path, callbacks: dict[str, Any], monitor: MemoryMonitor, state: dict[str, Any] | None
    ) -> None:
        super().__init__()
        self.folder = Path(run_dir) / RESUME_DIR
        self.callbacks, self.monitor, self.state = callbacks, monitor, state
        self.history: dict[str, list[float]] = dict(state["history"]) if state else {}

    def on_train_begin(self, logs: dict | None = None) -> None:
        state = self.state
        if state is None:  # after the other callbacks reset themselves
            return
        for name, attrs in RESUME_COUNTERS.items():
            for attr in attrs:
                setattr(self.callbacks[name], attr, state["callbacks"][name][attr])
        self.monitor.peak = max(self.monitor.peak, state.get("peak_rss_mb", 0.0))
        states = _seed_states(self.model)
        if len(states) != len(state["seed_states"]):
            raise RegistryError(
                f"resume state has {len(state['seed_states'])} random-seed states, the model {len(states)}"
            )
        for var, value in zip(states, state["seed_states"]):
            var.assign(np.asarray(value, dtype=var.dtype))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        for key, v in (logs or {}).items():
            if isinstance(v, (int, float)):
                self.history.setdefault(key, []).append(float(v))
        name = f"epoch-{epoch + 1:04d}"
        with atomic_path(self.folder / f"{name}.keras", suffix=".keras") as tmp:
            self.model.save(tmp)
        write_json(
            self.folder / f"{name}.json",
            {
                "epochs_done": epoch + 1,
                "history": self.history,
                "peak_rss_mb": self.monitor.peak,
                "seed_states": [np.asarray(v.value).tolist() for v in _seed_states(self.model)],
                "callbacks": {
                    n: {a: _plain(getattr(self.callbacks[n], a)) for a in attrs} for n, attrs in RESUME_COUNTERS.items()
                },
            },
        )
        for old in self.folder.glob("epoch-*"):
            if not old.name.startswith(name):
                old.unlink(missing_ok=True)


def _seed_states(model) -> list:
    """The dropout layers' random-generator states, in layer order: .keras files do not keep them,
    and a resumed fit must draw the same dropout masks as an uninterrupted one."""
    return [v for v in model.non_trainable_variables if v.path.endswith("seed_generator_state")]


def _plain(v: Any) -> Any:
    return float(v) if hasattr(v, "__float__") and not isinstance(v, int) else v


def training_callbacks(cfg: TrainingConfig, run_dir: Path) -> dict[str, Any]:
    """The callbacks whose state a resume restores: the checkpoint and early stopping watch
    `training.monitor`; the learning-rate reduction watches its own `training.lr_monitor`
    (val_loss by default: a loss that stops falling is the plateau, whatever the checkpoint keeps)."""
    k = keras

    def mode(metric: str) -> str:
        return "min" if metric.endswith("loss") else "max"

    return {
        "checkpoint": k.callbacks.ModelCheckpoint(
            str(run_dir / files.CHECKPOINT),
            monitor=cfg.monitor,
            mode=mode(cfg.monitor),
            save_best_only=True,
            save_weights_only=True,
        ),
        "early_stopping": k.callbacks.EarlyStopping(monitor=cfg.monitor, mode=mode(cfg.monitor), patience=cfg.patience),
        "reduce_lr": k.callbacks.ReduceLROnPlateau(
            monitor=cfg.lr_monitor,
            mode=mode(cfg.lr_monitor),
            factor=cfg.reduce_lr_factor,
            patience=cfg.reduce_lr_patience,
            min_lr=cfg.min_lr,
        ),
    }


def fit(
    model,
    train,
    val,
    cfg: TrainingConfig,
    run_dir: Path,
    resume: dict[str, Any] | None = None,
    extra_callbacks: list | None = None,
    watch: MemoryWatch | None = None,
) -> dict[str, Any]:
    """Fit `model` on loaders `train`/`val`; the best weights (by cfg.monitor) end up in the model
    and in run_dir/checkpoint.weights.h5. After each epoch the whole training state is saved in
    run_dir/resume; `resume` (from `latest_resume_state`) continues from it, with `model` loaded
    from that state, to the result an uninterrupted fit gives. Returns the history and the peak
    resident memory. With `watch`, a fit whose memory passed the watch's limit stops after that
    epoch and returns `memory_tripped` (the model as that epoch left it, not the best weights):
    the caller continues it at a smaller batch from the saved state."""
    monitor = MemoryMonitor()
    named = training_callbacks(cfg, run_dir)
    initial_epoch = 0 if resume is None else int(resume["epochs_done"])
    if resume is not None:
        _truncate_csv(run_dir / files.HISTORY, initial_epoch)
        train.set_epoch(initial_epoch)
    resumer = ResumeCheckpoint(run_dir, named, monitor, resume)
    callbacks = [
        *named.values(),
        InputMonitor(train),
        monitor,  # before the loggers so rss_mb lands in history.csv and TensorBoard
        keras.callbacks.CSVLogger(str(run_dir / files.HISTORY), append=resume is not None),
        EventLogger(run_dir / files.TENSORBOARD, cfg.histogram_freq, cfg.profile_batch),
        resumer,  # last: an epoch counts as done once every logger has it
        *(extra_callbacks or []),
        *([watch] if watch is not None else []),
        EpochLine(),  # Keras would add its own bar last; this one leaves the internals to the log
    ]
    verbose = cfg.verbose
    if verbose == "auto":  # Keras' bar on a terminal and in a notebook (ipykernel draws it), else lines
        verbose = 1 if sys.stdout.isatty() or "ipykernel" in sys.modules else 2
    if verbose == 2:  # one line per epoch: progress lines in between, at a steady interval
        callbacks.insert(-1, StepProgress(cfg.epochs))
    stopped = resume is not None and (
        resume["callbacks"]["early_stopping"]["stopped_epoch"] > 0 or initial_epoch >= cfg.epochs
    )
    if not stopped:
        # shuffle=False: the loaders shuffle from (seed, epoch); Keras' own batch shuffle draws from
        # Python's global RNG, which a resumed process cannot replay
        model.fit(
            train,
            validation_data=val,
            epochs=cfg.epochs,
            initial_epoch=initial_epoch,
            shuffle=False,
            callbacks=callbacks,
            verbose=verbose,
        )
    history = resumer.history
    done = len(next(iter(history.values()), []))
    if (
        watch is not None
        and watch.tripped is not None
        and done < cfg.epochs
        and not named["early_stopping"].stopped_epoch
    ):
        return {"memory_tripped": watch.tripped, "epochs_run": done}
    best = run_dir / files.CHECKPOINT
    if best.is_file():  # the best epoch's weights, as EarlyStopping(restore_best_weights) would leave them
        model.load_weights(str(best))
    return {
        "history": history,
        "epochs_run": len(next(iter(history.values()), [])),
        "peak_rss_mb": monitor.peak,
        "training_mb": None if monitor.base is None else monitor.peak - monitor.base,
        "resumed_from_epoch": initial_epoch,
    }


def _truncate_csv(path: Path, epochs: int) -> None:
    """Keep the header and the first `epochs` rows: rows written after the last resume point go."""
    if path.is_file():
        lines = path.read_text().splitlines(keepends=True)
        write_text(path, "".join(lines[: epochs + 1]))
