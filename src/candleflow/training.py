"""Training with checkpoints on the best validation metric, early stopping, LR reduction, a CSV
history, TensorBoard event files, and the process's resident memory logged every epoch."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import psutil

from .backend import keras
from .config import TrainingConfig
from .tensorboard import tensorboard_callback

log = logging.getLogger("candleflow.epochs")  # the run log gets these; the console has Keras' own progress


def memory_monitor():
    """A callback adding `rss_mb` (and `peak_rss_mb`) to each epoch's logs."""
    k = keras()

    class MemoryMonitor(k.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.process = psutil.Process()
            self.peak = 0.0

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
            log.info("epoch %d: %s", epoch + 1,
                     ", ".join(f"{k}={v:.4g}" for k, v in (logs or {}).items() if isinstance(v, (int, float))))

    return MemoryMonitor()


def fit(model, train, val, cfg: TrainingConfig, run_dir: Path) -> dict[str, Any]:
    """Fit `model` on loaders `train`/`val`; the best weights (by cfg.monitor) end up in the model
    and in run_dir/checkpoint.weights.h5. Returns the history and the peak resident memory."""
    k = keras()
    mode = "min" if cfg.monitor.endswith("loss") else "max"
    monitor = memory_monitor()
    callbacks = [
        k.callbacks.ModelCheckpoint(str(run_dir / "checkpoint.weights.h5"), monitor=cfg.monitor, mode=mode,
                                    save_best_only=True, save_weights_only=True),
        k.callbacks.EarlyStopping(monitor=cfg.monitor, mode=mode, patience=cfg.patience,
                                  restore_best_weights=True),
        k.callbacks.ReduceLROnPlateau(monitor=cfg.monitor, mode=mode, factor=cfg.reduce_lr_factor,
                                      patience=cfg.reduce_lr_patience, min_lr=cfg.min_lr),
        monitor,  # before the loggers so rss_mb lands in history.csv and TensorBoard
        k.callbacks.CSVLogger(str(run_dir / "history.csv")),
        tensorboard_callback(run_dir / "tensorboard"),
    ]
    verbose = cfg.verbose
    if verbose == "auto":
        verbose = 1 if sys.stdout.isatty() else 2
    history = model.fit(train, validation_data=val, epochs=cfg.epochs, callbacks=callbacks, verbose=verbose)
    return {"history": history.history, "epochs_run": len(history.epoch), "peak_rss_mb": monitor.peak}
