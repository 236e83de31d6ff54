"""Writing feature columns into the (N, F) float32 C-order feature matrix, fast.

Features are computed a column at a time (TA-Lib and NumPy work on whole series), but the matrix
is stored by rows, so windows of it are zero-copy views. Writing one whole column at a time touches
every cache line of the matrix once per column (F passes over N x F x 4 bytes: 0.26 s for 32
columns of 1M rows here); this writes the held columns block of rows by block, so each block of the
matrix stays in cache while all of them land in it, casting to float32 on the way, in a compiled
loop that releases the GIL, with the rows split over the cores (0.03 s for the same 32 columns:
`python benchmarks/bench_features.py`).
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor

import numba
import numpy as np

SLOTS = 32  # columns per call of the compiled loop: one compiled signature (a tuple of 32 arrays)
_ROW_BLOCK = 4096  # rows per block: 4096 x 32 x 4 bytes of the matrix and the columns' rows fit in L2
_MIN_ROWS_PER_THREAD = 65_536  # below this, one thread: starting threads costs more than it saves


@numba.njit(cache=True, nogil=True)
def _interleave(
    out: np.ndarray, cols: tuple, js: np.ndarray, count: int, lo: int, hi: int
) -> None:  # pragma: no cover - compiled
    for b in range(lo, hi, _ROW_BLOCK):
        e = min(hi, b + _ROW_BLOCK)
        for c in range(count):
            col = cols[c]
            j = js[c]
            for r in range(b, e):
                out[r, j] = col[r]


def write_columns(out: np.ndarray, held: list[tuple[int, np.ndarray]], threads: int | None = None) -> None:
    """Write each (j, column) of `held` into column j of `out` (float32, C-order, rows = the
    columns' length): the same as `out[:, j] = column` for each, without a pass over the whole
    matrix per column. `threads` (default: the machine's cores, at most 4) split the rows."""
    if not held:
        return
    if out.dtype != np.float32 or out.ndim != 2 or out.strides[1] != 4:
        raise ValueError(f"write_columns: expected a row-major float32 matrix, got {out.dtype} strides {out.strides}")
    n = out.shape[0]
    columns = []
    for j, column in held:
        if column.shape != (n,):
            raise ValueError(f"write_columns: column {j} has shape {column.shape}, expected ({n},)")
        columns.append(np.ascontiguousarray(column, dtype=np.float64))
    threads = max(1, min(threads or _cores(), n // _MIN_ROWS_PER_THREAD))
    bounds = np.linspace(0, n, threads + 1).astype(np.int64)
    for first in range(0, len(held), SLOTS):
        group = columns[first : first + SLOTS]
        js = np.array([j for j, _ in held[first : first + SLOTS]], np.int64)
        count = len(group)
        cols = tuple(group + [group[0]] * (SLOTS - count))  # padded: one compiled signature
        js = np.concatenate([js, np.zeros(SLOTS - count, np.int64)])
        if threads == 1:
            _interleave(out, cols, js, count, 0, n)
            continue
        with ThreadPoolExecutor(max_workers=threads) as pool:
            jobs = [
                pool.submit(_interleave, out, cols, js, count, int(lo), int(hi))
                for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
            ]
            for job in jobs:
                job.result()


def _cores() -> int:
    """The cores this process may run on (taskset and cpusets count), at most 4."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(usable or 1, 4)


class ColumnWriter:
    """Columns handed over one at a time, written into `out` by `write_columns` in groups.

    On a machine with more than one core and a long matrix, each full group of `group` columns is
    written by a background thread (the compiled loop releases the GIL) while the caller computes
    the next columns, so only the last group's write is waited for; else all are written at
    `close`. At most two groups are held at once, so memory stays bounded. Use as a context
    manager: leaving it waits for every write, also on an error."""

    def __init__(self, out: np.ndarray, group: int = 8, max_bytes: int = 256 * 2**20) -> None:
        self.out = out
        self.background = _cores() > 1 and out.shape[0] >= 2 * _MIN_ROWS_PER_THREAD
        self.group = group if self.background else SLOTS
        self.max_bytes = max_bytes
        self.held: list[tuple[int, np.ndarray]] = []
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future[None] | None = None

    def add(self, j: int, column: np.ndarray) -> None:
        """Hand over column j (float64, one value per row of `out`); the writer keeps a reference."""
        self.held.append((j, column))
        if len(self.held) >= self.group or sum(a.nbytes for _, a in self.held) >= self.max_bytes:
            self._flush(last=False)

    def _flush(self, last: bool) -> None:
        held, self.held = self.held, []
        if self._pending is not None:
            self._pending.result()  # one background write at a time: memory stays bounded
            self._pending = None
        if not held:
            return
        if last or not self.background:
            write_columns(self.out, held)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1)
        self._pending = self._pool.submit(write_columns, self.out, held, 1)

    def close(self) -> None:
        """Write what is held and wait for every write."""
        try:
            self._flush(last=True)
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def __enter__(self) -> ColumnWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
            return
        if self._pool is not None:  # an error: wait for the running write, write nothing more
            self._pool.shutdown(wait=True)
            self._pool = None


__all__ = ["SLOTS", "ColumnWriter", "write_columns"]
