"""OHLC bar-chart images rendered from windows, a whole batch per call (numba, parallel over images).

Layouts:
- `bar4` (the original design): 4 pixels per bar (column 0 the high-low line, 1 the open pixel,
  2 the close pixel, 3 empty), width 4 x bars, `height` rows (default 500), white background,
  black bars. Row 0 (top) is the window's highest high, row height-1 its lowest low:
  row(p) = height-1 - round((p - low) / (high - low) * (height-1)).
- `jkx` (Jiang, Kelly & Xiu 2023): 3 pixels per bar (open tick left, high-low bar centre, close
  tick right), black background, white marks. With volume, the bottom `height // 5` rows hold
  volume bars (centre column, round(v / max v * rows) pixels high) below a 1-pixel gap, and prices
  use the rows above. An optional moving-average line is one pixel per bar at the centre column,
  joined across the columns between centres by linear interpolation; the price axis spans lows,
  highs and the average. Sizes 32x15, 64x60, 96x180 for 5, 20, 60 bars.
A bar with any missing (NaN) price is left blank; a flat window maps every price to the middle row.
With CuPy and a CUDA device the same kernels run on the GPU (`images_gpu.py`), else on the CPU
with one log line saying why.
"""

from __future__ import annotations

import numba
import numpy as np

from candleflow.errors import ConfigError, DataError

JKX_HEIGHT = {5: 32, 20: 64, 60: 96}


@numba.njit(inline="always")
def _row(p, lo, span, rows):
    if span <= 0.0:
        return (rows - 1) // 2
    r = int(np.floor((p - lo) / span * (rows - 1) + 0.5))
    return rows - 1 - min(max(r, 0), rows - 1)


@numba.njit(inline="always")
def _complete(o, h, l, c, b, t):
    """Bar t of image b has all four prices (a bar with any missing price is left blank)."""
    return np.isfinite(o[b, t]) and np.isfinite(h[b, t]) and np.isfinite(l[b, t]) and np.isfinite(c[b, t])


@numba.njit(parallel=True, cache=True)
def _bar4(o, h, l, c, out, fg, bg):
    n, w = o.shape
    rows = out.shape[1]
    for b in numba.prange(n):
        img = out[b]
        img[:, :] = bg
        lo, hi = np.inf, -np.inf
        for t in range(w):
            if _complete(o, h, l, c, b, t):
                lo = min(lo, l[b, t])
                hi = max(hi, h[b, t])
        if not np.isfinite(lo):
            continue
        span = hi - lo
        for t in range(w):
            if not (_complete(o, h, l, c, b, t)):
                continue
            y0 = _row(h[b, t], lo, span, rows)
            y1 = _row(l[b, t], lo, span, rows)
            for y in range(y0, y1 + 1):
                img[y, 4 * t] = fg
            img[_row(o[b, t], lo, span, rows), 4 * t + 1] = fg
            img[_row(c[b, t], lo, span, rows), 4 * t + 2] = fg


@numba.njit(parallel=True, cache=True)
def _jkx(o, h, l, c, v, ma, use_volume, use_ma, out, fg, bg):
    n, w = o.shape
    height = out.shape[1]
    vrows = height // 5 if use_volume else 0
    prows = height - vrows - 1 if use_volume else height
    for b in numba.prange(n):
        img = out[b]
        img[:, :] = bg
        lo, hi, vmax = np.inf, -np.inf, 0.0
        for t in range(w):
            if _complete(o, h, l, c, b, t):
                lo = min(lo, l[b, t])
                hi = max(hi, h[b, t])
                if use_volume and np.isfinite(v[b, t]):
                    vmax = max(vmax, v[b, t])
            if use_ma and np.isfinite(ma[b, t]):
                lo = min(lo, ma[b, t])
                hi = max(hi, ma[b, t])
        if not np.isfinite(lo):
            continue
        span = hi - lo
        for t in range(w):
            if _complete(o, h, l, c, b, t):
                for y in range(_row(h[b, t], lo, span, prows), _row(l[b, t], lo, span, prows) + 1):
                    img[y, 3 * t + 1] = fg
                img[_row(o[b, t], lo, span, prows), 3 * t] = fg
                img[_row(c[b, t], lo, span, prows), 3 * t + 2] = fg
                if use_volume and vmax > 0.0 and np.isfinite(v[b, t]):
                    k = int(np.floor(v[b, t] / vmax * vrows + 0.5))
                    for y in range(height - k, height):
                        img[y, 3 * t + 1] = fg
            if use_ma and np.isfinite(ma[b, t]):
                img[_row(ma[b, t], lo, span, prows), 3 * t + 1] = fg
                if t + 1 < w and np.isfinite(ma[b, t + 1]):
                    for k in range(1, 3):
                        m = ma[b, t] + (ma[b, t + 1] - ma[b, t]) * k / 3.0
                        img[_row(m, lo, span, prows), 3 * t + 1 + k] = fg


