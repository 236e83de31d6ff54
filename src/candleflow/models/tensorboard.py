"""TensorBoard event files written without TensorFlow, by tensorboardX (a kept library: TFRecord
framing, CRC-32C and the `Event` protobufs are its job), scalar and histogram summaries in one
file per run and split; and a profiler trace of one chosen batch where the backend has a
profiler (JAX)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from candleflow.models.backend import keras


class EventWriter:
    """Scalars and weight histograms into `folder/events.out.tfevents.*`: tensorboardX's
    synchronous events writer and summary protobufs, flushed after every write, so a run that
    stops keeps each finished epoch (its SummaryWriter queues events on a thread, and its flush
    does not wait for the queue)."""

    def __init__(self, folder: str | Path):
        from tensorboardX.event_file_writer import EventsWriter

        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        # the pid and a nanosecond stamp: a resumed run in the same second gets its own file
        self._events = EventsWriter(str(self.folder / "events"), f".{os.getpid()}.{time.time_ns()}")

    def _write(self, step: int, summary: Any) -> None:
        from tensorboardX.proto.event_pb2 import Event

        self._events.write_event(Event(wall_time=time.time(), step=int(step), summary=summary))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        from tensorboardX.summary import scalar

        for tag, value in values.items():
            self._write(step, scalar(tag, float(value)))
        self._events.flush()

    def histograms(self, step: int, arrays: dict[str, Any]) -> None:
        from tensorboardX.summary import histogram

        for tag, values in arrays.items():
            v = np.asarray(values, np.float64).ravel()
            v = v[np.isfinite(v)]
            if v.size:
                self._write(step, histogram(tag, v, bins=30))
        self._events.flush()

    def close(self) -> None:
        self._events.close()


class EventLogger(keras.callbacks.Callback):
    """Writes loss, metrics, learning rate and memory per epoch to log_dir/train and
    log_dir/validation, TensorBoard's own layout, without TensorFlow; every `histogram_freq`
    epochs (0: never) a histogram of each weight; with `profile_batch` (a training batch number,
    1-based; 0: off) a profiler trace of that batch of the first epoch under log_dir/plugins/profile
    where the backend can trace (JAX: jax.profiler; other backends log that they cannot)."""

    def __init__(self, log_dir: str | Path, histogram_freq: int = 0, profile_batch: int = 0) -> None:
        super().__init__()
        self.log_dir = Path(log_dir)
        self.train = EventWriter(self.log_dir / "train")
        self.val = EventWriter(self.log_dir / "validation")
        self.histogram_freq, self.profile_batch = histogram_freq, profile_batch
        self._tracing = False
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self.profile_batch and self._epoch == 0 and batch + 1 == self.profile_batch:
            if keras.backend.backend() != "jax":
                import logging

                logging.getLogger("candleflow").info(
                    "training.profile_batch: the %s backend has no profiler candleflow drives; no trace",
                    keras.backend.backend(),
                )
                return
            import jax

            jax.profiler.start_trace(str(self.log_dir))
            self._tracing = True

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self._tracing:
            import jax

            jax.profiler.stop_trace()
            self._tracing = False

    def on_train_end(self, logs: dict | None = None) -> None:
        self.on_train_batch_end(0)
        self.train.close()
        self.val.close()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = {key: float(v) for key, v in (logs or {}).items() if isinstance(v, (int, float))}
        train = {f"epoch_{key}": v for key, v in logs.items() if not key.startswith("val_")}
        val = {f"epoch_{key[4:]}": v for key, v in logs.items() if key.startswith("val_")}
        self.train.scalars(epoch, train)
        if val:
            self.val.scalars(epoch, val)
        if self.histogram_freq and (epoch + 1) % self.histogram_freq == 0 and self.model is not None:
            self.train.histograms(
                epoch, {w.path.replace("/", "_"): keras.ops.convert_to_numpy(w.value) for w in self.model.weights}
            )
