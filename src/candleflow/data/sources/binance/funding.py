"""Binance's public funding-rate files for the futures markets (`um`, `cm`): which monthly ZIPs
cover a range, fetched and verified like the klines (sha256 .CHECKSUM, temporary name then
rename, sizes bounded), and read into (funding time, rate) arrays with one-line errors.

Binance publishes `data/futures/{um,cm}/monthly/fundingRate/SYMBOL/SYMBOL-fundingRate-YYYY-MM.zip`
(monthly only), one CSV with the header `calc_time,funding_interval_hours,last_funding_rate`:
the funding time in epoch milliseconds, the hours between fundings (8, or 4 or 1 for some
symbols) and the rate a long pays a short at that time (negative: the short pays)."""

from __future__ import annotations

import calendar
import datetime as dt
import io
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from candleflow.config.markets import MARKETS, parse_date
from candleflow.data.sources.binance.plan import FileRef
from candleflow.errors import ConfigError, DownloadError, SourceError

HEADER = ("calc_time", "funding_interval_hours", "last_funding_rate")
MAX_FUNDING_CSV_BYTES = 1 << 20  # a month of hourly fundings is about 30 KB
MAX_ABS_RATE = 0.05  # Binance caps funding well inside 5% a period; beyond it the file is not a funding file


def funding_file(market: str, symbol: str, month: str) -> FileRef:
    """The monthly funding-rate ZIP of `symbol` on a futures market."""
    if market not in ("um", "cm"):
        raise ConfigError(f"funding rates: market {market!r} has none; expected um or cm (futures)")
    return FileRef(f"{MARKETS[market]}/monthly/fundingRate/{symbol}/{symbol}-fundingRate-{month}.zip", month)


def plan_funding(market: str, symbol: str, start: str, end: str, today: dt.date | None = None) -> list[FileRef]:
    """The monthly files of every month that meets [start, end] and has ended (Binance publishes a
    month's file after it ends; the current month has none yet)."""
    today = today or dt.datetime.now(dt.UTC).date()
    first, last = parse_date(start), parse_date(end, end=True)
    month, out = first.replace(day=1), []
    while month <= last and month < today.replace(day=1):
        out.append(funding_file(market, symbol, f"{month:%Y-%m}"))
        month = month.replace(day=calendar.monthrange(month.year, month.month)[1]) + dt.timedelta(days=1)
    return out


