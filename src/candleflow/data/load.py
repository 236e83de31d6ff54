"""Sources turn a config into raw rows; `load_candles` validates them into Candles."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from candleflow.config import (
    BinanceSource,
    CacheConfig,
    FilesSource,
    SourceConfig,
    SyntheticSource,
    ValidationPolicy,
    YFinanceSource,
)
from candleflow.data.adjust import ADJ_CLOSE, back_adjust
from candleflow.data.candles import Candles
from candleflow.data.sources.files import read_files
from candleflow.data.sources.synthetic import generate_synthetic
from candleflow.data.validate import RawCandles, ValidationReport, validate_candles
from candleflow.errors import SourceError, ValidationError

log = logging.getLogger("candleflow")


# The source protocol: a loader takes its source's config, the validation policy and the cache
# caps, and returns validated Candles with the report of every defect. One per `source.kind`.
Loader = Callable[[Any, ValidationPolicy, CacheConfig], tuple[Candles, ValidationReport]]


def _synthetic(cfg: SyntheticSource, policy: ValidationPolicy, cache: CacheConfig) -> tuple[Candles, ValidationReport]:
    return validate_candles(generate_synthetic(cfg), policy, interval=cfg.interval)


def _files(cfg: FilesSource, policy: ValidationPolicy, cache: CacheConfig) -> tuple[Candles, ValidationReport]:
    """Files: the calendar inferred from the bars under `validation.calendar: auto` (stock files
    skip weekends and holidays), said in the report."""
    return validate_rows(read_files(cfg), policy, cfg.interval, cfg.adjust, ", ".join(cfg.paths)[:300])


def candles_from_table(
    table: Any,
    symbol: str = "DATA",
    interval: str | None = None,
    policy: ValidationPolicy | None = None,
    adjust: str = "auto",
    timezone: str | None = None,
) -> tuple[Candles, ValidationReport]:
    """Candles from an Arrow table or a pandas DataFrame already in memory, validated exactly as a
    file with the same columns would be (a time column and open, high, low, close, volume, any
    case; an adjusted close; the calendar inferred), with the report of every defect. A
    DataFrame's DatetimeIndex is its time column."""
    import pyarrow as pa

    from candleflow.data.sources.files import canonical_columns

    if not isinstance(table, pa.Table):  # a pandas DataFrame: its DatetimeIndex becomes a column
        frame = table
        if getattr(getattr(frame, "index", None), "dtype", None) is not None and frame.index.dtype.kind == "M":
            frame = frame.reset_index()
        try:
            table = pa.Table.from_pandas(frame, preserve_index=False)
        except (TypeError, ValueError, pa.ArrowException) as exc:
            raise SourceError(f"{symbol}: not a table of candles ({type(exc).__name__}: {str(exc)[:160]})") from None
    where = f"{symbol} (a table in memory)"
    columns = canonical_columns(table, Path(where), 1, None, timezone)
    raw = RawCandles(columns=columns, symbol=symbol, source=f"{symbol} table", interval=interval)
    return validate_rows(raw, policy or ValidationPolicy(), interval, adjust, where)


def validate_rows(
    raw: RawCandles, policy: ValidationPolicy, interval: str | None, adjust: str, where: str
) -> tuple[Candles, ValidationReport]:
    """Rows from files or a table: back-adjusted by an adjusted close (`adjust: auto`), on the
    calendar inferred from the bars under `validation.calendar: auto`, validated."""
    adjusted = ""
    if ADJ_CLOSE in raw.columns:
        if adjust == "auto":
            _damaged_adjusted_closes(raw, policy)
            raw.columns, changed = back_adjust(raw.columns)
            adjusted = f"back-adjusted by the adjusted close (source.adjust: auto): {changed:,} rows scaled"
            log.info("%s: %s", where, adjusted)
        else:
            raw.columns = {k: v for k, v in raw.columns.items() if k != ADJ_CLOSE}
    reason = ""
    if policy.calendar == "auto":
        from candleflow.data.calendar import infer_calendar

        name, reason = infer_calendar(raw.columns["open_time"], where=where)
        log.info("validation.calendar auto: %s (%s)", name, reason)
        policy = policy.model_copy(update={"calendar": name})
    candles, report = validate_candles(raw, policy, interval=interval)
    report.calendar_reason = reason
    report.adjusted = adjusted or report.adjusted
    return candles, report


def _damaged_adjusted_closes(raw: Any, policy: ValidationPolicy) -> None:
    """An adjusted close that is empty, `n/a`, 0 or negative cannot scale its bar: left unadjusted,
    the bar would be a fake jump and its return (a +10% / -13% round trip) that passes every other
    check. Such a row is a bad row: an error naming the file and line (validation.nonfinite=error),
    or its prices made NaN so that the nonfinite check drops it and counts it (nonfinite=drop)."""
    adj = np.asarray(raw.columns[ADJ_CLOSE], dtype=np.float64)
    bad = ~(np.isfinite(adj) & (adj > 0))
    if not bad.any():
        return
    if policy.nonfinite == "error":
        i = int(np.argmax(bad))
        raise ValidationError(
            f"{raw.locate(i)}: the adjusted close is {adj[i]}; expected a positive number to adjust the bar by "
            f"({int(bad.sum())} such rows; validation.nonfinite=error; 'drop' removes them, source.adjust: none "
            "keeps the prices as written)"
        )
    for name in ("open", "high", "low", "close"):
        raw.columns[name] = np.where(bad, np.nan, np.asarray(raw.columns[name], dtype=np.float64))
    log.warning(
        "%s: %d rows with a damaged adjusted close dropped (validation.nonfinite=drop)", raw.source, int(bad.sum())
    )


def _binance(cfg: BinanceSource, policy: ValidationPolicy, cache: CacheConfig) -> tuple[Candles, ValidationReport]:
    from candleflow.data.sources.binance.fetch import fetch_candles

    res = fetch_candles(cfg, policy, max_cache_bytes=cache.max_bytes)
    return res.candles, res.report


def _yfinance(cfg: YFinanceSource, policy: ValidationPolicy, cache: CacheConfig) -> tuple[Candles, ValidationReport]:
    """Yahoo's bars on the calendar of the exchange Yahoo reports (validation.calendar: auto)."""
    from candleflow.data.sources.yfinance import calendar_for, fetch_yfinance

    raw, info = fetch_yfinance(cfg, max_cache_bytes=cache.max_bytes)
    if policy.calendar == "auto":
        policy = policy.model_copy(update={"calendar": calendar_for(info, cfg.symbol)})
    candles, report = validate_candles(raw, policy, interval=cfg.interval)
    report.exchange = info.get("exchange_name", "")
    return candles, report


LOADERS: dict[str, Loader] = {"synthetic": _synthetic, "files": _files, "binance": _binance, "yfinance": _yfinance}


def load_candles(
    cfg: SourceConfig | None = None, policy: ValidationPolicy | None = None, cache: CacheConfig | None = None
) -> tuple[Candles, ValidationReport]:
    """Read the source and validate it: canonical Candles plus the report of every defect.
    `cache` caps the download caches (default: `cache.max_gb`'s default). Every source goes
    through its loader in LOADERS (one signature: the source protocol)."""
    cfg = cfg or SyntheticSource()
    return LOADERS[cfg.kind](cfg, policy or ValidationPolicy(), cache or CacheConfig())


__all__ = ["LOADERS", "generate_synthetic", "load_candles", "read_files"]
