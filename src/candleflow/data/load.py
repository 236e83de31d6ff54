"""Sources turn a config into raw rows; `load_candles` validates them into Candles."""

from __future__ import annotations

import logging

from candleflow.config import (
    BinanceSource,
    CacheConfig,
    FilesSource,
    SourceConfig,
    SyntheticSource,
    ValidationPolicy,
    YFinanceSource,
)
from candleflow.data.candles import Candles
from candleflow.data.sources.files import read_files
from candleflow.data.sources.synthetic import generate_synthetic
from candleflow.data.validate import RawCandles, ValidationReport, validate_candles

log = logging.getLogger("candleflow")


def read_source(cfg: SourceConfig) -> RawCandles:
    """Raw rows from the configured source, in source order."""
    if isinstance(cfg, SyntheticSource):
        return generate_synthetic(cfg)
    if isinstance(cfg, FilesSource):
        return read_files(cfg)
    raise TypeError(f"read_source does not take {type(cfg).__name__}; use load_candles")


def load_candles(
    cfg: SourceConfig | None = None, policy: ValidationPolicy | None = None, cache: CacheConfig | None = None
) -> tuple[Candles, ValidationReport]:
    """Read the source and validate it: canonical Candles plus the report of every defect.
    `cache` caps the download caches (default: `cache.max_gb`'s default)."""
    cfg = cfg or SyntheticSource()
    cache = cache or CacheConfig()
    if isinstance(cfg, BinanceSource):
        from candleflow.data.sources.binance.fetch import fetch_candles

        res = fetch_candles(cfg, policy, max_cache_bytes=cache.max_bytes)
        return res.candles, res.report
    if isinstance(cfg, YFinanceSource):
        from candleflow.data.sources.yfinance import calendar_for, fetch_yfinance

        raw, info = fetch_yfinance(cfg, max_cache_bytes=cache.max_bytes)
        policy = policy or ValidationPolicy()
        if policy.calendar == "auto":
            policy = policy.model_copy(update={"calendar": calendar_for(info, cfg.symbol)})
        candles, report = validate_candles(raw, policy, interval=cfg.interval)
        report.exchange = info.get("exchange_name", "")
        return candles, report
    raw = read_source(cfg)
    policy = policy or ValidationPolicy()
    reason = ""
    if isinstance(cfg, FilesSource) and policy.calendar == "auto":  # stock files skip weekends and holidays
        from candleflow.data.calendar import infer_calendar

        name, reason = infer_calendar(raw.columns["open_time"], where=", ".join(cfg.paths)[:300])
        log.info("validation.calendar auto: %s (%s)", name, reason)
        policy = policy.model_copy(update={"calendar": name})
    candles, report = validate_candles(raw, policy, interval=getattr(cfg, "interval", None))
    report.calendar_reason = reason
    return candles, report


__all__ = ["generate_synthetic", "load_candles", "read_files", "read_source"]
