"""TensorBoard event files written without TensorFlow: TFRecord framing (masked CRC32C) around
hand-encoded `Event` protobufs holding scalar summaries, one file per run and split."""

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


class EventLogger(keras.callbacks.Callback):
    """Writes loss, metrics, learning rate and memory per epoch to log_dir/train and
    log_dir/validation, TensorBoard's own layout, without TensorFlow."""

    def __init__(self, log_dir: str | Path) -> None:
        super().__init__()
        self.train = EventWriter(Path(log_dir) / "train")
        self.val = EventWriter(Path(log_dir) / "validation")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = {key: float(v) for key, v in (logs or {}).items() if isinstance(v, (int, float))}
        train = {f"epoch_{key}": v for key, v in logs.items() if not key.startswith("val_")}
        val = {f"epoch_{key[4:]}": v for key, v in logs.items() if key.startswith("val_")}
        self.train.scalars(epoch, train)
        if val:
            self.val.scalars(epoch, val)