def read_funding(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(funding times as datetime64[ns] int64, rates) of one funding-rate ZIP or CSV, in time order.

    Bounded and checked: one CSV inside at most 1 MiB, the exact header, integer millisecond times
    that increase, finite rates within +-5%; any breach is a one-line error naming file and row."""
    path = Path(path)
    data = _bounded_bytes(path)
    if not data.strip():
        raise SourceError(f"{path}: the file is empty; expected {','.join(HEADER)}")
    head = tuple(c.strip().strip('"') for c in data.split(b"\n", 1)[0].decode("utf-8", "replace").split(","))
    if head != HEADER:
        raise SourceError(f"{path} line 1: header {','.join(head)!r}; expected {','.join(HEADER)}")
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            convert_options=pacsv.ConvertOptions(
                column_types={
                    "calc_time": pa.int64(),
                    "funding_interval_hours": pa.float64(),
                    "last_funding_rate": pa.float64(),
                }
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        first = str(exc).splitlines()[0][:200]
        raise SourceError(f"{path}: not a funding-rate CSV ({first})") from None
    for name in HEADER:
        if table.column(name).null_count:
            row = int(np.flatnonzero(table.column(name).is_null().to_numpy(zero_copy_only=False))[0]) + 2
            lines = data.splitlines()
            fields = lines[row - 1].split(b",") if row - 1 < len(lines) else []
            cell = fields[HEADER.index(name)].strip().decode("utf-8", "replace") if len(fields) == len(HEADER) else ""
            what = f"{name} is {cell[:40]!r}" if cell else f"empty {name}"
            raise SourceError(f"{path} line {row}: {what}; expected a number")
    ms = table.column("calc_time").to_numpy()
    rates = table.column("last_funding_rate").to_numpy().astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(rates) | (np.abs(rates) > MAX_ABS_RATE))
    if bad.size:
        raise SourceError(
            f"{path} line {bad[0] + 2}: funding rate {float(rates[bad[0]])!r}; expected a finite rate within +-{MAX_ABS_RATE}"
        )
    low, high = 1_262_304_000_000, 4_102_444_800_000  # 2010 .. 2100, in milliseconds
    out = np.flatnonzero((ms < low) | (ms > high))
    if out.size:
        raise SourceError(f"{path} line {out[0] + 2}: calc_time {ms[out[0]]}; expected epoch milliseconds 2010..2100")
    back = np.flatnonzero(np.diff(ms) <= 0)
    if back.size:
        raise SourceError(f"{path} line {back[0] + 3}: calc_time {ms[back[0] + 1]} is not after the row before")
    return ms.astype(np.int64) * 1_000_000, rates


def _bounded_bytes(path: Path) -> bytes:
    if path.suffix.lower() != ".zip":
        if path.stat().st_size > MAX_FUNDING_CSV_BYTES:
            raise SourceError(f"{path}: larger than {MAX_FUNDING_CSV_BYTES:,} bytes; not a monthly funding-rate file")
        return path.read_bytes()
    try:
        with zipfile.ZipFile(path) as zf:
            members = [i for i in zf.infolist() if i.filename.lower().endswith(".csv")]
            if len(members) != 1:
                raise SourceError(f"{path}: expected one CSV inside the ZIP, found {len(members)}")
            info = members[0]
            if info.file_size > MAX_FUNDING_CSV_BYTES or info.flag_bits & 0x1:
                raise SourceError(
                    f"{path}: {info.filename} declares {info.file_size:,} bytes (or is encrypted); "
                    f"a funding-rate month is at most {MAX_FUNDING_CSV_BYTES:,}"
                )
            with zf.open(info) as fh:
                data = fh.read(info.file_size + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise SourceError(f"{path}: not a readable ZIP ({exc}); download it again") from None
    if len(data) != info.file_size:
        raise SourceError(f"{path}: {info.filename} holds more or fewer bytes than its header declares; damaged")
    return data


def load_funding(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Every file's fundings, merged in time order; a time in two files is an error naming both."""
    parts = [(Path(p), *read_funding(Path(p))) for p in sorted(paths)]
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0)
    times = np.concatenate([t for _, t, _ in parts])
    rates = np.concatenate([r for _, _, r in parts])
    order = np.argsort(times, kind="stable")
    times, rates = times[order], rates[order]
    dup = np.flatnonzero(np.diff(times) == 0)
    if dup.size:
        when = np.datetime64(int(times[dup[0]]), "ns")
        owners = [str(p) for p, t, _ in parts if np.any(t == times[dup[0]])]
        raise SourceError(f"funding time {when} appears in {' and '.join(owners)}; expected each once")
    return times, rates


def fetch_funding(
    market: str, symbol: str, start: str, end: str, options: object, today: dt.date | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Download (or take from the cache) and verify the funding files of [start, end]; returns the
    merged (times, rates) and a note per month Binance has no file for."""
    from candleflow.data.sources.binance.download import Fetcher, fetch_file

    fetcher = Fetcher(options)  # type: ignore[arg-type]
    paths, notes = [], []
    try:
        for ref in plan_funding(market, symbol, start, end, today):
            res = fetch_file(fetcher, ref)
            if res.status == "missing":
                notes.append(f"{ref.name}: not published; no funding charged in {ref.period}")
            elif res.status == "failed":
                raise DownloadError(res.error or f"{ref.name}: failed")
            else:
                paths.append(res.path)
    finally:
        fetcher.close()
    times, rates = load_funding([p for p in paths if p is not None])
    return times, rates, notes


def funding_per_bar(open_time: np.ndarray, interval_ns: int, times: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """The funding rate charged at each bar: the sum of the rates whose funding time falls in the
    bar's (open, close] (a position held at a bar's close holds it at a funding time equal to that
    close). Fundings in a gap between bars meet no position and are dropped."""
    open_ns = np.asarray(open_time).astype("datetime64[ns]").astype(np.int64)
    out = np.zeros(open_ns.size)
    if not times.size or not open_ns.size:
        return out
    j = np.searchsorted(open_ns, times, side="left") - 1  # the last bar that opened before T
    ok = (j >= 0) & (times <= open_ns[np.clip(j, 0, None)] + interval_ns)
    np.add.at(out, j[ok], rates[ok])
    return out


__all__ = ["fetch_funding", "funding_file", "funding_per_bar", "load_funding", "plan_funding", "read_funding"]
