"""Local files: Binance kline CSV/ZIP as published, and generic CSV / Parquet / Feather with OHLCV
columns found by name in any case."""

from __future__ import annotations

import glob
import io
import os
import re
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.parquet as pq

from candleflow.config import FilesSource
from candleflow.config.intervals import interval_ns
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
    "adj_close": ("adj close", "adj_close", "adjclose", "adjusted close", "adjusted_close"),  # source.adjust
}
MAX_CSV_BYTES = 4 << 30  # 4 GiB: no kline CSV is larger (8 years of 1m bars is about 0.5 GiB)
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
            if p.is_dir():
                raise SourceError(f"{pat}: is a folder; expected a file (or a glob such as {pat}/*.csv)")
            if not p.is_file():
                raise SourceError(f"{pat}: file not found")
            out.append(p)
    return out


def read_files(cfg: FilesSource) -> RawCandles:
    """Read and concatenate every file in order; each row remembers its file and line."""
    return read_paths(expand_paths(cfg.paths), cfg.format, cfg.symbol, cfg.interval, timezone=cfg.timezone)


def read_paths(
    paths: list[Path],
    fmt: str = "auto",
    symbol: str | None = None,
    interval: str | None = None,
    source: str = "files",
    timezone: str | None = None,
) -> RawCandles:
    """Concatenate files in the given order into raw rows that remember their file and line."""
    tables: list[dict[str, np.ndarray]] = []
    parts: list[tuple[int, str, int]] = []
    offset = 0
    named = _names_in_files(paths)
    symbol = symbol or next(iter(named["symbol"].values()), None)
    interval = interval or next((v for v in named["interval"].values() if v != "1mo"), None)
    bar_ns = interval_ns(interval) if interval else None
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:  # zlib and Arrow release the GIL
        read = list(pool.map(lambda p: read_file(p, fmt, bar_ns, timezone), paths))
    for path, (cols, first_line) in zip(paths, read):
        parts.append((offset, path.name, first_line))
        offset += len(cols["open_time"])
        tables.append(cols)
    keys = set.intersection(*(set(t) for t in tables))
    columns = {k: np.concatenate([t[k] for t in tables]) for k in tables[0] if k in keys}
    return RawCandles(
        columns=columns, symbol=symbol or safe_symbol(_stem(paths[0])), source=source, interval=interval, parts=parts
    )


def _names_in_files(paths: list[Path]) -> dict[str, dict[str, str]]:
    """Symbol and interval from Binance file names ({value: first file}); files naming two
    symbols or intervals are refused: one source is one series."""
    seen: dict[str, dict[str, str]] = {"symbol": {}, "interval": {}}
    for path in paths:
        m = _BINANCE_NAME.match(_stem(path))
        if m:
            for key in seen:
                seen[key].setdefault(m.group(key), path.name)
    for key, values in seen.items():
        if len(values) > 1:
            (a, fa), (b, fb) = list(values.items())[:2]
            raise SourceError(
                f"the files name two {key}s: {a} ({fa}) and {b} ({fb}); one source reads one series "
                "(list several in universe.symbols / universe.sources instead)"
            )
    return {k: {v: v for v in vals} for k, vals in seen.items()}


def read_file(
    path: Path, fmt: str = "auto", bar_ns: int | None = None, timezone: str | None = None
) -> tuple[dict[str, np.ndarray], int]:
    """One file's columns (open_time as int64 ns UTC) and the line number of its first data row.
    `bar_ns`, the bar interval when known, settles the unit of epoch-number times; `timezone` is
    the zone of times written without a UTC offset (default UTC)."""
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
        return canonical_columns(table, path, first_line, bar_ns, timezone), first_line
    except UnicodeDecodeError:
        raise SourceError(f"{path}: column names are not UTF-8 text; expected a header in UTF-8") from None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise SourceError(
            f"{path}: cannot read as {kind}: {(str(exc).splitlines() or [type(exc).__name__])[0]}"
        ) from None


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


def max_csv_bytes(name: str) -> int:
    """The most CSV bytes a Binance kline archive of this name can hold (rows of its period at its
    interval, 256 bytes each), or MAX_CSV_BYTES for other names."""
    m = _BINANCE_NAME.match(_stem(Path(name)))
    if not m or m.group("interval") == "1mo":
        return MAX_CSV_BYTES
    days = 1 if m.group(3) else 31
    rows = days * 86_400_000_000_000 // interval_ns(m.group("interval")) + 1
    return min(MAX_CSV_BYTES, rows * 256 + 4096)


