"""Store rendered images with their label, window end time and symbol beside each one, plus run
metadata: HDF5, NPZ, Zarr (v3), PNG or JPEG; read any of them back by index or slice.

Mode 'single' writes one file (HDF5, NPZ) or store (Zarr) for all images; mode 'batch' writes
files of `images_per_file` images (`part-00000.h5`, ...). PNG and JPEG write one image per file
with an `index.parquet` beside them. Everything lands in a temporary folder (or name) first and is
renamed into place complete. JPEG blurs 1-pixel lines: it is for looking, not for training.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from candleflow.errors import DataError
from candleflow.fs.atomic import atomic_dir, atomic_path
from candleflow.images.chunks import (
    H5_DEFLATE,
    H5_FILTERS,
    H5_LZ4,
    decode_h5_chunk,
    h5_single_filter,
    hdf5_gzip_chunk,
    hdf5_lz4_chunk,
    require_codecs,
    zarr_shard_layout,
    zstd_image,
)

log = logging.getLogger("candleflow")
FORMATS = ("hdf5", "npz", "zarr", "png", "jpeg")
SUFFIX = {"hdf5": ".h5", "npz": ".npz", "zarr": ".zarr"}


IMAGE_CHUNK = 1  # images per HDF5 chunk / Zarr inner chunk: a random single image reads one chunk
ZARR_SHARD = 256  # images per Zarr shard file (inner chunks of one image; a million images, 3,907 files)


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
    compression: str = "bits",
) -> list[Path]:
    """Write images (N, H, W) uint8 and their labels, end times (int64 ns) and symbols to `path`
    (HDF5 kept as `compression` says: bits, one bit per pixel (images/packing.py), gzip, which any
    HDF5 reader opens as images, or lz4)."""
    images = np.asarray(images)
    n = images.shape[0]
    sym = np.asarray(symbols).astype(str)
    if sym.ndim == 0 or sym.size == 1:
        sym = np.full(n, str(sym.reshape(-1)[0]))
    names = sorted(set(sym.tolist()))
    codes = np.searchsorted(np.array(names), sym).astype(np.int16)
    with ImageWriter(path, n, images.shape[1:], names, fmt, mode, images_per_file, meta, compression) as w:
        w.write(images, labels, end_time, codes)
    return w.files


class ImageWriter:
    """Images streamed into a store batch by batch, in order, so memory holds one batch, not the
    dataset: `with ImageWriter(path, n, shape, symbols, fmt) as w: w.write(imgs, labels, times,
    symbol_codes)`. Everything goes to a temporary name and is renamed into place only when all
    `n` images are written and the block ends without an error."""

    def __init__(
        self,
        path: str | Path,
        n: int,
        shape: tuple[int, ...],
        symbols: list[str],
        fmt: str = "hdf5",
        mode: str = "single",
        images_per_file: int = 50_000,
        meta: dict[str, Any] | None = None,
        compression: str = "bits",
    ) -> None:
        if fmt not in FORMATS:
            raise DataError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
        if compression not in H5_FILTERS:
            raise DataError(f"compression {compression!r}: expected one of {', '.join(H5_FILTERS)}")
        require_codecs(fmt, compression)  # said before anything is written
        self.compression = compression
        self.path, self.n, self.shape, self.fmt = Path(path), int(n), tuple(int(v) for v in shape), fmt
        self.folder = fmt in ("png", "jpeg") or mode == "batch"
        self.per_file = images_per_file if mode == "batch" and fmt not in ("png", "jpeg") else self.n
        self.meta = dict(meta or {}) | {"symbols": symbols, "shape": list(self.shape), "count": self.n, "format": fmt}
        if fmt == "jpeg":
            log.warning("JPEG blurs the 1-pixel lines of chart images; use png, hdf5, npz or zarr for training")
            self.meta["lossy"] = True
        self.written = 0
        self.files: list[Path] = []
        self._names: list[str] = []
        self._index: dict[str, list[np.ndarray]] = {"labels": [], "end_time": [], "symbol": []}
        self._part: _Part | None = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> ImageWriter:
        if self.folder:
            self._tmp = self._stack.enter_context(atomic_dir(self.path, replace=True))
        return self

    def write(self, images: np.ndarray, labels: np.ndarray, end_time: np.ndarray, symbol: np.ndarray) -> None:
        """Append the next images (B, H, W) uint8 with their labels, end times and symbol codes."""
        images = np.asarray(images)
        if images.shape[1:] != self.shape or images.dtype != np.uint8:
            raise DataError(f"images of {images.dtype} {images.shape[1:]}; this store takes uint8 {self.shape}")
        if self.written + images.shape[0] > self.n:
            raise DataError(f"more than the {self.n} images this store was opened for")
        cols: dict[str, np.ndarray] = {
            "labels": np.asarray(labels, np.int8),
            "end_time": np.asarray(end_time, np.int64),
            "symbol": np.asarray(symbol, np.int16),
        }
        if self.fmt in ("png", "jpeg"):
            self._write_files(images)
            for k, v in cols.items():
                self._index[k].append(v)
            self.written += images.shape[0]
            return
        lo = 0
        while lo < images.shape[0]:
            if self._part is None:
                self._open_part()
            assert self._part is not None
            take = min(images.shape[0] - lo, self._part.n - self._part.written)
            self._part.write(images[lo : lo + take], {k: v[lo : lo + take] for k, v in cols.items()})
            lo += take
            self.written += take
            if self._part.written == self._part.n:
                self._part.close()
                self._part = None

    def _open_part(self) -> None:
        offset = self.written
        size = min(self.per_file, self.n - offset)
        if self.folder:
            name = f"part-{len(self._names):05d}{SUFFIX[self.fmt]}"
            self._names.append(name)
            target = self._tmp / name
        else:
            target = self.path
        meta = self.meta | ({"offset": offset} if self.folder else {})
        self._part = _Part(target, size, self.shape, self.fmt, meta, not self.folder, self.compression)

    def _write_files(self, images: np.ndarray) -> None:
        from PIL import Image

        ext = "png" if self.fmt == "png" else "jpg"
        for i, img in enumerate(images, start=self.written):
            name = f"{i:08d}.{ext}"
            Image.fromarray(img).save(
                self._tmp / name, **({"quality": 95} if self.fmt == "jpeg" else {"optimize": False})
            )
            self._names.append(name)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None and self.written != self.n:
                raise DataError(f"{self.path}: {self.written} images written, {self.n} expected; nothing kept")
            if exc_type is None and self.n == 0 and not self.folder:
                self._open_part()
            if self._part is not None:
                self._part.close(commit=exc_type is None and self.written == self.n)
                self._part = None
            if self.folder and exc_type is None:
                if self.fmt in ("png", "jpeg"):
                    import pyarrow as pa
                    import pyarrow.parquet as pq

                    cols = {k: np.concatenate(v) if v else np.zeros(0) for k, v in self._index.items()}
                    pq.write_table(pa.table({"file": self._names, **cols}), self._tmp / "index.parquet")
                (self._tmp / "meta.json").write_text(json.dumps(self.meta | {"files": self._names}))
        except BaseException:
            if self._part is not None:  # the unfinished file goes with the failure
                self._part.close(commit=False)
                self._part = None
            self._stack.__exit__(*sys.exc_info())
            raise
        self._stack.__exit__(exc_type, exc, tb)
        self.files = [self.path / f for f in self._names] if self.folder else [self.path]


class _Part:
    """One HDF5, NPZ or Zarr file (or store) of `n` images, filled in order."""

    def __init__(
        self,
        path: Path,
        n: int,
        shape: tuple[int, ...],
        fmt: str,
        meta: dict[str, Any],
        atomic: bool,
        compression: str = "bits",
    ):
        self.path, self.n, self.shape, self.fmt, self.meta = path, n, shape, fmt, meta
        self.compression = compression
        self.written = 0
        self._stack = contextlib.ExitStack()
        if fmt == "zarr":
            tmp = self._stack.enter_context(atomic_dir(path, replace=True)) if atomic else path
            import zarr

            self.root = zarr.open_group(str(tmp), mode="w")
            shard = (min(ZARR_SHARD, max(n, 1)), *shape)
            self.images = self.root.create_array(
                "images", shape=(n, *shape), dtype="uint8", chunks=(IMAGE_CHUNK, *shape), shards=shard
            )
            self.cols = {
                k: self.root.create_array(k, shape=(n,), dtype=dt, chunks=(max(n, 1),))
                for k, dt in (("labels", "int8"), ("end_time", "int64"), ("symbol", "int16"))
            }
            self._pending: list[np.ndarray] = []  # images waiting to fill a whole shard
            self._pending_from = 0
            return
        suffix = ".h5" if fmt == "hdf5" else ".npz"
        tmp = self._stack.enter_context(atomic_path(path, suffix=suffix)) if atomic else path
        if fmt == "hdf5":
            import h5py

            self.file = self._stack.enter_context(h5py.File(tmp, "w"))
            filters: dict[str, Any] = {}
            stored = shape
            if compression == "bits":  # one bit per pixel, rows packed (images/packing.py), chunks unfiltered
                stored = (*shape[:-1], (shape[-1] + 7) // 8)
            elif n and compression == "lz4":
                import hdf5plugin

                filters = hdf5plugin.LZ4()
            elif n:
                filters = {"compression": "gzip", "compression_opts": 1}
            self.h5images = self.file.create_dataset(
                "images", shape=(n, *stored), dtype="uint8", chunks=(IMAGE_CHUNK, *stored) if n else None, **filters
            )
            if compression == "bits":
                self.h5images.attrs["packing"] = "bits"
                self.h5images.attrs["width"] = int(shape[-1])
            self.pool = self._stack.enter_context(ThreadPoolExecutor(max_workers=os.cpu_count() or 1))
            self.cols = {
                k: self.file.create_dataset(k, shape=(n,), dtype=dt)
                for k, dt in (("labels", "int8"), ("end_time", "int64"), ("symbol", "int16"))
            }
            self.file.attrs["meta"] = json.dumps(meta)
        else:  # npz: a zip whose images.npy member is streamed through deflate
            self.fh = self._stack.enter_context(open(tmp, "wb"))
            self.zip = self._stack.enter_context(
                zipfile.ZipFile(self.fh, "w", zipfile.ZIP_DEFLATED, allowZip64=True, compresslevel=1)
            )
            self.member = self._stack.enter_context(self.zip.open("images.npy", "w", force_zip64=True))
            np.lib.format.write_array_header_2_0(
                self.member, {"descr": "|u1", "fortran_order": False, "shape": (n, *shape)}
            )
            self.cols_np: dict[str, list[np.ndarray]] = {"labels": [], "end_time": [], "symbol": []}

    def write(self, images: np.ndarray, cols: dict[str, np.ndarray]) -> None:
        lo, hi = self.written, self.written + images.shape[0]
        if self.fmt == "hdf5" and self.compression == "bits":
            from candleflow.images.packing import pack_bits

            self.h5images[lo:hi] = pack_bits(images)
            for k, v in cols.items():
                self.cols[k][lo:hi] = v
        elif self.fmt == "hdf5":  # each image compressed on all cores, its chunk written as it is
            encode = hdf5_lz4_chunk if self.compression == "lz4" else hdf5_gzip_chunk
            for i, chunk in enumerate(self.pool.map(encode, images), start=lo):
                self.h5images.id.write_direct_chunk((i, *([0] * len(self.shape))), chunk)
            for k, v in cols.items():
                self.cols[k][lo:hi] = v
        elif self.fmt == "npz":
            self.member.write(np.ascontiguousarray(images).tobytes())
            for k, v in cols.items():
                self.cols_np[k].append(v)
        else:
            for k, v in cols.items():
                self.cols[k][lo:hi] = v
            self._pending.append(np.ascontiguousarray(images))
            held = sum(p.shape[0] for p in self._pending)
            if held >= ZARR_SHARD or hi == self.n:  # write whole shards: a shard rewritten is a shard re-read
                self._flush_shards(hi == self.n)
        self.written = hi

    def _flush_shards(self, last: bool) -> None:
        block = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        whole = block.shape[0] if last else block.shape[0] - block.shape[0] % ZARR_SHARD
        if whole:
            lo = self._pending_from
            self.images[lo : lo + whole] = block[:whole]
            self._pending_from += whole
        self._pending = [block[whole:]] if whole < block.shape[0] else []

    def close(self, commit: bool = True) -> None:
        """Finish the file and rename it into place, or (commit=False) drop it."""
        if not commit:
            self._stack.__exit__(_Abort, _Abort(), None)  # the temporary file goes
            return
        if self.fmt == "npz":
            self.member.close()
            arrays = {
                k: np.concatenate(v) if v else np.zeros(0, dt)
                for (k, v), dt in zip(self.cols_np.items(), (np.int8, np.int64, np.int16))
            }
            arrays["meta"] = np.array(json.dumps(self.meta))
            for k, v in arrays.items():
                with self.zip.open(f"{k}.npy", "w", force_zip64=True) as m:
                    np.lib.format.write_array(m, v, allow_pickle=False)
        elif self.fmt == "zarr":
            self.root.attrs["meta"] = self.meta
        self._stack.__exit__(None, None, None)


class _Abort(Exception):
    """Passed to a part's exit stack to drop its temporary file instead of committing it."""


