"""Chart-image rendering and storage: candleflow vs mplfinance drawing the same bars vs a per-image
PIL drawing loop, for 100-bar bar4 images (500 px high) and 20-bar jkx images; then write
throughput of every storage format. All in one run.

Run: python benchmarks/bench_images.py   (needs the bench extra: pip install -e ".[bench]")
"""

from __future__ import annotations

import io
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from candleflow.config import SyntheticSource
from candleflow.data.load import load_candles
from candleflow.images.render import render_bar4, render_jkx
from candleflow.images.store import write_images


def windows(candles, bars: int, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = np.stack([candles.open, candles.high, candles.low, candles.close, candles.volume], axis=1)
    starts = rng.integers(0, len(candles) - bars, n)
    return m[starts[:, None] + np.arange(bars)]


def pil_bar4(win: np.ndarray, height: int = 500) -> np.ndarray:
    from PIL import Image, ImageDraw

    bars = win.shape[0]
    img = Image.new("L", (4 * bars, height), 255)
    d = ImageDraw.Draw(img)
    lo, hi = win[:, 2].min(), win[:, 1].max()

    def y(p):
        return height - 1 - int(round((p - lo) / (hi - lo) * (height - 1)))

    for t, (o, h, l, c, _) in enumerate(win):
        d.line([(4 * t, y(h)), (4 * t, y(l))], fill=0)
        d.point((4 * t + 1, y(o)), fill=0)
        d.point((4 * t + 2, y(c)), fill=0)
    return np.asarray(img)


def pil_jkx(win: np.ndarray, height: int = 64) -> np.ndarray:
    from PIL import Image, ImageDraw

    bars = win.shape[0]
    vrows = height // 5
    prows = height - vrows - 1
    img = Image.new("L", (3 * bars, height), 0)
    d = ImageDraw.Draw(img)
    lo, hi, vmax = win[:, 2].min(), win[:, 1].max(), win[:, 4].max()

    def y(p):
        return prows - 1 - int(round((p - lo) / (hi - lo) * (prows - 1)))

    for t, (o, h, l, c, v) in enumerate(win):
        d.line([(3 * t + 1, y(h)), (3 * t + 1, y(l))], fill=255)
        d.point((3 * t, y(o)), fill=255)
        d.point((3 * t + 2, y(c)), fill=255)
        k = int(round(v / vmax * vrows))
        if k:
            d.line([(3 * t + 1, height - k), (3 * t + 1, height - 1)], fill=255)
    return np.asarray(img)


def mpf_image(win: np.ndarray, volume: bool) -> None:
    import mplfinance as mpf
    import pandas as pd

    df = pd.DataFrame(
        win,
        columns=["Open", "High", "Low", "Close", "Volume"],
        index=pd.date_range("2024-01-01", periods=win.shape[0], freq="h"),
    )
    fig, _ = mpf.plot(df, type="ohlc", volume=volume, returnfig=True, axisoff=True, figsize=(4, 5))
    buf = io.BytesIO()
    fig.savefig(buf, format="raw", dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)


def rate(fn, n: int) -> float:
    t = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t)


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    candles, _ = load_candles(SyntheticSource(n_bars=100_000))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"{'images':30s} {'method':34s} {'images/s':>12s} {'x slower than candleflow':>25s}")
    for name, bars, n_cf, render_cf, pil, vol in (
        ("bar4, 100 bars, 500x400", 100, 20_000, lambda w, out: render_bar4(w, 500, out=out), pil_bar4, False),
        ("jkx, 20 bars, 64x60 +volume", 20, 200_000, lambda w, out: render_jkx(w, out=out), pil_jkx, True),
    ):
        win = windows(candles, bars, n_cf)
        batch = 1024
        out = render_cf(win[:batch], None)  # compile, and the reused batch buffer

        def cf():
            for lo in range(0, n_cf, batch):
                render_cf(win[lo : lo + batch], out if win[lo : lo + batch].shape[0] == batch else None)

        r_cf = rate(cf, n_cf)
        r_pil = rate(lambda: [pil(w) for w in win[:1000]], 1000)
        r_mpf = rate(lambda: [mpf_image(w, vol) for w in win[:20]], 20)
        for method, r in (
            ("candleflow (numba, batch of 1024)", r_cf),
            ("PIL ImageDraw per image", r_pil),
            ("mplfinance per image", r_mpf),
        ):
            print(f"{name:30s} {method:34s} {r:12,.0f} {r_cf / r:25.1f}")
    print()
    jkx = render_jkx(windows(candles, 20, 50_000))
    bar4 = render_bar4(windows(candles, 100, 2_000), 500)
    labels = np.zeros(len(jkx), np.int8)
    print(f"{'storage':10s} {'images':28s} {'write images/s':>15s} {'MB/s (raw)':>11s} {'MB on disk':>11s}")
    with tempfile.TemporaryDirectory() as d:
        for fmt in ("hdf5", "npz", "zarr", "png", "jpeg"):
            for tag, imgs in (("jkx 64x60", jkx if fmt not in ("png", "jpeg") else jkx[:5000]), ("bar4 500x400", bar4)):
                target = Path(d) / f"{fmt}-{tag.split()[0]}"
                t = time.perf_counter()
                write_images(target, imgs, labels[: len(imgs)], np.arange(len(imgs)), ["SYNTH"], fmt)
                dt = time.perf_counter() - t
                size = sum(
                    p.stat().st_size for p in ([target] if target.is_file() else target.rglob("*")) if p.is_file()
                )
                print(
                    f"{fmt:10s} {tag + f' x {len(imgs):,}':28s} {len(imgs) / dt:15,.0f} "
                    f"{imgs.nbytes / 2**20 / dt:11.1f} {size / 2**20:11.1f}"
                )


