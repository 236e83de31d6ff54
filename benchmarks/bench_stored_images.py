"""Training from stored chart images: random batches of 256 bar4 images through
`stored_image_loader`, the loader a CNN trains from, for HDF5 (bits, the default, gzip and LZ4),
Zarr and NPZ, against rendering the same windows on the fly (`image_loader`), and against the
libraries' own reads of the same files (h5py's fancy indexing, h5py with hdf5plugin per image,
zarr's selection), in one process. Prints images/s and the ratios. The seeds' size is 100 bars,
500 x 400 (`--bars 100 --height 500`); the default is the `images` defaults (20 bars, 500 x 80).

    python benchmarks/bench_stored_images.py [--n 20000] [--batches 40] [--bars 100 --height 500]
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


def _rate(read, n: int, batches: int = 3) -> float:
    """Images per second of `read(sorted random rows)` over a few batches of B (a slow path: few)."""
    rng = np.random.default_rng(1)
    picks = [np.sort(rng.choice(n, B, replace=False)) for _ in range(batches)]
    t0 = time.perf_counter()
    for b in picks:
        read(b)
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

    # the libraries' own paths, beside candleflow's readers of the same files (issue 41: keep our
    # own chunk decoding and shard parsing only where this run says they are faster)
    import hdf5plugin  # noqa: F401  (h5py's LZ4 filter)
    import zarr

    lz4 = h5py.File(stores["hdf5 lz4"], "r")["images"]
    own_lz4, own_zarr = ImageReader(stores["hdf5 lz4"]), ImageReader(stores["zarr"])
    rates["lz4 uint8: candleflow's chunk decoding"] = _rate(lambda b: own_lz4[b], len(ends))
    rates["lz4 uint8: h5py + hdf5plugin per image"] = _rate(lambda b: np.stack([lz4[int(i)] for i in b]), len(ends))
    gz, own_gz = h5py.File(stores["hdf5 gzip"], "r")["images"], ImageReader(stores["hdf5 gzip"])
    rates["gzip uint8: candleflow's chunk decoding"] = _rate(lambda b: own_gz[b], len(ends))
    rates["gzip uint8: h5py per image"] = _rate(lambda b: np.stack([gz[int(i)] for i in b]), len(ends))
    z = zarr.open_group(str(stores["zarr"]), mode="r")["images"]
    rates["zarr uint8: candleflow's shard reader"] = _rate(lambda b: own_zarr[b], len(ends))
    rates["zarr uint8: zarr's own selection (oindex)"] = _rate(lambda b: z.oindex[b], len(ends))

    base = rates["rendered on the fly"]
    print(f"\n{len(ends):,} bar4 images of {windows.shape}, random batches of {B}, {args.batches} batches each:")
    print("| path | images/s | vs rendering on the fly |\n| --- | --- | --- |")
    for name, r in rates.items():
        print(f"| {name} | {r:,.0f} | {r / base:.2f}x |")


if __name__ == "__main__":
    main()