NPZ_MAX_BYTES = 4 * 2**30  # NPZ images are read whole: above this, a random-access format is the answer


class _NpzImages:
    """The images of an NPZ store, read on first use (opening one reads only its header): a
    deflated zip member cannot be read at random, so the whole array is decompressed once, and a
    store above NPZ_MAX_BYTES is refused in one line naming the formats that read at random."""

    def __init__(self, z: Any, path: Path):
        self.z, self.path = z, path
        self._data: np.ndarray | None = None
        with z.zip.open("images.npy") as member:
            version = np.lib.format.read_magic(member)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            self.shape = tuple(read(member)[0])

    def __getitem__(self, idx: Any) -> np.ndarray:
        if self._data is None:
            size = int(np.prod(self.shape))
            if size > NPZ_MAX_BYTES:
                raise DataError(
                    f"{self.path}: {size / 2**30:.1f} GB of NPZ images, which can only be read whole (the limit is "
                    f"{NPZ_MAX_BYTES / 2**30:.0f} GB); write them as hdf5 or zarr, which read single images at random"
                )
            self._data = self.z["images"]
        return self._data[idx]


class ImageReader:
    """Images, labels and metadata from any stored format; index with an int, slice or array."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no image store here")
        self._candles: Any = None  # the recorded source's candles, read on the first windows() call
        self._pool: ThreadPoolExecutor | None = None  # decodes HDF5 and Zarr chunks on every core
        self._shard_index: dict[Path, np.ndarray] = {}  # Zarr shard file -> (offset, length) per image
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

            with contextlib.suppress(ImportError):  # LZ4 files need it for h5py's own reads (candleflow decodes itself)
                import hdf5plugin  # noqa: F401

            f = h5py.File(path, "r")
            return {k: f[k] for k in ("images", "labels", "end_time", "symbol")}, json.loads(f.attrs["meta"])
        if fmt == "npz":
            z = np.load(path, allow_pickle=False)
            cols = {k: z[k] for k in ("labels", "end_time", "symbol")}
            return {"images": _NpzImages(z, path), **cols}, json.loads(str(z["meta"]))
        require_codecs("zarr", "")
        import zarr

        g = zarr.open_group(str(path), mode="r")
        return {k: g[k] for k in ("images", "labels", "end_time", "symbol")}, dict(g.attrs["meta"])  # type: ignore[arg-type]

    def __len__(self) -> int:
        return int(self._cols["labels"].shape[0])

    def _zarr_images(self, arr: Any, path: Path, rows: np.ndarray) -> np.ndarray:
        """Images `rows` (sorted, unique) of a Zarr store. The layout candleflow writes (shards of
        one-image inner chunks, zstd, the shard index at the end, on a local disk) is read
        directly: each shard's index once, then each image's bytes and a zstd decode on every
        core (zarr's own selection cost 2.8 ms an image, a plain loop 0.9 ms). Anything else: zarr."""
        shape = tuple(arr.shape[1:])
        layout = zarr_shard_layout(arr, path)
        if layout is None:
            return np.stack([np.asarray(arr[int(r)]) for r in rows]) if rows.size else np.empty((0, *shape), np.uint8)
        per_shard, folder = layout
        nbytes = int(np.prod(shape))
        chunks = []
        for shard in np.unique(rows // per_shard):
            file = folder / str(int(shard)) / ("/".join("0" * len(shape)))
            index = self._shard_index.get(file)
            if index is None:
                size = file.stat().st_size
                with open(file, "rb") as fh:
                    fh.seek(size - (per_shard * 16 + 4))
                    index = np.frombuffer(fh.read(per_shard * 16), "<u8").reshape(per_shard, 2)
                self._shard_index[file] = index
            with open(file, "rb") as fh:
                for r in rows[rows // per_shard == shard]:
                    offset, length = index[int(r) % per_shard]
                    fh.seek(int(offset))
                    chunks.append(fh.read(int(length)))
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1)
        decoded = list(self._pool.map(lambda c: zstd_image(c, nbytes), chunks))
        return np.stack(decoded).reshape(rows.size, *shape) if decoded else np.empty((0, *shape), np.uint8)

    def _h5_images(self, ds: Any, rows: np.ndarray, unit: bool = False) -> np.ndarray:
        """Images `rows` (sorted, unique) of an HDF5 dataset. One image per chunk, compressed by
        deflate or LZ4 (what candleflow writes): each chunk read raw and decoded on every core,
        so a random batch costs what its single reads cost (h5py's own fancy indexing walks the
        selection point by point: 256 random images took 1.9 s). Bit-packed images (`packing`
        attribute) are unpacked on every core, with `unit` straight to float32 in [0, 1].
        Anything else: h5py per image."""
        if ds.attrs.get("packing") == "bits":
            return self._h5_bits(ds, rows, unit)
        shape = tuple(ds.shape[1:])
        filter_id = h5_single_filter(ds)
        if ds.chunks != (1, *shape) or filter_id not in (H5_DEFLATE, H5_LZ4):
            return np.stack([ds[int(r)] for r in rows]) if rows.size else np.empty((0, *shape), np.uint8)
        nbytes = int(np.prod(shape))
        zeros = (0,) * len(shape)
        chunks = [ds.id.read_direct_chunk((int(r), *zeros))[1] for r in rows]  # raw bytes: fast, serial in HDF5
        out = np.empty((rows.size, nbytes), np.uint8)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1)

        def decode(i: int) -> None:  # straight into the batch: one copy per image
            out[i] = decode_h5_chunk(chunks[i], filter_id, nbytes)

        list(self._pool.map(decode, range(rows.size), chunksize=max(1, rows.size // (4 * (os.cpu_count() or 1)))))
        return out.reshape(rows.size, *shape)

    @staticmethod
    def _h5_bits(ds: Any, rows: np.ndarray, unit: bool) -> np.ndarray:
        """Bit-packed images: the unfiltered one-image chunks read raw, then unpacked (uint8 of 0
        and 255, or with `unit` float32 0.0 and 1.0)."""
        from candleflow.images.packing import unpack_bits, unpack_unit_float

        packed_shape, width = tuple(ds.shape[1:]), int(ds.attrs["width"])
        if not packed_shape or not 8 * packed_shape[-1] - 8 < width <= 8 * packed_shape[-1]:
            raise DataError(
                f"{ds.file.filename}: bit-packed images of {packed_shape[-1] if packed_shape else 0} bytes a row "
                f"cannot be {width} pixels wide"
            )
        if (
            ds.chunks == (1, *packed_shape)
            and h5_single_filter(ds) is None
            and ds.id.get_create_plist().get_nfilters() == 0
        ):
            zeros = (0,) * len(packed_shape)
            raw = b"".join(ds.id.read_direct_chunk((int(r), *zeros))[1] for r in rows)
            packed = np.frombuffer(raw, np.uint8).reshape(rows.size, *packed_shape)
        else:
            packed = ds[np.asarray(rows)] if rows.size else np.empty((0, *packed_shape), np.uint8)
        return unpack_unit_float(packed, width) if unit else unpack_bits(packed, width)

    def windows(self, idx: int | slice | np.ndarray) -> np.ndarray:
        """The OHLC bars behind images idx, (n, bars, 4) float64 (open, high, low, close), the
        window's last bar last: re-read from the source the store recorded, whose data must still
        have the recorded fingerprint (else a one-line error: the images no longer match it)."""
        from candleflow.config import RunConfig
        from candleflow.data.load import load_candles
        from candleflow.errors import DataError

        if self._candles is None:
            if "config" not in self.meta or "fingerprint" not in self.meta:
                raise DataError(f"{self.path}: the store records no source; its windows cannot be read back")
            cfg = RunConfig.model_validate(self.meta["config"])
            candles, _ = load_candles(cfg.source, cfg.validation, cfg.cache)
            if candles.fingerprint != self.meta["fingerprint"]:
                raise DataError(
                    f"{self.path}: the recorded source now gives other candles (fingerprint "
                    f"{candles.fingerprint[:12]}, the images were rendered from {self.meta['fingerprint'][:12]})"
                )
            self._candles = candles
        candles = self._candles
        single = isinstance(idx, (int, np.integer))
        rows = np.arange(len(self))[idx] if not single else np.array([int(idx) % len(self)])  # type: ignore[arg-type]
        ends = np.searchsorted(candles.open_time, self._cols["end_time"][rows])
        bars = int(self.meta["bars"])
        span = ends[:, None] - np.arange(bars - 1, -1, -1)[None, :]
        ohlc = np.stack([candles.open, candles.high, candles.low, candles.close], axis=1)[span]
        return ohlc[0] if single else ohlc

    def unit_float(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Images `rows` as float32 in [0, 1] (what a network reads) and their labels: bit-packed
        HDF5 decodes straight to float on every core, the rest are read, then scaled."""
        rows = np.asarray(rows)
        return self._images_at(rows, unit=True), self._cols["labels"][rows]

    def _images_at(self, rows: np.ndarray, unit: bool) -> np.ndarray:
        """The images of `rows` (any order, repeats allowed), uint8 or with `unit` float32."""
        dtype = np.float32 if unit else np.uint8
        shape = tuple(self.meta["shape"])

        def scaled(data: np.ndarray) -> np.ndarray:
            data = np.asarray(data)
            if not unit or data.dtype == np.float32:
                return data
            out = np.empty(data.shape, np.float32)
            np.divide(data, np.float32(255), out=out, dtype=np.float32)
            return out

        if self.format in ("png", "jpeg"):
            from PIL import Image

            return scaled(np.stack([np.asarray(Image.open(self.path / self._files[i])) for i in rows]))
        part = np.searchsorted(self._offsets, rows, side="right") - 1
        parts = np.unique(part)
        images: np.ndarray | None = None
        for p in parts:
            sel = np.flatnonzero(part == p)
            uniq, inverse = np.unique(rows[sel] - self._offsets[p], return_inverse=True)
            ds = self._images[p]
            if self.format == "hdf5":
                data = scaled(self._h5_images(ds, uniq, unit))
            elif self.format == "zarr":
                data = scaled(self._zarr_images(ds, self.parts[p][0], uniq))
            else:
                data = scaled(ds[uniq])
            if parts.size == 1 and uniq.size == rows.size:  # sorted, distinct rows of one part (a loader's batch)
                return data
            if images is None:
                images = np.empty((rows.size, *shape), dtype)
            images[sel] = data[inverse]
        return images if images is not None else np.empty((rows.size, *shape), dtype)

    def __getitem__(self, idx: int | slice | np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        single = isinstance(idx, (int, np.integer))
        rows = np.arange(len(self))[idx] if not single else np.array([int(idx) % len(self)])  # type: ignore[arg-type]
        images = self._images_at(rows, unit=False)
        names = np.array(self.meta["symbols"])
        extra = {"end_time": self._cols["end_time"][rows], "symbol": names[self._cols["symbol"][rows]]}
        labels = self._cols["labels"][rows]
        if single:
            return images[0], labels[0], {k: v[0] for k, v in extra.items()}
        return images, labels, extra
