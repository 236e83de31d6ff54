"""Binance public bulk data: plan, download with verification, parse, cache as Parquet.

COIN-M (`cm`) files use Binance's column order with other meanings: `volume` is the number of
contracts, `quote_volume` holds the base-asset volume, `taker_buy_base` the taker-buy contracts
and `taker_buy_quote` the taker-buy base-asset volume.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from candleflow.config import BinanceSource, ValidationPolicy
from candleflow.data.candles import Candles
from candleflow.data.sources.binance.download import (
    DownloadError,
    DownloadOptions,
    DownloadReport,
    FileResult,
    download_files,
)
from candleflow.data.sources.binance.plan import FileRef, plan_files
from candleflow.data.sources.files import read_paths
from candleflow.data.validate import ValidationReport, validate_candles
from candleflow.errors import SourceError
from candleflow.fs.atomic import atomic_path
from candleflow.fs.caches import evict, record, remember, touch


@dataclass
class BinanceResult:
    candles: Candles
    report: ValidationReport
    download: DownloadReport
    parquet: Path


def download_options(cfg: BinanceSource) -> DownloadOptions:
    return DownloadOptions(
        base_url=cfg.base_url,
        cache_dir=Path(cfg.cache_dir).expanduser(),
        concurrency=cfg.concurrency,
        verify=cfg.verify,
        retries=cfg.retries,
        timeout=cfg.timeout,
        deadline=cfg.deadline,
    )


def candles_path(cache_dir: Path, market: str, symbol: str, interval: str) -> Path:
    """Where the parsed, validated candles of one market/symbol/interval are kept."""
    return cache_dir / "candles" / market / symbol / f"{symbol}-{interval}.parquet"


def fetch_candles(
    cfg: BinanceSource,
    policy: ValidationPolicy | None = None,
    on_planned: Callable[[list[FileRef]], None] = lambda refs: None,
    on_bytes: Callable[[int], None] = lambda n: None,
    on_done: Callable[[FileResult], None] = lambda r: None,
    on_more: Callable[[int], None] = lambda n: None,
    max_cache_bytes: int | None = None,
) -> BinanceResult:
    """Download (or reuse) every file of the range, verify, parse, validate, write Parquet; then
    keep the cache under `max_cache_bytes` (least recently used files go first, never this range's)."""
    opts = download_options(cfg)
    refs = plan_files(cfg.market, cfg.symbol, cfg.interval, cfg.start, cfg.end)
    on_planned(refs)
    dl = download_files(refs, opts, on_bytes=on_bytes, on_done=on_done, on_more=on_more)
    if dl.failures:
        first = dl.failures[0]
        more = f" (and {len(dl.failures) - 1} more failed files)" if len(dl.failures) > 1 else ""
        raise DownloadError(first.error + more)
    if not dl.paths:
        raise SourceError(
            f"{cfg.base_url}: no {cfg.market} {cfg.symbol} {cfg.interval} files published "
            f"for {cfg.start} .. {cfg.end} ({dl.count('missing')} missing)"
        )
    raw = read_paths(dl.paths, "binance", cfg.symbol, cfg.interval, source="binance")
    candles, report = validate_candles(raw, policy, interval=cfg.interval)
    out = candles_path(opts.cache_dir, cfg.market, cfg.symbol, cfg.interval)
    table = candles.to_arrow()
    meta = dict(table.schema.metadata or {})
    meta[b"market"] = cfg.market.encode()
    meta[b"validation"] = json.dumps(report.to_dict()).encode()
    meta[b"files"] = json.dumps([p.name for p in dl.paths]).encode()
    if _stored_fingerprint(out) != candles.fingerprint:  # unchanged candles: the Parquet stays as it is
        with atomic_path(out, suffix=".parquet") as tmp:
            pq.write_table(table.replace_schema_metadata(meta), tmp)
        remember("binance", opts.cache_dir, [out])
    else:
        touch(out)
    record("binance", opts.cache_dir, hits=dl.count("cached"), misses=dl.count("downloaded"))
    evict("binance", opts.cache_dir, max_cache_bytes, keep=[*dl.paths, out])
    return BinanceResult(candles, report, dl, out)


def _stored_fingerprint(path: Path) -> str | None:
    """The fingerprint in an existing candles Parquet's metadata, or None (missing or unreadable)."""
    try:
        meta = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid):
        return None
    value = meta.get(b"fingerprint")
    return value.decode() if value else None


__all__ = [
    "BinanceResult",
    "DownloadOptions",
    "FileRef",
    "candles_path",
    "download_files",
    "fetch_candles",
    "plan_files",
]
