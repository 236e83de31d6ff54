"""Batch gather from zero-copy windows vs the per-sample alternatives, side by side.

Run: python benchmarks/bench_windows.py [--rows N]
Prints time per (256, 120, 8) batch and throughput for: candleflow's WindowDataset.gather (one
fancy-indexing copy from a strided view), np.stack over 256 per-sample slices (the original
generator), and a per-sample Python loop into a preallocated array; plus the memory a fully
materialised window array would need.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from candleflow.dataset.windows import WindowDataset


def timeit(fn, repeat: int) -> float:
    fn()
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - t) / repeat)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--window", type=int, default=120)
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((args.rows, 8), dtype=np.float32)
    labels = rng.integers(0, 3, args.rows).astype(np.int8)
    ds = WindowDataset.from_arrays(feats, labels, np.array([[0, args.rows]]), args.window)
    idx = rng.integers(0, len(ds), args.batch)
    W = args.window

    def stack():
        return np.stack([feats[e - W + 1 : e + 1] for e in ds.ends[idx]])

    out = np.empty((args.batch, W, 8), np.float32)

    def loop():
        for b, e in enumerate(ds.ends[idx]):
            out[b] = feats[e - W + 1 : e + 1]
        return out

    assert np.array_equal(ds.gather(idx), stack())
    batch_mb = args.batch * W * 8 * 4 / 2**20
    rows = [
        ("candleflow gather", timeit(lambda: ds.gather(idx), 200)),
        ("np.stack of per-sample slices", timeit(stack, 100)),
        ("per-sample loop into preallocated", timeit(loop, 100)),
    ]
    base = rows[0][1]
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}; numpy {np.__version__}")
    print(f"{args.rows:,} rows x 8 features, window {W}, batch {args.batch} ({batch_mb:.2f} MB per batch)")
    print(f"{'method':38s} {'ms/batch':>9s} {'GB/s':>7s} {'x slower than candleflow':>26s}")
    for name, t in rows:
        print(f"{name:38s} {t * 1e3:9.3f} {batch_mb / 1024 / t:7.2f} {t / base:26.1f}")
    print(
        f"features in memory: {feats.nbytes / 2**20:,.0f} MB; all windows materialised would take "
        f"{ds.materialised_nbytes() / 2**30:,.1f} GB ({ds.materialised_nbytes() / feats.nbytes:,.0f}x)"
    )


if __name__ == "__main__":
    main()
