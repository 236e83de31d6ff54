"""Many symbols at once, as `candleflow download` fetches them: each symbol's range downloaded,
verified, parsed and validated on its own (one failing symbol does not stop the others), then
one error naming the first failure; and what a bucket listing publishes for given symbols."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from candleflow.config import BinanceSource
from candleflow.data.sources.binance.fetch import BinanceResult, fetch_candles
from candleflow.data.sources.binance.listing import list_files, list_intervals, list_symbols
from candleflow.errors import CandleflowError, DownloadError


@dataclass
class SymbolDownload:
    """One symbol's outcome: its result, or the one-line error it failed with."""

    symbol: str
    result: BinanceResult | None
    error: str = ""


def download_symbol(
    cfg: BinanceSource,
    max_cache_bytes: int | None = None,
    on_planned: Callable[[list], None] = lambda refs: None,
    on_bytes: Callable[[int], None] = lambda n: None,
    on_done: Callable[[object], None] = lambda r: None,
    on_more: Callable[[int], None] = lambda n: None,
) -> SymbolDownload:
    """fetch_candles for one symbol, with its failure kept as a value rather than raised."""
    try:
        res = fetch_candles(
            cfg,
            on_planned=on_planned,
            on_bytes=on_bytes,
            on_done=on_done,
            on_more=on_more,
            max_cache_bytes=max_cache_bytes,
        )
    except CandleflowError as exc:
        return SymbolDownload(cfg.symbol, None, str(exc))
    return SymbolDownload(cfg.symbol, res)


def raise_for_failures(outcomes: Iterable[SymbolDownload]) -> None:
    """One DownloadError naming the first failed symbol's error (and how many more failed)."""
    failed = [o.error for o in outcomes if o.result is None]
    if failed:
        raise DownloadError(failed[0] + (f" (and {len(failed) - 1} more symbols failed)" if len(failed) > 1 else ""))


def notes(outcomes: Iterable[SymbolDownload]) -> list[str]:
    """A line per symbol: where its candles are (and their fingerprint) or why it failed, and how
    many cached daily files a published monthly file replaced."""
    out = []
    for o in outcomes:
        if o.result is None:
            out.append(f"{o.symbol}: {o.error}")
            continue
        out.append(f"{o.symbol}: {o.result.parquet} (fingerprint {o.result.candles.fingerprint[:16]})")
        if o.result.download.superseded:
            out.append(
                f"{o.symbol}: {o.result.download.superseded} cached daily files replaced by their published monthly files"
            )
    return out


@dataclass
class Published:
    """What a listing holds: every symbol of a market, or one symbol's intervals and files."""

    symbols: list[str]
    intervals: dict[str, list[str]]
    files: dict[str, list[str]]


def published(listing_url: str, market: str, symbols: list[str], interval: str) -> Published:
    """The market's symbols (when `symbols` is empty), else each symbol's intervals and its
    `interval` files, from the bucket listing at `listing_url`."""
    if not symbols:
        return Published(list_symbols(listing_url, market), {}, {})
    return Published(
        list(symbols),
        {s: list_intervals(listing_url, market, s) for s in symbols},
        {s: list_files(listing_url, market, s, interval) for s in symbols},
    )


__all__ = ["Published", "SymbolDownload", "download_symbol", "notes", "published", "raise_for_failures"]
