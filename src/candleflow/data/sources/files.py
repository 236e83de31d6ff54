"""Local files: Binance kline CSV/ZIP as published, and generic CSV / Parquet / Feather with OHLCV
columns found by name in any case."""

from __future__ import annotations

import glob
import io
import os
import re
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.parquet as pq

from candleflow.config import FilesSource
from candleflow.data.validate import RawCandles
from candleflow.errors import SourceError

BINANCE_COLUMNS = [
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "trades",
    "taker_buy_base",
    "taker_buy_quote",
    "ignore",
]
TIME_NAMES = ("open_time", "timestamp", "datetime", "date", "time")
ALIASES = {
    "quote_volume": ("quote_volume", "quote_asset_volume"),
    "trades": ("trades", "number_of_trades", "count"),
    "taker_buy_base": ("taker_buy_base", "taker_buy_base_asset_volume", "taker_buy_volume"),
    "taker_buy_quote": ("taker_buy_quote", "taker_buy_quote_asset_volume", "taker_buy_quote_volume"),
}
_BINANCE_NAME = re.compile(r"^(?P<symbol>[A-Z0-9]+)-(?P<interval>\d+[smhdw]|1mo)-\d{4}-\d{2}(-\d{2})?$")


def expand_paths(patterns: list[str]) -> list[Path]:
    """Files named or matched by glob patterns, sorted within each pattern; an unmatched one errors."""
    out: list[Path] = []
    for pat in patterns:
        if any(ch in pat for ch in "*?["):
            hits = sorted(glob.glob(pat))
            if not hits:
                raise SourceError(f"{pat}: no file matches this pattern")
            out.extend(Path(h) for h in hits)
        else:
            p = Path(pat)
            if not p.is_file():
                raise SourceError(f"{pat}: file not found")
            out.append(p)
    return out


def read_files(cfg: FilesSource) -> RawCandles:
    """Read and concatenate every file in order; each row remembers its file and line."""
    return read_paths(expand_paths(cfg.paths), cfg.format, cfg.symbol, cfg.interval)


def read_paths(
    paths: list[Path], fmt: str = "auto", symbol: str | None = None, interval: str | None = None, source: str = "files"
) -> RawCandles:
    """Concatenate files in the given order into raw rows that remember their file and line."""
    tables: list[dict[str, np.ndarray]] = []
    parts: list[tuple[int, str, int]] = []
    offset = 0
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:  # zlib and Arrow release the GIL
        read = list(pool.map(lambda p: read_file(p, fmt), paths))
    for path, (cols, first_line) in zip(paths, read):
        m = _BINANCE_NAME.match(_stem(path))
        if m:
            symbol = symbol or m.group("symbol")
            interval = interval or (m.group("interval") if m.group("interval") != "1mo" else None)
        parts.append((offset, path.name, first_line))
        offset += len(cols["open_time"])
        tables.append(cols)
    keys = set.intersection(*(set(t) for t in tables))
    columns = {k: np.concatenate([t[k] for t in tables]) for k in tables[0] if k in keys}
    return RawCandles(columns=columns, symbol=symbol or _stem(paths[0]), source=source, interval=interval, parts=parts)


def read_file(path: Path, fmt: str = "auto") -> tuple[dict[str, np.ndarray], int]:
    """One file's columns (open_time as int64 ns UTC) and the line number of its first data row."""
    kind = fmt if fmt != "auto" else _guess_format(path)
    try:
        if kind in ("binance", "csv"):
            data = _read_bytes(path)
            has_header = _has_header(data, path)
            if has_header:
                table = pacsv.read_csv(io.BytesIO(data))
            else:
                table = _read_headerless(data, path)
            first_line = 2 if has_header else 1
        elif kind == "parquet":
            table, first_line = pq.read_table(path), 1
        else:
            table, first_line = feather.read_table(path), 1
    except (pa.ArrowInvalid, zipfile.BadZipFile, OSError) as exc:
        raise SourceError(f"{path}: cannot read as {kind}: {str(exc).splitlines()[0]}") from None
    return _canonical_columns(table, path), first_line


def _guess_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".zip":
        return "binance"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".feather", ".arrow", ".ipc"):
        return "feather"
    if suffix in (".csv", ".txt") or suffix == ".gz":
        return "csv"
    raise SourceError(
        f"{path}: unknown file type {suffix!r}; expected .zip, .csv, .parquet or .feather (or set source.format)"
    )


def _read_bytes(path: Path) -> bytes:
    if path.suffix.lower() != ".zip":
        return path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        members = [n for n in zf.namelist() if n.lower().endswith(".csv")]
        if len(members) != 1:
            raise SourceError(f"{path}: expected one CSV inside the ZIP, found {len(members)}")
        return zf.read(members[0])


