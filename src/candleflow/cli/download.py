"""`candleflow download`: Binance klines for many symbols, verified, cached and parsed, with a
progress bar per symbol; or what the bucket lists. The fetching is
`candleflow.data.sources.binance.batch`; this module parses options and prints."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from candleflow.cli.common import app, console, err_console, log_file_for, setup_logging


@app.command()
def download(
    symbol: Annotated[list[str] | None, typer.Option("--symbol", help="e.g. BTCUSDT; repeat for more")] = None,
    interval: Annotated[
        str | None, typer.Option(help="kline interval: 1s (spot), 1m ... 1d, 3d, 1w (default: 1m)")
    ] = None,
    start: Annotated[str | None, typer.Option(help="YYYY-MM or YYYY-MM-DD")] = None,
    end: Annotated[str | None, typer.Option(help="YYYY-MM or YYYY-MM-DD, inclusive")] = None,
    market: Annotated[
        str | None, typer.Option(help="spot, um (USD-M futures) or cm (COIN-M futures); default spot")
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(help="https://..., http://127.0.0.1:... or file://... mirror (default: data.binance.vision)"),
    ] = None,
    listing_url: Annotated[
        str | None, typer.Option(help="bucket listing URL (default: the S3 bucket, or --base-url when that is set)")
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="raw ZIPs (remote layout) and parsed Parquet (default: ~/.cache/candleflow/binance)"),
    ] = None,
    concurrency: Annotated[int | None, typer.Option(help="parallel downloads, 1..64 (default 8)")] = None,
    retries: Annotated[int | None, typer.Option(help="attempts after the first, 0..20 (default 4)")] = None,
    timeout: Annotated[float | None, typer.Option(help="seconds without data before a retry (default 30)")] = None,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="skip the sha256 check (not recommended)")] = False,
    list_: Annotated[bool, typer.Option("--list", help="list what exists instead of downloading")] = False,
    max_gb: Annotated[
        float | None,
        typer.Option(
            "--max-gb",
            help="keep the cache under this many GB, least recently used files first (default: cache.max_gb)",
        ),
    ] = None,
) -> None:
    """Download Binance klines: verified against .CHECKSUM, cached, parsed to Parquet."""
    from candleflow.config import BinanceSource, CacheConfig, validate_options
    from candleflow.data.sources.binance.batch import notes, raise_for_failures
    from candleflow.data.sources.binance.listing import DEFAULT_LISTING_URL

    # defaults are the binance source config's (one declaration); --symbol, --start, --end are per call
    base = validate_options(
        BinanceSource,
        {
            "market": market,
            "interval": interval or "1m",
            "base_url": base_url,
            "cache_dir": None if cache_dir is None else str(cache_dir),
            "concurrency": concurrency,
            "retries": retries,
            "timeout": timeout,
            "verify": False if no_verify else None,
            "start": start,
            "end": end,
        },
    )
    # each symbol validated before anything is fetched: symbols become cache paths
    per_symbol = [validate_options(BinanceSource, {**base.model_dump(), "symbol": sym}) for sym in symbol or []]
    setup_logging(log_file=log_file_for(None, "download"))
    if list_:
        _print_listing(listing_url or (base.base_url if base_url is not None else DEFAULT_LISTING_URL), base, symbol)
        return
    if not symbol or not start or not end:
        raise typer.BadParameter("--symbol, --start and --end are required to download (or use --list)")
    cap = validate_options(CacheConfig, {"max_gb": max_gb}).max_bytes
    outcomes = [_download_one(src, cap) for src in per_symbol]
    t = _outcomes_table(base, outcomes)
    console.print(t)
    for line in notes(outcomes):
        console.print(line, markup=False, highlight=False)
    raise_for_failures(outcomes)


def _print_listing(listing: str, base: Any, symbol: list[str] | None) -> None:
    """What the bucket publishes: the market's symbols (without --symbol), each symbol's intervals
    and monthly files."""
    from candleflow.data.sources.binance.batch import published

    found = published(listing, base.market, list(symbol or []), base.interval)
    if not symbol:
        console.print(f"{len(found.symbols)} {base.market} symbols with monthly klines:")
        console.print(" ".join(found.symbols), markup=False, highlight=False)
    for sym in found.intervals:
        console.print(f"{sym}: intervals {' '.join(found.intervals[sym])}", markup=False)
        console.print(f"{sym} {base.interval}: {len(found.files[sym])} files", markup=False)
        for k in found.files[sym]:
            console.print(f"  {k}", markup=False, highlight=False)


def _outcomes_table(base: Any, outcomes: list[Any]) -> Table:
    """One row per symbol: files downloaded, cached, missing, failed, size, time, rows, gaps."""
    t = Table(title=f"download {base.market} {base.interval} {base.start} .. {base.end} into {base.cache_dir}")
    for col in ("symbol", "downloaded", "cached", "missing", "failed", "MB", "seconds", "rows", "gaps", "missing bars"):
        t.add_column(col, justify="left" if col == "symbol" else "right")
    for o in outcomes:
        if o.result is None:
            t.add_row(o.symbol, *["-"] * 9, style="red")
            continue
        dl, rep = o.result.download, o.result.report
        t.add_row(
            o.symbol,
            str(dl.count("downloaded")),
            str(dl.count("cached")),
            str(dl.count("missing")),
            str(dl.count("failed")),
            f"{dl.bytes / 2**20:.1f}",
            f"{dl.seconds:.1f}",
            f"{rep.rows_out:,}",
            str(rep.gaps),
            f"{rep.missing_bars:,}",
        )
    return t


def _download_one(cfg, max_cache_bytes: int | None):
    """One symbol's download with a progress bar (files, MB, MB/s)."""
    from candleflow.data.sources.binance.batch import download_symbol

    state = {"bytes": 0, "t0": time.perf_counter()}
    with Progress(
        TextColumn(escape(f"{cfg.symbol} {cfg.interval}")),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files"),
        TextColumn("{task.fields[mb]:.1f} MB, {task.fields[rate]:.1f} MB/s"),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task("files", total=None, mb=0.0, rate=0.0)

        def on_bytes(n: int) -> None:
            state["bytes"] += n
            mb = state["bytes"] / 2**20
            progress.update(task, mb=mb, rate=mb / max(time.perf_counter() - state["t0"], 1e-6))

        return download_symbol(
            cfg,
            max_cache_bytes,
            on_planned=lambda refs: progress.update(task, total=len(refs)),
            on_bytes=on_bytes,
            on_done=lambda r: progress.advance(task),
            on_more=lambda n: progress.update(task, total=(progress.tasks[0].total or 0) + n),
        )
