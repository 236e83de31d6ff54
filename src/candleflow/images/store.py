"""Store rendered images with their label, window end time and symbol beside each one, plus run
metadata: HDF5, NPZ, Zarr (v3), PNG or JPEG; read any of them back by index or slice.

Mode 'single' writes one file (HDF5, NPZ) or store (Zarr) for all images; mode 'batch' writes
files of `images_per_file` images (`part-00000.h5`, ...). PNG and JPEG write one image per file
with an `index.parquet` beside them. Everything lands in a temporary folder (or name) first and is
renamed into place complete. JPEG blurs 1-pixel lines: it is for looking, not for training.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from candleflow.errors import DataError
from candleflow.fs.atomic import atomic_dir, atomic_path

log = logging.getLogger("candleflow")
FORMATS = ("hdf5", "npz", "zarr", "png", "jpeg")
SUFFIX = {"hdf5": ".h5", "npz": ".npz", "zarr": ".zarr"}


def write_images(
    path: str | Path,
    images: np.ndarray,
    labels: np.ndarray,
    end_time: np.ndarray,
    symbols: list[str] | np.ndarray,
    fmt: str = "hdf5",
    mode: str = "single",
    images_per_file: int = 50_000,
    meta: dict[str, Any] | None = None,
) -> list[Path]:
    """Write images (N, H, W) uint8 and their labels, end times (int64 ns) and symbols to `path`."""
    if fmt not in FORMATS:
        raise DataError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
    images = np.asarray(images)
    n = images.shape[0]
    sym = np.asarray(symbols).astype(str)
    if sym.ndim == 0 or sym.size == 1:
        sym = np.full(n, str(sym.reshape(-1)[0]))
    names = sorted(set(sym.tolist()))
    codes = np.searchsorted(np.array(names), sym).astype(np.int16)
    meta = dict(meta or {}) | {"symbols": names, "shape": list(images.shape[1:]), "count": int(n), "format": fmt}
    if fmt == "jpeg":
        log.warning("JPEG blurs the 1-pixel lines of chart images; use png, hdf5, npz or zarr for training")
        meta["lossy"] = True
    path = Path(path)
    cols: dict[str, np.ndarray] = {
        "labels": np.asarray(labels, np.int8),
        "end_time": np.asarray(end_time, np.int64),
        "symbol": codes,
    }
    if fmt in ("png", "jpeg") or mode == "batch":
        return _write_folder(path, images, cols, fmt, images_per_file if mode == "batch" else None, meta)
    return [_write_one(path, images, cols, fmt, meta)]


def _write_one(path: Path, images: np.ndarray, cols: dict[str, np.ndarray], fmt: str, meta: dict[str, Any]) -> Path:
    if fmt == "hdf5":
        import h5py

        with atomic_path(path, suffix=".h5") as tmp:
            with h5py.File(tmp, "w") as f:
                chunk = (min(256, max(images.shape[0], 1)), *images.shape[1:])
                f.create_dataset(
                    "images", data=images, chunks=chunk, compression="gzip", compression_opts=1, shuffle=False
                )
                for k, v in cols.items():
                    f.create_dataset(k, data=v)
                f.attrs["meta"] = json.dumps(meta)
    elif fmt == "npz":
        with atomic_path(path, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                arrays = {"images": images, "meta": np.array(json.dumps(meta)), **cols}
                np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
    elif fmt == "zarr":
        import zarr

        with atomic_dir(path, replace=True) as tmp:
            root = zarr.open_group(str(tmp), mode="w")
            root.create_array("images", data=images, chunks=(min(256, max(images.shape[0], 1)), *images.shape[1:]))
            for k, v in cols.items():
                root.create_array(k, data=v)
            root.attrs["meta"] = meta
    return path


def _write_folder(
    path: Path, images: np.ndarray, cols: dict[str, np.ndarray], fmt: str, per_file: int | None, meta: dict[str, Any]
) -> list[Path]:
    files: list[str] = []
    with atomic_dir(path, replace=True) as tmp:
        if fmt in ("png", "jpeg"):
            from PIL import Image

            ext = "png" if fmt == "png" else "jpg"
            for i, img in enumerate(images):
                name = f"{i:08d}.{ext}"
                Image.fromarray(img).save(tmp / name, **({"quality": 95} if fmt == "jpeg" else {"optimize": False}))
                files.append(name)
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.table({"file": files, **cols}), tmp / "index.parquet")
        else:
            for k, lo in enumerate(range(0, images.shape[0], per_file or images.shape[0])):
                hi = min(lo + (per_file or images.shape[0]), images.shape[0])
                name = f"part-{k:05d}{SUFFIX[fmt]}"
                _write_one(
                    tmp / name, images[lo:hi], {c: v[lo:hi] for c, v in cols.items()}, fmt, meta | {"offset": lo}
                )
                files.append(name)
        (tmp / "meta.json").write_text(json.dumps(meta | {"files": files}))
    return [path / f for f in files]


class ImageReader:
    """Images, labels and metadata from any stored format; index with an int, slice or array."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no image store here")
        self.parts: list[tuple[Path, str]] = []
        if self.path.is_dir() and (self.path / "meta.json").is_file():
            self.meta = json.loads((self.path / "meta.json").read_text())
            fmt = self.meta["format"]
            if fmt in ("png", "jpeg"):
                import pyarrow.parquet as pq

                t = pq.read_table(self.path / "index.parquet")
                self._files = t.column("file").to_pylist()
                self._cols = {k: t.column(k).to_numpy() for k in ("labels", "end_time", "symbol")}
            else:
                self.parts = [(self.path / f, fmt) for f in self.meta["files"]]
        else:
            fmt = "zarr" if self.path.is_dir() else ("hdf5" if self.path.suffix in (".h5", ".hdf5") else "npz")
            self.parts = [(self.path, fmt)]
            self.meta = self._read_part(self.path, fmt)[1]
        self.format = self.meta["format"]
        if self.parts:
            loaded = [self._read_part(p, f) for p, f in self.parts]
            self._images = [d["images"] for d, _ in loaded]
            self._cols = {
                k: np.concatenate([np.asarray(d[k][:]) for d, _ in loaded]) for k in ("labels", "end_time", "symbol")
            }
            self._offsets = np.cumsum([0] + [d["labels"].shape[0] for d, _ in loaded])

    @staticmethod
    def _read_part(path: Path, fmt: str) -> tuple[dict[str, Any], dict[str, Any]]:
        if fmt == "hdf5":
            import h5py

            f = h5py.File(path, "r")
            return {k: f[k] for k in ("images", "labels", "end_time", "symbol")}, json.loads(f.attrs["meta"])
        if fmt == "npz":
            z = np.load(path, allow_pickle=False)
            return {k: z[k] for k in ("images", "labels", "end_time", "symbol")}, json.loads(str(z["meta"]))
        import zarr

        g = zarr.open_group(str(path), mode="r")
        return {k: g[k] for k in ("images", "labels", "end_time", "symbol")}, dict(g.attrs["meta"])  # type: ignore[arg-type]

    def __len__(self) -> int:
        return int(self._cols["labels"].shape[0])

    def __getitem__(self, idx: int | slice | np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        single = isinstance(idx, (int, np.integer))
        rows = np.arange(len(self))[idx] if not single else np.array([int(idx) % len(self)])  # type: ignore[arg-type]
        if self.format in ("png", "jpeg"):
            from PIL import Image

            images = np.stack([np.asarray(Image.open(self.path / self._files[i])) for i in rows])
        else:
            images = np.empty((rows.size, *self.meta["shape"]), np.uint8)
            part = np.searchsorted(self._offsets, rows, side="right") - 1
            for p in np.unique(part):
                sel = np.flatnonzero(part == p)
                uniq, inverse = np.unique(rows[sel] - self._offsets[p], return_inverse=True)
                ds = self._images[p]
                data = ds.get_orthogonal_selection((uniq,)) if self.format == "zarr" else ds[uniq]
                images[sel] = np.asarray(data)[inverse]
        names = np.array(self.meta["symbols"])
        extra = {"end_time": self._cols["end_time"][rows], "symbol": names[self._cols["symbol"][rows]]}
        labels = self._cols["labels"][rows]
        if single:
            return images[0], labels[0], {k: v[0] for k, v in extra.items()}
        return images, labels, extra
