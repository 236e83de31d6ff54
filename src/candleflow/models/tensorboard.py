"""TensorBoard event files written without TensorFlow: TFRecord framing (masked CRC32C) around
hand-encoded `Event` protobufs holding scalar and histogram summaries, one file per run and split;
and a profiler trace of one chosen batch where the backend has a profiler (JAX)."""

from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path

from candleflow.models.backend import keras

_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as TFRecord uses it."""
    try:
        import google_crc32c

        return google_crc32c.value(data)
    except ImportError:
        crc = 0xFFFFFFFF
        for b in data:
            crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
        return crc ^ 0xFFFFFFFF


def _masked(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def event(
    wall_time: float, step: int, scalars: dict[str, float] | None = None, file_version: str | None = None
) -> bytes:
    """An `Event` message: wall_time (1, double), step (2, int64), file_version (3) or summary (5)."""
    msg = _varint(1 << 3 | 1) + struct.pack("<d", wall_time) + _varint(2 << 3 | 0) + _varint(step)
    if file_version is not None:
        msg += _bytes_field(3, file_version.encode())
    if scalars:
        values = b"".join(
            _bytes_field(1, _bytes_field(1, tag.encode()) + _varint(2 << 3 | 5) + struct.pack("<f", value))
            for tag, value in scalars.items()
        )
        msg += _bytes_field(5, values)
    return msg


def histogram_event(wall_time: float, step: int, tag: str, values, bins: int = 30) -> bytes:
    """An `Event` whose summary holds one `HistogramProto` of `values` (min 1, max 2, num 3, sum 4,
    sum_squares 5, bucket_limit 6 and bucket 7 as packed doubles), as TensorBoard's histograms tab
    reads it."""
    import numpy as np

    v = np.asarray(values, np.float64).ravel()
    v = v[np.isfinite(v)]
    lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi if hi > lo else lo + 1e-12))
    histo = (
        _varint(1 << 3 | 1)
        + struct.pack("<d", lo)
        + _varint(2 << 3 | 1)
        + struct.pack("<d", hi)
        + _varint(3 << 3 | 1)
        + struct.pack("<d", float(v.size))
        + _varint(4 << 3 | 1)
        + struct.pack("<d", float(v.sum()))
        + _varint(5 << 3 | 1)
        + struct.pack("<d", float((v * v).sum()))
        + _bytes_field(6, struct.pack(f"<{edges.size - 1}d", *edges[1:]))
        + _bytes_field(7, struct.pack(f"<{counts.size}d", *counts.astype(np.float64)))
    )
    value = _bytes_field(1, tag.encode()) + _bytes_field(5, histo)
    return (
        _varint(1 << 3 | 1)
        + struct.pack("<d", wall_time)
        + _varint(2 << 3 | 0)
        + _varint(step)
        + _bytes_field(5, _bytes_field(1, value))
    )


def record(data: bytes) -> bytes:
    """TFRecord framing: length, masked CRC of the length, data, masked CRC of the data."""
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", _masked(crc32c(header))) + data + struct.pack("<I", _masked(crc32c(data)))


class EventWriter:
    """Appends scalar events to `folder/events.out.tfevents.<time>.<host>`, flushed per write."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
        with open(self.path, "wb") as fh:
            fh.write(record(event(time.time(), 0, file_version="brain.Event:2")))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        with open(self.path, "ab") as fh:
            fh.write(record(event(time.time(), step, values)))

    def histograms(self, step: int, arrays: dict[str, object]) -> None:
        with open(self.path, "ab") as fh:
            for tag, values in arrays.items():
                fh.write(record(histogram_event(time.time(), step, tag, values)))


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