def _prices(ohlc: np.ndarray) -> tuple[np.ndarray, ...]:
    a = np.asarray(ohlc, dtype=np.float64)
    if a.ndim != 3 or a.shape[2] < 4:
        raise DataError(f"expected windows (batch, bars, 4 or 5) with open, high, low, close[, volume]; got {a.shape}")
    return tuple(np.ascontiguousarray(a[:, :, i]) for i in range(a.shape[2]))


def _finish(out: np.ndarray, dtype: str) -> np.ndarray:
    return out if dtype == "uint8" else out.astype(np.float32) / 255.0


def _use_gpu(device: str) -> bool:
    """'cpu', 'gpu' (an error without one) or 'auto' (the GPU when CuPy sees one, else the CPU)."""
    if device == "cpu":
        return False
    from candleflow.images.render_gpu import gpu_available

    if gpu_available():
        return True
    if device == "gpu":
        raise ConfigError(
            "images.device=gpu but no GPU is usable through CuPy (pip install cupy-cuda12x on a CUDA machine)"
        )
    return False


def render_bar4(
    ohlc: np.ndarray, height: int = 500, dtype: str = "uint8", out: np.ndarray | None = None, device: str = "auto"
) -> np.ndarray:
    """(B, bars, 4+) windows -> (B, height, 4 x bars) images, black bars on white."""
    o, h, l, c = _prices(ohlc)[:4]
    shape = (o.shape[0], height, 4 * o.shape[1])
    if _use_gpu(device):
        from candleflow.images.render_gpu import render_gpu

        return _finish(render_gpu("bar4", (o, h, l, c), shape), dtype)
    buf = out if out is not None and out.shape == shape and out.dtype == np.uint8 else np.empty(shape, np.uint8)
    _bar4(o, h, l, c, buf, np.uint8(0), np.uint8(255))
    return _finish(buf, dtype)


def render_jkx(
    ohlcv: np.ndarray,
    height: int | None = None,
    volume: bool = True,
    ma: np.ndarray | None = None,
    dtype: str = "uint8",
    out: np.ndarray | None = None,
    device: str = "auto",
) -> np.ndarray:
    """(B, bars, 5) windows (+ optional (B, bars) moving average) -> (B, height, 3 x bars) images,
    white marks on black. Height defaults to the paper's size for 5, 20 or 60 bars."""
    arrays = _prices(ohlcv)
    o, h, l, c = arrays[:4]
    bars = o.shape[1]
    if height is None:
        if bars not in JKX_HEIGHT:
            raise DataError(f"jkx has no standard height for {bars} bars (5, 20, 60); pass height=")
        height = JKX_HEIGHT[bars]
    if volume and len(arrays) < 5:
        raise DataError("volume=True needs a fifth (volume) column")
    v = arrays[4] if volume else np.zeros_like(o)
    m = np.ascontiguousarray(ma, dtype=np.float64) if ma is not None else np.zeros_like(o)
    if m.shape != o.shape:
        raise DataError(f"moving average shape {m.shape} does not match windows {o.shape}")
    shape = (o.shape[0], height, 3 * bars)
    if _use_gpu(device):
        from candleflow.images.render_gpu import render_gpu

        return _finish(render_gpu("jkx", (o, h, l, c, v), shape, volume, m if ma is not None else None), dtype)
    buf = out if out is not None and out.shape == shape and out.dtype == np.uint8 else np.empty(shape, np.uint8)
    _jkx(o, h, l, c, v, m, volume, ma is not None, buf, np.uint8(255), np.uint8(0))
    return _finish(buf, dtype)


