"""`candleflow images`: render the chart images of a prepared dataset's windows and store them
with labels, end times and the symbol, in the configured format."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from candleflow.config import ImagesConfig
from candleflow.dataset.labels import CLASS_NAMES
from candleflow.dataset.prepare import PreparedData
from candleflow.errors import ConfigError
from candleflow.fs.atomic import write_bytes
from candleflow.fs.guard import check_output
from candleflow.images.render import ImageWindows, preview_grid
from candleflow.images.render_gpu import gpu_available
from candleflow.images.store import SUFFIX, ImageWriter

RENDER_BATCH = 4096  # most windows rendered per call
BATCH_BYTES = 64 << 20  # and at most this many image bytes: the memory `images` holds at once


def render_batch(shape: tuple[int, int]) -> int:
    """Images rendered and written per step: RENDER_BATCH, fewer for large images."""
    return int(max(1, min(RENDER_BATCH, BATCH_BYTES // max(shape[0] * shape[1], 1))))


def _as_uint8(images: np.ndarray) -> np.ndarray:
    return images if images.dtype == np.uint8 else np.round(images * 255).astype(np.uint8)


@dataclass
class ImagesWritten:
    """What `write_image_dataset` wrote and how long it took."""

    out: Path
    files: list[Path]
    count: int
    shape: tuple[int, int]
    nbytes: int
    render_seconds: float
    write_seconds: float
    device: str


def select_windows(prep: PreparedData, part: str = "all", limit: int | None = None) -> np.ndarray:
    """Window positions of one split part ('all' for every window), at most `limit` of them, evenly spaced."""
    parts = ["all", *prep.split.parts]
    if part not in parts:
        raise ConfigError(f"part {part!r}: expected one of {', '.join(parts)} (this split has no other parts)")
    if limit is not None and limit < 1:
        raise ConfigError(f"limit {limit}: expected at least 1 image")
    pos = np.arange(len(prep.dataset)) if part == "all" else prep.split[part]
    if pos.size == 0:
        raise ConfigError(f"part {part!r} holds no windows")
    if limit is not None and limit < pos.size:
        pos = pos[np.linspace(0, pos.size - 1, limit).astype(np.int64)]
    return pos


def write_image_dataset(
    prep: PreparedData,
    cfg: ImagesConfig,
    out: str | Path,
    part: str = "all",
    limit: int | None = None,
    preview: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    overwrite: bool = False,
) -> ImagesWritten:
    """Render the images of `part`'s windows (every `limit`-th evenly when given) and write them to
    `out` as `cfg.format` in `cfg.mode`; `preview` also writes a PNG grid of 12 with their labels.
    `progress(n, total)` is called after each rendered batch of n of the total images. An existing
    `out` (or `preview`) is replaced only with `overwrite`, and a folder only if candleflow wrote it."""
    out = Path(out)
    if cfg.mode == "single" and cfg.format in SUFFIX and out.suffix == "":
        out = out.with_suffix(SUFFIX[cfg.format])
    check_output(out, overwrite)
    if preview is not None:
        check_output(preview, overwrite)
    ds = prep.dataset.subset(select_windows(prep, part, limit))
    windows = ImageWindows(prep.candles, ds.ends, cfg)
    shape = (int(windows.shape[0]), int(windows.shape[1]))
    labels, times = ds.labels_at(), prep.candles.open_time[ds.ends]
    meta = {
        "layout": cfg.layout,
        "bars": cfg.bars,
        "config": prep.config.model_dump(mode="json"),
        "fingerprint": prep.candles.fingerprint,
    }
    step = render_batch(shape)
    t_render = t_write = 0.0
    symbol = np.zeros(0, np.int16)
    with ImageWriter(
        out, len(ds), shape, [prep.candles.symbol], cfg.format, cfg.mode, cfg.images_per_file, meta, cfg.compression
    ) as w:
        for lo in range(0, len(ds), step):  # one batch in memory at a time, whatever the count
            idx = np.arange(lo, min(lo + step, len(ds)))
            t0 = time.perf_counter()
            imgs = _as_uint8(windows.render(idx))
            t1 = time.perf_counter()
            if symbol.size != idx.size:
                symbol = np.zeros(idx.size, np.int16)
            w.write(imgs, labels[idx], times[idx], symbol)
            del imgs  # before the next batch is rendered: one batch in memory, not two
            t_render += t1 - t0
            t_write += time.perf_counter() - t1
            if progress is not None:
                progress(idx.size, len(ds))
    files = w.files
    nbytes = sum(
        f.stat().st_size if f.is_file() else sum(x.stat().st_size for x in f.rglob("*") if x.is_file()) for f in files
    )
    if preview is not None:
        pick = np.linspace(0, len(ds) - 1, min(12, len(ds))).astype(int)
        titles = [f"{prep.candles.time_str(int(ds.ends[i]))[:13]} {CLASS_NAMES[y]}" for i, y in zip(pick, labels[pick])]
        write_bytes(Path(preview), preview_grid(_as_uint8(windows.render(pick)), titles))
    device = "GPU" if cfg.device != "cpu" and gpu_available() else "CPU"
    return ImagesWritten(out, files, len(ds), (int(shape[0]), int(shape[1])), nbytes, t_render, t_write, device)
