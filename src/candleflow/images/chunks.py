"""The bytes of one stored image: HDF5 chunks compressed and decoded on every core (deflate
through zlib, LZ4 in the HDF5 filter's framing through numcodecs; both release the GIL), Zarr
v3 shard layouts read directly, and the one-line error naming the `images` extra where a codec
is missing. `benchmarks/bench_stored_images.py` measures each against the libraries' own reads
of the same files (h5py per image, h5py with hdf5plugin, zarr's selection) in one run."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

H5_FILTERS = ("gzip", "lz4", "bits")  # images.compression: gzip (deflate level 1), lz4 (hdf5plugin), bits (packing.py)
H5_DEFLATE, H5_LZ4 = 1, 32004  # the HDF5 filter ids of each


def hdf5_gzip_chunk(image: np.ndarray) -> bytes:
    """One image as a chunk of HDF5's built-in deflate filter (level 1): what plain h5py, HDFView
    and every HDF5 reader open without a plugin. zlib releases the GIL, so threads compress in
    parallel."""
    return zlib.compress(np.ascontiguousarray(image).tobytes(), 1)


def require_codecs(fmt: str, compression: str) -> None:
    """A one-line error naming the `images` extra where the format or codec asked for is not
    installed (gzip HDF5, NPZ, PNG and JPEG need nothing beyond the core)."""
    from candleflow.errors import require

    if fmt == "zarr":
        require("zarr", "images.format zarr")
    if fmt == "hdf5" and compression == "lz4":
        require("hdf5plugin", "images.compression lz4")
        require("numcodecs", "images.compression lz4")


def hdf5_lz4_chunk(image: np.ndarray) -> bytes:
    """One image as a chunk of HDF5's LZ4 filter (32004, hdf5plugin): big-endian total size and
    block size, then one block: its compressed size and the LZ4 block. numcodecs' LZ4 releases
    the GIL, so a thread pool compresses images in parallel."""
    from numcodecs import LZ4

    raw = np.ascontiguousarray(image)
    block = LZ4(1).encode(raw)[4:]  # numcodecs prefixes a little-endian size; the filter has its own
    return struct.pack(">QII", raw.nbytes, raw.nbytes, len(block)) + block


def zarr_shard_layout(arr: Any, path: Path) -> tuple[int, Path] | None:
    """(images per shard, the chunk folder) where a Zarr array has the layout candleflow writes:
    shards of one-image inner chunks, bytes then zstd, the index (little-endian, crc32c) at the
    end, in a local folder with the default chunk key encoding; else None."""
    try:
        from zarr.codecs import BytesCodec, Crc32cCodec, ShardingCodec, ZstdCodec

        (codec,) = arr.metadata.codecs
        if not isinstance(codec, ShardingCodec) or tuple(codec.chunk_shape) != (1, *arr.shape[1:]):
            return None
        inner = [type(c) for c in codec.codecs]
        index = [type(c) for c in codec.index_codecs]
        if inner != [BytesCodec, ZstdCodec] or index != [BytesCodec, Crc32cCodec]:
            return None
        if str(codec.index_location.value) != "end" or arr.metadata.chunk_key_encoding.name != "default":
            return None
        folder = Path(path) / "images" / "c"
        shard = int(arr.metadata.chunk_grid.chunk_shape[0])
        return (shard, folder) if folder.is_dir() else None
    except (AttributeError, ImportError, TypeError, ValueError):
        return None


def zstd_image(chunk: bytes, nbytes: int) -> np.ndarray:
    from numcodecs import Zstd

    out = np.frombuffer(Zstd().decode(chunk), np.uint8)
    if out.size != nbytes:
        raise ValueError(f"a chunk of {out.size} bytes; expected {nbytes}")
    return out


def h5_single_filter(ds: Any) -> int | None:
    """The id of the one compression filter of an HDF5 dataset, or None (no filter, or several)."""
    plist = ds.id.get_create_plist()
    if plist.get_nfilters() != 1:
        return None
    return int(plist.get_filter(0)[0])


def decode_h5_chunk(chunk: bytes, filter_id: int, nbytes: int) -> np.ndarray:
    """One stored image chunk back to its bytes (uint8, flat): deflate through zlib, LZ4 through
    numcodecs (one block, as `hdf5_lz4_chunk` writes it). Both release the GIL."""
    if filter_id == H5_DEFLATE:
        raw = zlib.decompress(chunk)
    else:
        from numcodecs import LZ4

        total, block = struct.unpack(">QI", chunk[:12])
        if total != block or total != nbytes:
            raise ValueError(f"an LZ4 chunk of {total} bytes in blocks of {block}; expected one block of {nbytes}")
        raw = LZ4().decode(struct.pack("<I", total) + chunk[16:])
    out = np.frombuffer(raw, np.uint8)
    if out.size != nbytes:
        raise ValueError(f"a chunk of {out.size} bytes; expected {nbytes}")
    return out


__all__ = [
    "H5_DEFLATE",
    "H5_FILTERS",
    "H5_LZ4",
    "decode_h5_chunk",
    "hdf5_gzip_chunk",
    "hdf5_lz4_chunk",
    "require_codecs",
    "zarr_shard_layout",
    "zstd_image",
    "h5_single_filter",
]