def at_scale(n: int, fmt: str = "hdf5") -> None:
    """`write_image_dataset` end to end for n bar4 images of 100 bars (500 x 400): images/s, peak
    resident memory (polled), bytes on disk, and random single-image reads back."""
    import threading

    import psutil

    from candleflow.config import load_config
    from candleflow.dataset.prepare import prepare
    from candleflow.images.store import ImageReader
    from candleflow.images.write import write_image_dataset

    prep = prepare(load_config(None, [f"source.n_bars={n + 400}", "source.interval=1m", "dataset.val_fraction=0.01"]))
    cfg = prep.config.images.model_copy(update={"layout": "bar4", "bars": 100, "height": 500, "format": fmt})
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = [base]
    done = threading.Event()

    def poll():
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.05)

    watcher = threading.Thread(target=poll, daemon=True)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        target = Path(d) / f"bar4{ {'hdf5': '.h5', 'zarr': '.zarr', 'npz': '.npz'}.get(fmt, '') }"
        watcher.start()
        t = time.perf_counter()
        written = write_image_dataset(prep, cfg, target, limit=n)
        dt = time.perf_counter() - t
        done.set()
        watcher.join()
        r = ImageReader(target)
        rng = np.random.default_rng(0)
        reads = []
        for i in rng.integers(0, len(r), 200):
            t0 = time.perf_counter()
            r[int(i)]
            reads.append(time.perf_counter() - t0)
        print(
            f"{fmt} at scale: {written.count:,} bar4 images (500 x 400, {written.count * 200_000 / 2**30:.1f} GiB raw) in "
            f"{dt:.1f} s = {written.count / dt:,.0f} images/s (render {written.render_seconds:.1f} s, write "
            f"{written.write_seconds:.1f} s); peak resident memory {peak[0] / 2**20:,.0f} MB ({(peak[0] - base) / 2**20:,.0f} MB "
            f"above the start); {written.nbytes / 2**20:,.0f} MB on disk; random single-image read: median "
            f"{np.median(reads) * 1e3:.2f} ms, p95 {np.percentile(reads, 95) * 1e3:.2f} ms"
        )


if __name__ == "__main__":
    import sys

    if len(sys.argv) > 2 and sys.argv[1] == "--scale":  # python benchmarks/bench_images.py --scale 1000000 [hdf5]
        at_scale(int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "hdf5")
    else:
        main()