def _read_bytes(path: Path) -> bytes:
    if path.suffix.lower() == ".gz":  # a gzipped CSV: decompressed, never beyond MAX_CSV_BYTES
        import gzip

        try:
            with gzip.open(path, "rb") as fh:
                data = fh.read(MAX_CSV_BYTES + 1)
        except (OSError, EOFError, zlib.error) as exc:
            raise SourceError(f"{path}: not a readable gzip file ({exc})") from None
        if len(data) > MAX_CSV_BYTES:
            raise SourceError(f"{path}: more than {MAX_CSV_BYTES:,} bytes once decompressed; not a candle CSV")
        return data
    if path.suffix.lower() != ".zip":
        return path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        members = [i for i in zf.infolist() if i.filename.lower().endswith(".csv")]
        if len(members) != 1:
            raise SourceError(f"{path}: expected one CSV inside the ZIP, found {len(members)}")
        info = members[0]
        cap = max_csv_bytes(path.name)
        if info.file_size > cap:
            raise SourceError(
                f"{path}: {info.filename} declares {info.file_size:,} bytes uncompressed; at most {cap:,} expected "
                "for this file (a ZIP bomb or not a kline file)"
            )
        if info.flag_bits & 0x1:
            raise SourceError(f"{path}: {info.filename} is encrypted; expected a plain ZIP")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise SourceError(
                f"{path}: {info.filename} uses compression method {info.compress_type}; expected deflate or stored"
            )
        try:
            with zf.open(info) as fh:
                data = fh.read(info.file_size + 1)  # never more than declared (+1 to see an overrun)
        except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError) as exc:
            raise SourceError(f"{path}: {info.filename} is damaged ({exc}); download it again") from None
        if len(data) != info.file_size:
            raise SourceError(
                f"{path}: {info.filename} holds {len(data):,}+ bytes, its header declares {info.file_size:,}; damaged"
            )
        return data


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


