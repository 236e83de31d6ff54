"""Training from stored chart images: random batches of 256 bar4 images (20 bars, 500 x 80, the
`images` defaults with layout bar4) through `stored_image_loader`, the loader a CNN trains from,
for HDF5 (gzip, the default, and LZ4), Zarr and NPZ, against rendering the same windows on the
fly (`image_loader`) and against h5py's own fancy indexing (what the reader did before), in one
process. Prints images/s and the ratios.

    python benchmarks/bench_stored_images.py [--n 20000] [--batches 40]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from candleflow.config import load_config
from candleflow.dataset.prepare import prepare
from candleflow.images.render import ImageWindows
from candleflow.images.store import ImageReader, ImageWriter
from candleflow.models.loaders import image_loader, stored_image_loader

B = 256


def epoch_rate(loader, batches: int) -> float:
    """Images per second over `batches` batches (the first one, which opens files, not timed)."""
    loader[0]
    t0 = time.perf_counter()
    for i in range(1, batches + 1):
        loader[i % len(loader)]
    return batches * B / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--bars", type=int, default=20, help="bars per image (the seeds' size: 100)")
    ap.add_argument("--height", type=int, default=None, help="image height in pixels (the seeds' size: 500)")
    args = ap.parse_args()
    keys = ["images.layout=bar4", f"images.bars={args.bars}"]
    cfg = load_config(None, keys + ([f"images.height={args.height}"] if args.height else []))
    prep = prepare(cfg)
    ends = prep.dataset.ends[: args.n]
    windows = ImageWindows(prep.candles, ends, cfg.images)
    labels = prep.dataset.labels[ends]
    folder = Path(tempfile.mkdtemp(prefix="bench-stored-"))
    stores = {}
    for name, fmt, compression in (
        ("hdf5 gzip", "hdf5", "gzip"),
        ("hdf5 lz4", "hdf5", "lz4"),
        ("hdf5 bits", "hdf5", "bits"),
        ("zarr", "zarr", "gzip"),
        ("npz", "npz", "gzip"),
    ):
        path = folder / f"{name.replace(' ', '-')}.{ {'hdf5': 'h5', 'zarr': 'zarr', 'npz': 'npz'}[fmt] }"
        t0 = time.perf_counter()
        with ImageWriter(path, len(ends), windows.shape, ["SYNTH"], fmt, compression=compression) as w:
            for lo in range(0, len(ends), 2048):
                idx = np.arange(lo, min(lo + 2048, len(ends)))
                w.write(
                    windows.render(idx), labels[idx], prep.candles.open_time[ends[idx]], np.zeros(idx.size, np.int16)
                )
        size = sum(p.stat().st_size for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file())
        print(
            f"{name}: wrote {len(ends):,} images in {time.perf_counter() - t0:.1f} s, {size / 2**20:.0f} MB", flush=True
        )
        stores[name] = path

    rates = {}
    for name, path in stores.items():
        rates[name] = epoch_rate(stored_image_loader(ImageReader(path), B, seed=0), args.batches)
    rates["rendered on the fly"] = epoch_rate(image_loader(windows, labels, B, shuffle=True, seed=0), args.batches)

    import h5py

    f = h5py.File(stores["hdf5 gzip"], "r")
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(3):
        f["images"][np.sort(rng.choice(len(ends), B, replace=False))]
    rates["h5py fancy indexing (before)"] = 3 * B / (time.perf_counter() - t0)

    base = rates["rendered on the fly"]
    print(f"\n{len(ends):,} bar4 images of {windows.shape}, random batches of {B}, {args.batches} batches each:")
    print("| path | images/s | vs rendering on the fly |\n| --- | --- | --- |")
    for name, r in rates.items():
        print(f"| {name} | {r:,.0f} | {r / base:.2f}x |")


if __name__ == "__main__":
    main()
