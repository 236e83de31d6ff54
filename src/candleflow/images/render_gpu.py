"""The chart renderers on a GPU with CuPy: the same rules as `images.py`, one CUDA thread per image,
compiled without fused multiply-add so every pixel lands where the CPU path puts it."""

from __future__ import annotations

import functools
import logging

import numpy as np

log = logging.getLogger("candleflow")

_SOURCE = r"""
// NVRTC compiles without the C headers: no INFINITY macro, so spell the IEEE bit patterns
#define CF_INF __longlong_as_double(0x7ff0000000000000LL)
__device__ int row_of(double p, double lo, double span, int rows) {
    if (span <= 0.0) return (rows - 1) / 2;
    int r = (int)floor((p - lo) / span * (double)(rows - 1) + 0.5);
    r = r < 0 ? 0 : (r > rows - 1 ? rows - 1 : r);
    return rows - 1 - r;
}
__device__ bool ok4(const double* o, const double* h, const double* l, const double* c, long i) {
    return isfinite(o[i]) && isfinite(h[i]) && isfinite(l[i]) && isfinite(c[i]);
}
extern "C" __global__ void bar4(const double* o, const double* h, const double* l, const double* c,
                                int n, int w, int rows, unsigned char* out) {
    int b = blockDim.x * blockIdx.x + threadIdx.x;
    if (b >= n) return;
    unsigned char* img = out + (long)b * rows * 4 * w;
    const long base = (long)b * w;
    double lo = CF_INF, hi = -CF_INF;
    for (int t = 0; t < w; t++) if (ok4(o, h, l, c, base + t)) { lo = fmin(lo, l[base + t]); hi = fmax(hi, h[base + t]); }
    if (!isfinite(lo)) return;
    double span = hi - lo;
    for (int t = 0; t < w; t++) {
        long i = base + t;
        if (!ok4(o, h, l, c, i)) continue;
        int y0 = row_of(h[i], lo, span, rows), y1 = row_of(l[i], lo, span, rows);
        for (int y = y0; y <= y1; y++) img[(long)y * 4 * w + 4 * t] = 0;
        img[(long)row_of(o[i], lo, span, rows) * 4 * w + 4 * t + 1] = 0;
        img[(long)row_of(c[i], lo, span, rows) * 4 * w + 4 * t + 2] = 0;
    }
}
extern "C" __global__ void jkx(const double* o, const double* h, const double* l, const double* c,
                               const double* v, const double* ma, int use_volume, int use_ma,
                               int n, int w, int height, unsigned char* out) {
    int b = blockDim.x * blockIdx.x + threadIdx.x;
    if (b >= n) return;
    const int W = 3 * w;
    unsigned char* img = out + (long)b * height * W;
    const long base = (long)b * w;
    int vrows = use_volume ? height / 5 : 0;
    int prows = use_volume ? height - vrows - 1 : height;
    double lo = CF_INF, hi = -CF_INF, vmax = 0.0;
    for (int t = 0; t < w; t++) {
        long i = base + t;
        if (ok4(o, h, l, c, i)) {
            lo = fmin(lo, l[i]); hi = fmax(hi, h[i]);
            if (use_volume && isfinite(v[i])) vmax = fmax(vmax, v[i]);
        }
        if (use_ma && isfinite(ma[i])) { lo = fmin(lo, ma[i]); hi = fmax(hi, ma[i]); }
    }
    if (!isfinite(lo)) return;
    double span = hi - lo;
    for (int t = 0; t < w; t++) {
        long i = base + t;
        if (ok4(o, h, l, c, i)) {
            for (int y = row_of(h[i], lo, span, prows); y <= row_of(l[i], lo, span, prows); y++) img[(long)y * W + 3 * t + 1] = 255;
            img[(long)row_of(o[i], lo, span, prows) * W + 3 * t] = 255;
            img[(long)row_of(c[i], lo, span, prows) * W + 3 * t + 2] = 255;
            if (use_volume && vmax > 0.0 && isfinite(v[i])) {
                int k = (int)floor(v[i] / vmax * (double)vrows + 0.5);
                for (int y = height - k; y < height; y++) img[(long)y * W + 3 * t + 1] = 255;
            }
        }
        if (use_ma && isfinite(ma[i])) {
            img[(long)row_of(ma[i], lo, span, prows) * W + 3 * t + 1] = 255;
            if (t + 1 < w && isfinite(ma[i + 1])) {
                for (int k = 1; k < 3; k++) {
                    double m = ma[i] + (ma[i + 1] - ma[i]) * (double)k / 3.0;
                    img[(long)row_of(m, lo, span, prows) * W + 3 * t + 1 + k] = 255;
                }
            }
        }
    }
}
"""


@functools.lru_cache(maxsize=1)
def gpu_available() -> bool:
    """True when CuPy imports and sees a CUDA device; otherwise logs once why rendering uses the CPU."""
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            return True
        reason = "no CUDA device"
    except Exception as exc:  # ImportError, or CUDA runtime errors without a driver
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'CuPy not installed'}"
    log.info("chart images render on the CPU (numba): GPU path unavailable (%s)", reason)
    return False


@functools.lru_cache(maxsize=1)
def _module():
    import cupy

    return cupy.RawModule(code=_SOURCE, options=("--fmad=false",))


def render_gpu(
    layout: str,
    arrays: tuple[np.ndarray, ...],
    shape: tuple[int, int, int],
    volume: bool = True,
    ma: np.ndarray | None = None,
) -> np.ndarray:
    """Render on the GPU; arrays are (B, bars) float64 open, high, low, close[, volume]."""
    import cupy as cp

    n = shape[0]
    dev = [cp.asarray(a, dtype=cp.float64) for a in arrays]
    threads = 128
    blocks = (n + threads - 1) // threads
    if layout == "bar4":
        out = cp.full(shape, 255, dtype=cp.uint8)
        _module().get_function("bar4")(
            (blocks,), (threads,), (*dev[:4], np.int32(n), np.int32(dev[0].shape[1]), np.int32(shape[1]), out)
        )
    else:
        out = cp.zeros(shape, dtype=cp.uint8)
        v = dev[4] if volume else cp.zeros_like(dev[0])
        m = cp.asarray(ma, dtype=cp.float64) if ma is not None else cp.zeros_like(dev[0])
        _module().get_function("jkx")(
            (blocks,),
            (threads,),
            (
                *dev[:4],
                v,
                m,
                np.int32(volume),
                np.int32(ma is not None),
                np.int32(n),
                np.int32(dev[0].shape[1]),
                np.int32(shape[1]),
                out,
            ),
        )
    return cp.asnumpy(out)