def canonical_columns(
    table: pa.Table, path: Path, first_line: int = 1, bar_ns: int | None = None, timezone: str | None = None
) -> dict[str, np.ndarray]:
    if table.num_rows == 0:
        raise SourceError(f"{path}: no data rows; expected candles below the header")
    by_lower: dict[str, str] = {}
    for name in table.column_names:
        key = name.lower().strip()
        if key in by_lower:
            raise SourceError(
                f"{path}: column {name!r} appears twice (as {by_lower[key]!r} too); expected each column once"
            )
        by_lower[key] = name
    time_col = next((by_lower[n] for n in TIME_NAMES if n in by_lower), None)
    found = ", ".join(table.column_names)[:300]
    if time_col is None:
        raise SourceError(f"{path}: no time column; expected one of {', '.join(TIME_NAMES)} (any case); found: {found}")
    times = _to_ns(table.column(time_col), path, time_col, first_line, bar_ns)
    if timezone and _is_naive(table.column(time_col)):
        times = _local_to_utc(times, timezone, path, time_col)
    out: dict[str, np.ndarray] = {"open_time": times}
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
    if pa.types.is_boolean(col.type):  # Arrow would cast true/false to 1.0/0.0 without a word
        raise SourceError(f"{path}: column {name!r} holds booleans; expected numbers")
    try:
        return col.cast(pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise SourceError(f"{path}: column {name!r} holds non-numeric values ({col.type}); expected numbers") from None


_OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")


def _is_naive(col: pa.ChunkedArray) -> bool:
    """True for local times without a zone: naive timestamps, dates, or strings without a UTC offset
    (epoch numbers are UTC by definition)."""
    t = col.type
    if pa.types.is_timestamp(t):
        return t.tz is None
    if pa.types.is_date(t):
        return True
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        first = col[0].as_py() if len(col) else ""
        return not _OFFSET.search(str(first).strip())
    return False


def _local_to_utc(times: np.ndarray, timezone: str, path: Path, name: str) -> np.ndarray:
    """Naive local times (as if UTC) in `timezone` to UTC; a time that does not exist or is
    ambiguous on a daylight-saving change is an error naming it."""
    import pyarrow.compute as pc

    local = pa.array(times.astype("datetime64[ns]"))
    try:
        utc = pc.assume_timezone(local, timezone=timezone, ambiguous="raise", nonexistent="raise")
    except pa.ArrowInvalid as exc:
        raise SourceError(
            f"{path}: column {name!r}: {str(exc).splitlines()[0][:160]} in {timezone} "
            "(a daylight-saving change); write times with their UTC offset"
        ) from None
    return utc.cast(pa.int64()).to_numpy(zero_copy_only=False)


def _to_ns(col: pa.ChunkedArray, path: Path, name: str, first_line: int = 1, bar_ns: int | None = None) -> np.ndarray:
    """Times as int64 ns UTC: timestamps, date strings, or integers in s/ms/us/ns (per file)."""
    if col.null_count:
        row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise SourceError(f"{path} line {first_line + row}: column {name!r} is empty; expected a time on every row")
    t = col.type
    try:
        if pa.types.is_timestamp(t) or pa.types.is_date(t):
            return col.cast(pa.timestamp("ns")).cast(pa.int64()).to_numpy(zero_copy_only=False)
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            try:
                ts = col.cast(pa.timestamp("ns"))
            except pa.ArrowNotImplementedError:
                raise pa.ArrowInvalid("not ISO") from None
            return ts.cast(pa.int64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid as exc:
        if "out of bounds" in str(exc).lower() or "overflow" in str(exc).lower():
            raise SourceError(
                f"{path}: column {name!r} has a time outside 1677-09-21 .. 2262-04-11 (int64 nanoseconds); "
                "expected real bar times"
            ) from None
        raise SourceError(
            f"{path}: column {name!r} has times that are not ISO dates "
            f"(e.g. {str(col[0].as_py())[:40]!r}); expected 2024-01-31 12:00:00 or epoch numbers"
        ) from None
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        v = col.to_numpy(zero_copy_only=False)
        if pa.types.is_floating(t):
            if not np.isfinite(v).all():
                row = int(np.flatnonzero(~np.isfinite(v))[0])
                raise SourceError(f"{path} line {first_line + row}: column {name!r} is not a number; expected a time")
            if np.abs(v).max(initial=0) >= 2.0**63:
                raise SourceError(f"{path}: column {name!r} has a time beyond int64; expected epoch numbers")
        v = v.astype(np.int64)
        positive = v[v > 0]
        if (
            positive.size > 1 and positive.min() >= 10**8
        ):  # epoch times of one file share a unit: digits 3+ apart mean s/ms/us mixed
            digits = np.floor(np.log10(v.clip(min=1).astype(np.float64)))
            apart = np.flatnonzero(np.abs(digits - digits[0]) >= 2.5)
            if apart.size:
                i = int(apart[0])
                raise SourceError(
                    f"{path} line {first_line + i}: {name}={int(v[i])} has {int(digits[i]) + 1} digits where line "
                    f"{first_line} has {int(digits[0]) + 1}; the file mixes time units (seconds, ms, us); "
                    "expected one unit per file"
                )
        unit = timestamp_unit_ns(v, path, bar_ns)
        limit = np.iinfo(np.int64).max // unit
        bad = np.flatnonzero(np.abs(v) > limit)  # v * unit would wrap around int64 (after 2262)
        if bad.size:
            raise SourceError(
                f"{path} line {first_line + int(bad[0])}: {name}={int(v[bad[0]])} lies after 2262-04-11 "
                f"(read as {_UNIT_NAMES[unit]}); expected real bar times"
            )
        return v * unit
    raise SourceError(f"{path}: column {name!r} has type {t}; expected timestamps, dates or epoch numbers")


_UNIT_NAMES = {1_000_000_000: "seconds", 1_000_000: "milliseconds", 1_000: "microseconds", 1: "nanoseconds"}


def timestamp_unit_ns(values: np.ndarray, where: Path | str = "", bar_ns: int | None = None) -> int:
    """Nanoseconds per unit of epoch numbers (per file): the unit in which the typical spacing of
    the times is a bar interval (`bar_ns` when known), else judged from their size."""
    if values.size == 0:
        return 1_000_000
    by_size = _unit_by_size(float(np.median(np.abs(values))))
    if values.size > 1:
        steps = np.diff(values)
        steps = steps[steps > 0]
        if steps.size:
            step = int(np.median(steps))
            fits = [u for u in _UNIT_NAMES if _is_bar(step * u, bar_ns)]
            if len(fits) == 1:
                return fits[0]
            if by_size not in fits and fits:
                return min(fits, key=lambda u: abs(np.log10(u) - np.log10(by_size)))
    return by_size


def _is_bar(ns: int, bar_ns: int | None) -> bool:
    if bar_ns is not None:
        return ns == bar_ns
    return ns in _KNOWN_BARS


# every interval Binance publishes, in ns: a spacing of one of these says which unit the times are in
_KNOWN_BARS = frozenset(
    interval_ns(i)
    for i in ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w")
)


def _unit_by_size(m: float) -> int:
    if m < 1e11:
        return 1_000_000_000  # seconds (until year 5138)
    if m < 1e14:
        return 1_000_000  # milliseconds
    if m < 1e17:
        return 1_000  # microseconds
    return 1  # nanoseconds


def safe_symbol(stem: str) -> str:
    """A file stem made into a series name that is safe as a path component (run folders, caches)."""
    name = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9._-]", "_", stem)).lstrip("._-")[:64]
    return name or "series"


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".zip", ".csv", ".parquet", ".feather", ".gz"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name.removesuffix(".csv")