def render(
    layout: str,
    ohlcv: np.ndarray,
    height: int | None = None,
    ma: np.ndarray | None = None,
    volume: bool = True,
    dtype: str = "uint8",
    out: np.ndarray | None = None,
    device: str = "auto",
) -> np.ndarray:
    """Render with a layout by name ('bar4' or 'jkx')."""
    if layout == "bar4":
        return render_bar4(ohlcv, height or 500, dtype, out, device)
    if layout == "jkx":
        return render_jkx(ohlcv, height, volume, ma, dtype, out, device)
    raise DataError(f"layout {layout!r}: expected 'bar4' or 'jkx'")


def preview_grid(images: np.ndarray, titles: list[str], columns: int = 4) -> bytes:
    """A PNG grid of images with a title above each (matplotlib, headless)."""
    import io

    from matplotlib.figure import Figure

    n = len(images)
    rows = -(-n // columns)
    h, w = images.shape[1:3]
    scale = 3.0 / max(h, w)
    fig = Figure(figsize=(columns * max(w * scale, 1.5), rows * (h * scale + 0.4)))
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    for ax, img, title in zip(axes, images, titles):
        ax.imshow(img, cmap="gray", vmin=0, vmax=255 if img.dtype == np.uint8 else 1, interpolation="nearest")
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[n:]:
        ax.set_visible(False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def ohlcv_matrix(candles) -> np.ndarray:
    """(N, 5) float64 C-contiguous open, high, low, close, volume of a Candles table."""
    return np.ascontiguousarray(
        np.stack([candles.open, candles.high, candles.low, candles.close, candles.volume], axis=1)
    )


def moving_average(candles, bars: int) -> np.ndarray:
    """Mean close over the last `bars` bars of the same segment (NaN with less history): causal."""
    out = np.full(len(candles), np.nan)
    for start, stop in candles.segments:
        c = candles.close[start:stop]
        if c.size >= bars:
            csum = np.concatenate([[0.0], np.cumsum(c)])
            out[start + bars - 1 : stop] = (csum[bars:] - csum[:-bars]) / bars
    return out


class ImageWindows:
    """Renders the chart image of any window end on demand: OHLCV windows are strided views of
    the candles, gathered and rendered a batch at a time (nothing stored)."""

    def __init__(self, candles, ends: np.ndarray, cfg) -> None:
        self.cfg = cfg
        self.ends = np.asarray(ends, np.int64)
        self.bars = cfg.bars
        if self.ends.size and self.ends.min() < self.bars - 1:
            raise DataError(f"a window end lies before bar {self.bars - 1}: no full {self.bars}-bar image")
        self.ohlcv = ohlcv_matrix(candles)
        self.ma = moving_average(candles, self.bars) if (cfg.layout == "jkx" and cfg.moving_average) else None
        seg = candles.segment_id
        if self.ends.size and np.any(seg[self.ends - self.bars + 1] != seg[self.ends]):
            raise DataError("an image window crosses a segment boundary")
        n = self.ohlcv.shape[0]
        s0, s1 = self.ohlcv.strides
        self._view = np.lib.stride_tricks.as_strided(
            self.ohlcv, (max(n - self.bars + 1, 0), self.bars, 5), (s0, s0, s1), writeable=False
        )
        # (height, width) of one image; (0, 0) when there are no windows
        self.shape: tuple[int, int] = tuple(self.render(np.array([0]))[0].shape) if self.ends.size else (0, 0)

    def __len__(self) -> int:
        return int(self.ends.size)

    def render(self, idx: np.ndarray) -> np.ndarray:
        """Images of windows idx as (B, H, W) in the configured dtype."""
        starts = self.ends[idx] - self.bars + 1
        win = self._view[starts]
        ma = None
        if self.ma is not None:
            ma = np.lib.stride_tricks.sliding_window_view(self.ma, self.bars)[starts]
        return render(
            self.cfg.layout, win, self.cfg.height, ma, self.cfg.volume, self.cfg.dtype, device=self.cfg.device
        )
