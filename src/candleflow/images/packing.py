"""Chart images kept as one bit per pixel. Both layouts draw only 0 and 255 (bar4 and jkx), so a
500 x 400 image is 25,000 bytes packed instead of 200,000, and a batch decodes straight into the
float32 [0, 1] array a network reads, on every core, without the uint8 image in between:
measured at 100 bars and 500 x 400 (benchmarks/bench_stored_images.py), this reads stored images
faster than drawing them, which gzip and LZ4 chunks did not.

The packing is NumPy's: `np.packbits(image > 0, axis=-1)` (big-endian bits along each row, the
last byte of a row padded with zeros), so plain h5py reads a stored image back with
`np.unpackbits(ds[i], axis=-1, count=width) * 255`."""

from __future__ import annotations

import numba
import numpy as np

from candleflow.errors import DataError


@numba.njit(parallel=True, cache=True)
def _pack(images: np.ndarray, out: np.ndarray, bad: np.ndarray) -> None:  # pragma: no cover - compiled
    n, h, w = images.shape
    wp = out.shape[2]
    for k in numba.prange(n):
        first = -1
        for r in range(h):
            row = images[k, r]
            dst = out[k, r]
            for j in range(wp):
                v = 0
                for bit in range(min(8, w - j * 8)):
                    p = row[j * 8 + bit]
                    if p == 255:
                        v |= 1 << (7 - bit)
                    elif p != 0 and first < 0:
                        first = r * w + j * 8 + bit
                dst[j] = v
        bad[k] = first


def pack_bits(images: np.ndarray) -> np.ndarray:
    """(B, H, W) uint8 images of 0 and 255 -> (B, H, ceil(W / 8)) packed rows (as
    `np.packbits(images > 0, axis=-1)`), packed and checked in one pass on every core; a
    one-line error naming the first image and pixel that is neither 0 nor 255."""
    images = np.ascontiguousarray(images, dtype=np.uint8)
    n, h, w = images.shape
    out = np.empty((n, h, (w + 7) // 8), np.uint8)
    bad = np.empty(n, np.int64)
    _pack(images, out, bad)
    wrong = np.flatnonzero(bad >= 0)
    if wrong.size:
        k = int(wrong[0])
        r, c = divmod(int(bad[k]), w)
        raise DataError(
            f"image {k}: pixel value {int(images[k, r, c])} at row {r}, column {c}; "
            "images.compression bits keeps images of 0 and 255 only (use gzip or lz4)"
        )
    return out


def unpack_bits(packed: np.ndarray, width: int) -> np.ndarray:
    """Packed rows back to (B, H, width) uint8 images of 0 and 255."""
    return np.unpackbits(packed, axis=-1, count=width) * np.uint8(255)


@numba.njit(parallel=True, cache=True)
def _unit_float(packed: np.ndarray, width: int, out: np.ndarray) -> None:  # pragma: no cover - compiled
    n, h, wp = packed.shape
    for k in numba.prange(n):
        for r in range(h):
            row = packed[k, r]
            dst = out[k, r]
            for j in range(wp):
                v = row[j]
                base = j * 8
                top = min(8, width - base)
                for bit in range(top):
                    dst[base + bit] = np.float32((v >> (7 - bit)) & 1)


def unpack_unit_float(packed: np.ndarray, width: int) -> np.ndarray:
    """Packed rows straight to (B, H, width) float32 in [0, 1] (0.0 and 1.0), every image on its
    own core: what `stored_image_loader` gives a network."""
    packed = np.ascontiguousarray(packed, dtype=np.uint8)
    out = np.empty((packed.shape[0], packed.shape[1], int(width)), np.float32)
    _unit_float(packed, int(width), out)
    return out


__all__ = ["pack_bits", "unpack_bits", "unpack_unit_float"]