def _has_header(data: bytes, path: Path) -> bool:
    first = data.split(b"\n", 1)[0].split(b",", 1)[0].strip().strip(b'"')
    if not first:
        raise SourceError(f"{path}: the file is empty")
    try:
        float(first)
        return False
    except ValueError:
        return True


def _read_headerless(data: bytes, path: Path) -> pa.Table:
    ncols = len(data.split(b"\n", 1)[0].split(b","))
    if ncols < 6:
        raise SourceError(
            f"{path} line 1: {ncols} columns without a header; expected Binance's 12 "
            "(open_time, open, high, low, close, volume, ...) or a header row"
        )
    names = BINANCE_COLUMNS[:ncols] if ncols <= 12 else BINANCE_COLUMNS + [f"extra_{i}" for i in range(ncols - 12)]
    types = {"open_time": pa.int64(), "close_time": pa.int64(), "trades": pa.int64()}
    for n in ("open", "high", "low", "close", "volume", "quote_volume", "taker_buy_base", "taker_buy_quote"):
        types[n] = pa.float64()
    opts = pacsv.ReadOptions(column_names=names)
    wanted = [n for n in names if n not in ("close_time", "ignore") and not n.startswith("extra_")]
    conv = pacsv.ConvertOptions(column_types={k: v for k, v in types.items() if k in names}, include_columns=wanted)
    return pacsv.read_csv(io.BytesIO(data), read_options=opts, convert_options=conv)


def _canonical_columns(table: pa.Table, path: Path) -> dict[str, np.ndarray]:
    by_lower = {name.lower().strip(): name for name in table.column_names}
    time_col = next((by_lower[n] for n in TIME_NAMES if n in by_lower), None)
    found = ", ".join(table.column_names)
    if time_col is None:
        raise SourceError(f"{path}: no time column; expected one of {', '.join(TIME_NAMES)} (any case); found: {found}")
    out: dict[str, np.ndarray] = {"open_time": _to_ns(table.column(time_col), path, time_col)}
    for name in ("open", "high", "low", "close", "volume"):
        if name not in by_lower:
            raise SourceError(
                f"{path}: no {name!r} column; expected open, high, low, close, volume (any case); found: {found}"
            )
        out[name] = _to_float(table.column(by_lower[name]), path, by_lower[name])
    for name, aliases in ALIASES.items():
        col = next((by_lower[a] for a in aliases if a in by_lower), None)
        if col is not None:
            out[name] = _to_float(table.column(col), path, col)
    return out


def _to_float(col: pa.ChunkedArray, path: Path, name: str) -> np.ndarray:
    try:
        return col.cast(pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise SourceError(f"{path}: column {name!r} holds non-numeric values ({col.type}); expected numbers") from None


def _to_ns(col: pa.ChunkedArray, path: Path, name: str) -> np.ndarray:
    """Times as int64 ns UTC: timestamps, date strings, or integers in s/ms/us/ns detected by size."""
    t = col.type
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return col.cast(pa.timestamp("ns")).cast(pa.int64()).to_numpy(zero_copy_only=False)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        try:
            ts = col.cast(pa.timestamp("ns"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise SourceError(
                f"{path}: column {name!r} has times that are not ISO dates "
                f"(e.g. {col[0].as_py()!r}); expected 2024-01-31 12:00:00 or epoch numbers"
            ) from None
        return ts.cast(pa.int64()).to_numpy(zero_copy_only=False)
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        v = col.to_numpy(zero_copy_only=False)
        if pa.types.is_floating(t):
            if not np.isfinite(v).all():
                raise SourceError(f"{path}: column {name!r} has missing times; expected every row to have one")
            v = v.astype(np.int64)
        return v.astype(np.int64) * timestamp_unit_ns(v, path)
    raise SourceError(f"{path}: column {name!r} has type {t}; expected timestamps, dates or epoch numbers")


def timestamp_unit_ns(values: np.ndarray, where: Path | str = "") -> int:
    """Nanoseconds per unit of epoch numbers, from their size: s, ms, us or ns (per file)."""
    if values.size == 0:
        return 1_000_000
    m = float(np.median(np.abs(values)))
    if m < 1e11:
        return 1_000_000_000  # seconds (until year 5138)
    if m < 1e14:
        return 1_000_000  # milliseconds
    if m < 1e17:
        return 1_000  # microseconds
    return 1  # nanoseconds


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".zip", ".csv", ".parquet", ".feather", ".gz"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name.removesuffix(".csv")
