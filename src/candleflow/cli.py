"""The `candleflow` command: a thin layer over the Python API."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from candleflow.errors import CandleflowError
from candleflow.runs.folder import RunFolder

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Exchange candles to leak-free datasets and trained, evaluated, versioned models.",
)
models_app = typer.Typer(no_args_is_help=True, help="List and inspect saved runs and their models.")
app.add_typer(models_app, name="models")
cache_app = typer.Typer(no_args_is_help=True, help="List and prune candleflow's caches (downloads, prepared data).")
app.add_typer(cache_app, name="cache")
# wide enough for the metrics table when output goes to a file or a CI log
# markup off: symbols, file names, listing keys and run names are printed as they are ("[/]" included)
console = Console(markup=False) if sys.stdout.isatty() else Console(width=120, markup=False)
err_console = (
    Console(stderr=True, markup=False) if sys.stderr.isatty() else Console(stderr=True, width=120, markup=False)
)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML config; the embedded default when omitted")
]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", "-s", help="override a config key, e.g. --set labels.horizon=48")
]
RunsOpt = Annotated[Path, typer.Option("--runs-dir", help="folder holding run folders")]


class _CommandLog(logging.FileHandler):
    """The log file of one command; a later command in the same process replaces it."""


def _setup_logging(verbose: bool = False, log_file: Path | None = None) -> None:
    """Log to the console (INFO with `verbose`, else WARNING) and, with `log_file`, everything to that file."""
    log = logging.getLogger("candleflow")
    log.setLevel(logging.INFO)
    if not any(isinstance(h, RichHandler) for h in log.handlers):
        h = RichHandler(console=err_console, show_path=False, show_time=False, markup=False)
        h.setLevel(logging.INFO if verbose else logging.WARNING)
        h.addFilter(lambda record: record.name != "candleflow.epochs")
        log.addHandler(h)
    for old in [h for h in log.handlers if isinstance(h, _CommandLog)]:
        log.removeHandler(old)
        old.close()
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        fh = _CommandLog(log_file)
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(fh)
        fh.handle(log.makeRecord(log.name, logging.INFO, __file__, 0, "candleflow %s", (" ".join(sys.argv[1:]),), None))
    log.propagate = False


def _bar(label: str, transient: bool = True, disable: bool = False) -> Progress:
    """The progress bar of the long commands: label, bar, done/total, elapsed time, on stderr."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=transient,
        disable=disable,
    )


def _log_file(cfg, command: str) -> Path:
    """Where a long command other than run/train logs: LOG_DIR/TIME-COMMAND-PID.log, LOG_DIR being
    output.log_dir, $CANDLEFLOW_LOG_DIR or the user's state folder (never the working folder)."""
    folder = (cfg.output.log_dir if cfg is not None else None) or os.environ.get("CANDLEFLOW_LOG_DIR")
    if not folder:
        state = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
        folder = Path(state) / "candleflow" / "logs"
    return Path(folder).expanduser() / f"{time.strftime('%Y%m%d-%H%M%S')}-{command}-{os.getpid()}.log"


@app.command()
def run(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Train and evaluate a model end to end and save a run folder (embedded default: synthetic market)."""
    from candleflow.config import load_config
    from candleflow.pipeline import run as run_pipeline

    _setup_logging(verbose=True)
    cfg = load_config(config, set_)
    _print_result(_interruptible(lambda: run_pipeline(cfg)), cfg.task)


@app.command()
def train(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    resume: Annotated[
        str | None, typer.Option("--resume", help="continue the interrupted run NAME from its last complete epoch")
    ] = None,
    runs_dir: RunsOpt = Path("runs"),
) -> None:
    """Train like `run`; with --resume NAME, continue a run stopped by Ctrl-C or a crash."""
    from candleflow.config import load_config
    from candleflow.pipeline import resume as resume_pipeline
    from candleflow.pipeline import run as run_pipeline

    _setup_logging(verbose=True)
    if resume is None:
        cfg = load_config(config, set_)
        _print_result(_interruptible(lambda: run_pipeline(cfg)), cfg.task)
        return
    if config is not None or set_:
        raise typer.BadParameter("--resume continues with the run's own config.yaml; drop --config/--set")
    result = _interruptible(lambda: resume_pipeline(resume, runs_dir))
    _print_result(result, result.metadata["task"])


def _interruptible(call):
    """Run `call`; on Ctrl-C print how to resume (one line) and exit 130, the shell's code for SIGINT."""
    try:
        return call()
    except KeyboardInterrupt as exc:
        notes = " ".join(getattr(exc, "__notes__", []))
        err_console.print(f"interrupted{'; ' + notes if notes else ''}", markup=False, highlight=False)
        raise typer.Exit(130) from None


def _print_result(result, task: str) -> None:
    meta = result.metadata
    if task == "reward":
        console.print(reward_table(result.metrics["val"]))
        console.print(
            f"parameters {meta['parameters']:,}; peak resident memory {meta['peak_rss_mb']:.0f} MB; "
            f"{meta['epochs_run']} epochs in {meta['fit_seconds']:.0f}s; run took {meta['seconds']:.0f}s"
        )
        console.print(f"run folder: {result.run_dir}")
        return
    for part, m in result.metrics.items():
        what = "(window, ticker) labels" if "cross_section" in m else "windows"
        console.print(metrics_table(m, title=f"{part} period: {m['n']:,} {what}"))
    console.print(
        f"parameters {meta['parameters']:,}; peak resident memory {meta['peak_rss_mb']:.0f} MB; "
        f"{meta['epochs_run']} epochs in {meta['fit_seconds']:.0f}s; run took {meta['seconds']:.0f}s"
    )
    if "cross_section" in result.metrics["val"]:  # a panel run: every ticker side by side
        _print_panel(result)
        return
    if "series" in result.metrics["val"]:  # a universe run: one model over many series
        t = Table(title="validation period, per series (the model's decisions)")
        for col in ("series", "windows", "accuracy"):
            t.add_column(col, justify="left" if col == "series" else "right")
        for name, r in result.metrics["val"]["series"].items():
            t.add_row(name, f"{r['windows']:,}", f"{r['accuracy']:.2%}")
        console.print(t)
        console.print(f"run folder: {result.run_dir}")
        return
    for part, m in result.metrics.items():  # every evaluated period: validation, and test when there is one
        tr = m["trading"]
        t = Table(
            title=f"backtest of the decisions, {part} period ({tr['mode']} position, "
            f"fee+slippage {tr['fee'] + tr['slippage']:.4f} per side)"
        )
        for col in ("strategy", "total return", "Sharpe", "max drawdown", "trades", "hit rate"):
            t.add_column(col, justify="left" if col == "strategy" else "right")
        rows = {**tr["table"], **tr.get("legs", {})}
        rows.update({f"model at {k} costs": v for k, v in tr.get("costs", {}).items() if k != "1x"})
        for name, r in rows.items():
            t.add_row(
                name,
                f"{r['total_return']:+.2%}",
                f"{r['sharpe']:.2f}",
                f"{r['max_drawdown']:.2%}",
                f"{r['trades']:,}",
                f"{r['hit_rate']:.2%}",
                style="bold" if name == "model" else None,
            )
        if tr.get("note"):
            t.caption = f"note: {tr['note']}"
        console.print(t)
    console.print(f"run folder: {result.run_dir} (report: {result.run_dir / 'report.html'})")


def _print_panel(result) -> None:
    """Per ticker balanced accuracy and the cross-sectional backtest of each evaluated period."""
    val = result.metrics["val"]
    t = Table(title="validation period, per ticker (the model's decisions)")
    for col in ("ticker", "labels", "balanced acc"):
        t.add_column(col, justify="left" if col == "ticker" else "right")
    for name, r in val["tickers"].items():
        ba = r["balanced_accuracy"]
        t.add_row(name, f"{r['labels']:,}", "-" if ba is None else f"{ba:.3f}")
    console.print(t)
    for part, m in result.metrics.items():
        t = Table(
            title=f"cross-sectional backtest, {part} period (long top k, short bottom k, rebalanced every horizon)"
        )
        for col in ("book", "total return", "Sharpe", "max drawdown", "turnover / yr", "hit rate", "periods"):
            t.add_column(col, justify="left" if col == "book" else "right")
        for name, r in m["cross_section"].items():
            t.add_row(
                name,
                f"{r['total_return']:+.2%}",
                f"{r['sharpe']:.2f}",
                f"{r['max_drawdown']:.2%}",
                f"{r['turnover']:.1f}",
                f"{r['hit_rate']:.2%}",
                f"{r['active_periods']:,}",
                style="bold" if name == "model" else None,
            )
        t.caption = "oracle: ranked by the realised returns (a bound, not a strategy)"
        console.print(t)
    console.print(f"run folder: {result.run_dir}")


@app.command()
def prepare(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    store: Annotated[
        str | None,
        typer.Option("--store", help="prepare into this store (path or fsspec URL), one entry per symbol, on Dask"),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", help="address of a running Dask scheduler (default: local worker processes)"),
    ] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="local worker processes", min=1)] = None,
    symbols: Annotated[str | None, typer.Option("--symbols", help="comma-separated, e.g. BTCUSDT,ETHUSDT")] = None,
    intervals: Annotated[str | None, typer.Option("--intervals", help="comma-separated, e.g. 1m,1h")] = None,
    force: Annotated[bool, typer.Option("--force", help="prepare listed entries again")] = False,
) -> None:
    """Read the source, validate candles, compute features, labels, windows and split; no training.
    With a universe (--symbols, --intervals, universe.sources) or --store: every series on Dask, into a store."""
    from candleflow.config import load_config
    from candleflow.dataset.prepare import prepare as prepare_data

    given = {
        "universe.store": store,
        "cluster.scheduler": scheduler,
        "cluster.workers": workers,
        "universe.symbols": symbols and f"[{symbols}]",
        "universe.intervals": intervals and f"[{intervals}]",
    }
    flags = [f"{key}={value}" for key, value in given.items() if value]
    cfg = load_config(config, [*(set_ or []), *flags])
    _setup_logging(verbose=not as_json, log_file=_log_file(cfg, "prepare"))
    if store or scheduler or cfg.universe.active:
        _prepare_store(cfg, force, as_json)
        return
    prep = prepare_data(cfg)
    summary = prep.summary() | {"validation": prep.report.to_dict()}
    if as_json:
        console.print_json(json.dumps(summary))
        return
    console.print(
        f"{summary['symbol']} {summary['interval']}: {summary['rows']:,} rows, "
        f"{summary['segments']} segments, fingerprint {summary['fingerprint'][:16]}"
    )
    console.print(f"validation: {prep.report.summary()}")
    console.print(
        f"features {tuple(summary['feature_shape'])} float32 ({summary['feature_mb']} MB); "
        f"{summary['windows']:,} windows of {tuple(summary['window_shape'])} as views "
        f"(a copy would take {summary['materialised_windows_mb']:,} MB)"
    )
    t = Table(title="split (chronological, purged)")
    for col in ("part", "windows", "purged", "first end", "last end", "SHORT", "HOLD", "LONG"):
        t.add_column(col, justify="right" if col not in ("part", "first end", "last end") else "left")
    for part, p in summary["split"].items():
        c = p["classes"]
        t.add_row(
            part,
            f"{p['windows']:,}",
            str(p["purged"]),
            str(p["first_end"]),
            str(p["last_end"]),
            f"{c['SHORT']:,}",
            f"{c['HOLD']:,}",
            f"{c['LONG']:,}",
        )
    console.print(t)


def _prepare_store(cfg, force: bool, as_json: bool) -> None:
    from candleflow.scale.cluster import build_store, plan_tasks
    from candleflow.scale.store import SeriesStore

    store = SeriesStore.for_config(cfg)  # a bad URL is reported before any work starts
    n = len(plan_tasks(cfg))
    with _bar("prepare", transient=False, disable=as_json) as bar:
        task = bar.add_task("entries", total=n)
        report = build_store(cfg, force=force, on_done=lambda name, rec, err: bar.advance(task))
    summary = report.to_dict() | {"manifest": store.summary()}
    if as_json:
        console.print_json(json.dumps(summary))
        return
    t = Table(title=f"store {report.store}")
    for col in ("entry", "rows", "first", "last", "seconds", "worker"):
        t.add_column(col, justify="right" if col in ("rows", "seconds") else "left")
    for rec in report.computed:
        t.add_row(rec["name"], f"{rec['rows']:,}", rec["first"], rec["last"], f"{rec['seconds']:.2f}", rec["worker"])
    console.print(t)
    m = summary["manifest"]
    rate = f", {summary['rows_per_second']:,} rows/s" if summary["rows_per_second"] else ""
    console.print(
        f"{len(report.computed)} entries prepared on {report.workers} workers in {report.seconds:.1f}s"
        f"{rate}; {len(report.skipped)} already listed, {len(report.adopted)} listed from an interrupted "
        f"run, {len(report.swept)} leftovers swept"
    )
    console.print(f"manifest: {m['entries']} entries, {m['rows']:,} rows, {m['bytes'] / 2**20:,.1f} MB")


@app.command()
def inspect(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Check the prepared data: shapes, dtypes, class balance per split, NaN/inf, one-hot, memory."""
    from candleflow.config import load_config
    from candleflow.dataset.inspect import inspect_dataset
    from candleflow.dataset.prepare import prepare as prepare_data

    _setup_logging(verbose=not as_json)
    report = inspect_dataset(prepare_data(load_config(config, set_)))
    if as_json:
        console.print_json(json.dumps(report))
    else:
        f, m = report["features"], report["memory"]
        console.print(
            f"features {tuple(f['shape'])} {f['dtype']}{' (memory-mapped)' if f['memory_mapped'] else ''}; "
            f"{report['windows']:,} windows of {tuple(report['window_shape'])}; labels "
            f"{report['labels']['kind']} {report['labels']['dtype']}"
        )
        t = Table(title="split: class balance and a real batch of each part")
        for col in ("part", "windows", "purged", "SHORT", "HOLD", "LONG", "batch x", "batch y"):
            t.add_column(col, justify="left" if col in ("part", "batch x", "batch y") else "right")
        for part, p in report["split"].items():
            sh = p["class_share"]
            t.add_row(
                part,
                f"{p['windows']:,}",
                str(p["purged"]),
                f"{sh['SHORT']:.1%}",
                f"{sh['HOLD']:.1%}",
                f"{sh['LONG']:.1%}",
                p.get("batch", {}).get("x", "-"),
                p.get("batch", {}).get("y", "-"),
            )
        console.print(t)
        console.print(
            f"memory: {m['resident_mb']:,} MB resident; features {m['features_mb']:,} MB; materialised "
            f"windows would take {m['materialised_windows_mb']:,} MB ({m['saving']} the features)"
        )
        for line in report["problems"] or [
            "all checks passed: finite windows, one-hot labels, no look-ahead across splits"
        ]:
            console.print(("problem: " if report["problems"] else "") + line)
    if report["problems"]:
        raise typer.Exit(1)


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
    from candleflow.data.sources.binance.listing import DEFAULT_LISTING_URL, list_files, list_intervals, list_symbols
    from candleflow.errors import DownloadError

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
    _setup_logging(log_file=_log_file(None, "download"))
    if list_:
        listing = listing_url or (base.base_url if base_url is not None else DEFAULT_LISTING_URL)
        if not symbol:
            names = list_symbols(listing, base.market)
            console.print(f"{len(names)} {base.market} symbols with monthly klines:")
            console.print(" ".join(names), markup=False, highlight=False)
        for sym in symbol or []:
            console.print(f"{sym}: intervals {' '.join(list_intervals(listing, base.market, sym))}", markup=False)
            keys = list_files(listing, base.market, sym, base.interval)
            console.print(f"{sym} {base.interval}: {len(keys)} files", markup=False)
            for k in keys:
                console.print(f"  {k}", markup=False, highlight=False)
        return
    if not symbol or not start or not end:
        raise typer.BadParameter("--symbol, --start and --end are required to download (or use --list)")
    cap = validate_options(CacheConfig, {"max_gb": max_gb}).max_bytes
    results = [_download_one(src, cap) for src in per_symbol]
    t = Table(title=f"download {base.market} {base.interval} {base.start} .. {base.end} into {base.cache_dir}")
    for col in ("symbol", "downloaded", "cached", "missing", "failed", "MB", "seconds", "rows", "gaps", "missing bars"):
        t.add_column(col, justify="left" if col == "symbol" else "right")
    failed, notes = [], []
    for sym, res, err in results:
        if res is None:
            t.add_row(sym, *["-"] * 9, style="red")
            failed.append(err)
            notes.append(f"{sym}: {err}")
            continue
        dl, rep = res.download, res.report
        t.add_row(
            sym,
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
        notes.append(f"{sym}: {res.parquet} (fingerprint {res.candles.fingerprint[:16]})")
        if dl.superseded:
            notes.append(f"{sym}: {dl.superseded} cached daily files replaced by their published monthly files")
    console.print(t)
    for line in notes:
        console.print(line, markup=False, highlight=False)
    if failed:
        raise DownloadError(failed[0] + (f" (and {len(failed) - 1} more symbols failed)" if len(failed) > 1 else ""))


def _download_one(cfg, max_cache_bytes: int | None) -> tuple:
    """Download, verify, parse one symbol with a progress bar; (symbol, result or None, error)."""
    from candleflow.data.sources.binance.fetch import fetch_candles

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

        try:
            res = fetch_candles(
                cfg,
                on_planned=lambda refs: progress.update(task, total=len(refs)),
                on_bytes=on_bytes,
                on_done=lambda r: progress.advance(task),
                on_more=lambda n: progress.update(task, total=(progress.tasks[0].total or 0) + n),
                max_cache_bytes=max_cache_bytes,
            )
        except CandleflowError as exc:
            return cfg.symbol, None, str(exc)
    return cfg.symbol, res, ""


@app.command()
def walkforward(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    folds: Annotated[int, typer.Option(min=1, max=100, help="walk-forward folds (retrain at each)")] = 6,
    seeds: Annotated[int, typer.Option(min=1, max=20, help="seeds per family (training.seed, +1, ...)")] = 1,
    families: Annotated[
        str, typer.Option(help="comma-separated: lstm, gpt, mlp, lightgbm, linear")
    ] = "lstm,lightgbm,linear",
    rolling: Annotated[bool, typer.Option(help="rolling training periods instead of expanding")] = False,
    name: Annotated[
        str | None, typer.Option(help="study name: runs/walkforward-NAME; the same name continues it")
    ] = None,
    resamples: Annotated[int, typer.Option(min=100, max=100_000, help="block-bootstrap resamples")] = 1000,
    dask: Annotated[
        bool, typer.Option("--dask", help="run the fold tasks on Dask (cluster.workers local processes)")
    ] = False,
    scheduler: Annotated[
        str | None, typer.Option(help="a running Dask scheduler for the fold tasks (implies --dask)")
    ] = None,
) -> None:
    """Compare model families out of sample: retrain on each walk-forward fold, stitch the test
    predictions, and give each family's edge with a block-bootstrap 95% confidence interval."""
    from candleflow.config import load_config
    from candleflow.runs.walkforward_report import FAMILY_HEADER, family_rows
    from candleflow.studies.walkforward import walkforward as run_walkforward

    cfg = load_config(config, [*(set_ or []), *([f"cluster.scheduler={scheduler}"] if scheduler else [])])
    _setup_logging(log_file=_log_file(cfg, "walkforward"))
    wanted = [f.strip() for f in families.split(",") if f.strip()]
    with _bar("walk-forward") as progress:
        task = progress.add_task("folds", total=None)
        result = _interruptible(
            lambda: run_walkforward(
                cfg,
                folds,
                seeds,
                wanted,
                rolling,
                name,
                resamples=resamples,
                progress=lambda msg: progress.update(task, advance=1, description=msg),
                dask=dask or scheduler is not None,
            )
        )
    s = result.summary
    st = s["stitched"]
    t = Table(
        title=f"walk-forward {s['symbol']} {s['interval']}: {len(s['folds'])} folds x {len(s['seeds'])} seeds, "
        f"{st['windows']:,} out-of-sample windows {st['from']} .. {st['to']}"
    )
    for col in FAMILY_HEADER:
        t.add_column(col, justify="left" if col == "family" else "right")
    for row in family_rows(s):
        t.add_row(*[str(c) for c in row])
    t.caption = (
        f"best baseline balanced accuracy {max(s['baselines'].values()):.4f}; edges in points with block-bootstrap "
        "95% CIs: a CI that covers 0 is noise"
    )
    console.print(t)
    console.print(f"folder: {result.folder} (report: {result.folder / 'report.html'})")


@app.command()
def predict(
    run: Annotated[str, typer.Argument(help="run folder, its name in --runs-dir, or 'latest'")],
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="a config whose source: replaces the run's (only the source)")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", "-s", help="source.KEY=VALUE: where the new candles come from")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="signals file: .parquet or .csv")] = None,
    start: Annotated[str | None, typer.Option("--from", help="first window end to score, e.g. 2024-07-01")] = None,
    end: Annotated[str | None, typer.Option("--to", help="last window end to score")] = None,
    latest: Annotated[bool, typer.Option(help="score only the last complete bar and print its decision")] = False,
    runs_dir: RunsOpt = Path("runs"),
    overwrite: Annotated[bool, typer.Option(help="replace an existing --out")] = False,
) -> None:
    """Apply a trained run to candles from any source, with exactly the run's features, windows and
    decision rule: one row per complete window (probabilities, decision)."""
    from candleflow.data.load import load_candles
    from candleflow.runs.predict import Predictor, score_against_labels, write_signals

    if out is not None:
        from candleflow.fs.guard import check_output

        check_output(out, overwrite)  # before the work
    predictor = Predictor.from_run(run, runs_dir)
    cfg = predictor.source_config(set_, config)
    _setup_logging(log_file=_log_file(cfg, "predict"))
    candles, report = load_candles(cfg.source, cfg.validation, cfg.cache)
    table = predictor.predict(candles, start, end)
    if latest:
        table = table.slice(table.num_rows - 1)
    if out is not None:
        write_signals(table, out, overwrite)
    rows = table.slice(max(table.num_rows - 10, 0)).to_pylist()
    t = Table(title=f"{predictor.name} on {candles.symbol} {candles.interval}: {table.num_rows:,} windows scored")
    for col in ("open time", "close", "P(SHORT)", "P(HOLD)", "P(LONG)", "decision"):
        t.add_column(col, justify="left" if col in ("open time", "decision") else "right")
    for r in rows:
        t.add_row(
            str(r["open_time"])[:19],
            f"{r['close']:,.2f}",
            f"{r['prob_short']:.3f}",
            f"{r['prob_hold']:.3f}",
            f"{r['prob_long']:.3f}",
            r["decision"],
            style="bold" if r is rows[-1] else None,
        )
    console.print(t)
    score = score_against_labels(table)
    if score is not None:
        console.print(
            f"against the run's labels on the {score['rows']:,} rows whose forward window is complete: balanced "
            f"accuracy {score['balanced_accuracy']:.4f}, macro F1 {score['macro_f1']:.4f} (chance: 0.3333)"
        )
    last = rows[-1]
    console.print(
        f"latest bar {str(last['open_time'])[:19]}: {last['decision']}" + (f"; written: {out}" if out else "")
    )


@app.command()
def tune(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    name: Annotated[str | None, typer.Option(help="study name: runs/tune-NAME; the same name continues it")] = None,
    trials: Annotated[int | None, typer.Option(min=1, help="total trials (default: tune.trials)")] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="searched key, e.g. -p 'training.learning_rate={low: 1e-4, high: 1e-2, log: true}' or -p 'model.lstm_units={choices: [[64, 32], [128, 64, 32]]}'; replaces tune.space",
        ),
    ] = None,
) -> None:
    """Search config keys with Optuna, each trial scored by walk-forward validation; writes trials.csv and best.yaml."""
    from candleflow.config import load_config
    from candleflow.studies.tune import parse_search_param
    from candleflow.studies.tune import tune as run_tune

    cfg = load_config(config, set_)
    _setup_logging(verbose=True, log_file=_log_file(cfg, "tune"))
    space = dict(parse_search_param(item) for item in param) if param else None
    result = _interruptible(lambda: run_tune(cfg, name, trials, space))
    t = Table(title=f"tune: {len(result.trials)} trials, best first (mean walk-forward balanced accuracy)")
    cols = list(result.trials[0])
    for col in cols:
        t.add_column(col, justify="left" if col in ("state",) else "right")
    for row in result.trials[:15]:
        t.add_row(*[str(row[c]) for c in cols])
    console.print(t)
    console.print(
        f"best {result.best_value:.4f} with {result.best_params}; "
        f"config: {result.folder / 'best.yaml'} (train it: candleflow run --config {result.folder / 'best.yaml'})"
    )


@app.command()
def images(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="hdf5, npz, zarr, png or jpeg (default: images.format)")
    ] = None,
    layout: Annotated[str | None, typer.Option(help="bar4 or jkx (default: images.layout)")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="file (hdf5/npz) or folder")] = Path("images"),
    part: Annotated[str, typer.Option(help="which windows: train, val, test or all")] = "all",
    limit: Annotated[int | None, typer.Option(help="at most this many images (evenly spaced)")] = None,
    mode: Annotated[str | None, typer.Option(help="single file or batch files (default: images.mode)")] = None,
    images_per_file: Annotated[
        int | None, typer.Option(help="images per file in batch mode (default: images.images_per_file)")
    ] = None,
    preview: Annotated[Path | None, typer.Option(help="also write a PNG grid of 12 images with labels")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing --out that candleflow wrote")] = False,
) -> None:
    """Render chart images of the dataset's windows and store them with labels, times and symbols."""
    from candleflow.config import load_config
    from candleflow.dataset.prepare import prepare as prepare_data
    from candleflow.images.write import write_image_dataset

    shortcuts = {"format": fmt, "layout": layout, "mode": mode, "images_per_file": images_per_file}
    overrides = list(set_ or []) + [f"images.{k}={v}" for k, v in shortcuts.items() if v is not None]
    cfg = load_config(config, overrides)
    _setup_logging(log_file=_log_file(cfg, "images"))
    prep = prepare_data(cfg)
    with _bar(f"render {cfg.images.layout}") as progress:
        task = progress.add_task("images", total=None)
        res = write_image_dataset(
            prep,
            cfg.images,
            out,
            part,
            limit,
            preview,
            lambda k, total: progress.update(task, advance=k, total=total),
            overwrite=overwrite,
        )
    t = Table(
        title=f"{res.count:,} {cfg.images.layout} images {res.shape[0]}x{res.shape[1]} rendered on the "
        f"{res.device} -> {res.out}"
    )
    for col in ("images", "files", "MB on disk", "render s", "images/s rendered", "write s", "images/s written"):
        t.add_column(col, justify="right")
    t.add_row(
        f"{res.count:,}",
        f"{len(res.files):,}",
        f"{res.nbytes / 2**20:,.1f}",
        f"{res.render_seconds:.2f}",
        f"{res.count / max(res.render_seconds, 1e-9):,.0f}",
        f"{res.write_seconds:.2f}",
        f"{res.count / max(res.write_seconds, 1e-9):,.0f}",
    )
    console.print(t)
    if preview is not None:
        console.print(f"preview: {preview}")


@app.command()
def report(
    run: Annotated[str, typer.Argument(help="run folder name, path, or 'latest'")], runs_dir: RunsOpt = Path("runs")
) -> None:
    """(Re)write a run's self-contained HTML report: metrics, backtest, calibration, plots, config."""
    from candleflow.runs.registry import resolve_run
    from candleflow.runs.report import build_report

    _setup_logging()
    out = build_report(resolve_run(run, runs_dir))
    console.print(f"report: {out}")


@app.command()
def compare(
    runs: Annotated[list[str], typer.Argument(help="two or more run folder names or paths")],
    runs_dir: RunsOpt = Path("runs"),
    html_out: Annotated[Path | None, typer.Option("--html", help="also write the table as HTML")] = None,
) -> None:
    """Put runs side by side: metrics, backtest and the config keys that differ."""
    from candleflow.fs.atomic import write_text
    from candleflow.runs.registry import resolve_run
    from candleflow.runs.report import compare_html, compare_rows, fmt

    dirs = [resolve_run(r, runs_dir) for r in runs]
    names, rows = compare_rows(dirs)
    t = Table(title="runs compared (validation period)")
    t.add_column("")
    for n in names:
        t.add_column(n, justify="right")
    for r in rows:
        t.add_row(*(fmt(c) for c in r))
    console.print(t)
    if html_out is not None:
        write_text(html_out, compare_html(dirs))
        console.print(f"written: {html_out}")


@app.command()
def export(
    model: Annotated[str, typer.Argument(help="run folder name, path or 'latest', or a .keras/.h5 model file")],
    out: Annotated[Path | None, typer.Option(help="folder to create (default: RUN/export-FORMAT)")] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="stablehlo (JAX, no TensorFlow needed), tf_saved_model, onnx, openvino")
    ] = "stablehlo",
    allow_legacy_h5: Annotated[
        bool, typer.Option("--allow-legacy-h5", help="load a legacy .h5 file (no safe_mode: trusted files only)")
    ] = False,
    runs_dir: RunsOpt = Path("runs"),
) -> None:
    """Export a run's model (or a model file) for serving, with a serving.json beside it. A run
    exports as a serving bundle: `candleflow predict BUNDLE` applies it to candles."""
    from candleflow.models.export import export_model
    from candleflow.models.loading import load_model_file
    from candleflow.runs.bundle import export_bundle

    path = Path(model)
    if path.is_file():
        loaded = load_model_file(path, allow_legacy_h5)
        target = export_model(loaded, out or path.with_suffix(""), fmt, {"source": str(path)})
        console.print(f"exported {fmt} to {target} (see serving.json)")
        return
    target, used = export_bundle(model, out, fmt, runs_dir)
    console.print(
        f"exported {used} to {target}: a serving bundle (see serving.json); "
        f"candleflow predict {target} --set source.… --out signals.parquet",
        markup=False,
    )


KindOpt = Annotated[
    list[str] | None,
    typer.Option("--kind", help="binance, yfinance, prepared or stores; repeat for more (default: all)"),
]
FolderOpt = Annotated[
    Path | None, typer.Option("--folder", help="this folder instead of the config's (with exactly one --kind)")
]


def _cache_targets(config: Path | None, set_: list[str] | None, kinds: list[str] | None, folder: Path | None):
    """(config, [(kind, folder or None)]) for the cache commands."""
    from candleflow.config import BinanceSource, YFinanceSource, load_config
    from candleflow.fs.caches import KINDS

    cfg = load_config(config, set_)
    unknown = [k for k in kinds or [] if k not in KINDS]
    if unknown:
        raise typer.BadParameter(f"--kind {unknown[0]}: expected one of {', '.join(KINDS)}")
    chosen = list(dict.fromkeys(kinds)) if kinds else list(KINDS)
    src = cfg.source  # its own cache folder; the other source kinds' defaults
    binance = src.cache_dir if isinstance(src, BinanceSource) else BinanceSource.model_fields["cache_dir"].default
    yahoo = src.cache_dir if isinstance(src, YFinanceSource) else YFinanceSource.model_fields["cache_dir"].default
    folders: dict[str, Path | None] = {
        "binance": Path(binance).expanduser(),
        "yfinance": Path(yahoo).expanduser(),
        "prepared": Path(cfg.dataset.cache_dir).expanduser() if cfg.dataset.cache_dir else None,
        "stores": Path(cfg.cache.stores_dir).expanduser(),
    }
    if folder is not None:
        if len(chosen) != 1:
            raise typer.BadParameter("--folder needs exactly one --kind (which layout the folder has)")
        folders[chosen[0]] = folder.expanduser()
    return cfg, [(k, folders[k]) for k in chosen]


def _when(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


@cache_app.command("list")
def cache_list(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    kind: KindOpt = None,
    folder: FolderOpt = None,
    entries_: Annotated[
        int, typer.Option("--entries", help="also list each cache's N least recently used entries")
    ] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Each cache's folder, entries, size against its cap, and hit/miss/evicted counts."""
    from candleflow.fs.caches import entries, marker_kind, require_cache, summarize

    cfg, targets = _cache_targets(config, set_, kind, folder)
    cap = cfg.cache.max_gb
    rows = []
    for k, root in targets:
        if root is None:
            rows.append({"cache": k, "folder": None, "note": "off (dataset.cache_dir unset)"})
            continue
        if folder is not None:
            require_cache(k, root)  # a folder asked for by name must be a cache
        elif root.exists() and marker_kind(root) != k:
            rows.append({"cache": k, "folder": None, "note": f"{root}: no candleflow cache marker (nothing listed)"})
            continue
        s = summarize(k, root)
        row = {
            "cache": k,
            "folder": str(root),
            "entries": s.entries,
            "bytes": s.bytes,
            "max_gb": cap,
            "hits": s.hits,
            "misses": s.misses,
            "evicted": s.evicted,
            "least_recently_used": s.oldest,
            "most_recently_used": s.newest,
        }
        if entries_ > 0:
            row["lru_entries"] = [
                {"path": str(e.path), "bytes": e.bytes, "last_used": e.last_used} for e in entries(k, root)[:entries_]
            ]
        rows.append(row)
    if as_json:
        console.print(json.dumps(rows, indent=2), markup=False, highlight=False, soft_wrap=True)
        return
    t = Table(title=f"candleflow caches (cap per cache: {'none' if cap is None else f'{cap:g} GB'})")
    for col in (
        "cache",
        "folder",
        "entries",
        "GB",
        "hits",
        "misses",
        "hit rate",
        "evicted",
        "oldest use",
        "latest use",
    ):
        t.add_column(col, justify="left" if col in ("cache", "folder") else "right", overflow="fold")
    for r in rows:
        if r["folder"] is None:
            t.add_row(r["cache"], r["note"], *["-"] * 8)
            continue
        looked = r["hits"] + r["misses"]
        t.add_row(
            r["cache"],
            r["folder"],
            f"{r['entries']:,}",
            f"{r['bytes'] / 1e9:.3f}",
            f"{r['hits']:,}",
            f"{r['misses']:,}",
            f"{r['hits'] / looked:.0%}" if looked else "-",
            f"{r['evicted']:,}",
            _when(r["least_recently_used"]),
            _when(r["most_recently_used"]),
        )
    console.print(t)
    for r in rows:
        for e in r.get("lru_entries", []):
            console.print(
                f"{r['cache']}: {_when(e['last_used'])}  {e['bytes'] / 1e6:10.1f} MB  {e['path']}",
                markup=False,
                highlight=False,
            )


@cache_app.command("prune")
def cache_prune(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    kind: KindOpt = None,
    folder: FolderOpt = None,
    max_gb: Annotated[
        float | None,
        typer.Option("--max-gb", min=0, help="shrink each cache to this many GB (default: cache.max_gb; 0 empties)"),
    ] = None,
    older_than: Annotated[
        float | None, typer.Option("--older-than", min=0, help="also remove entries unused for this many days")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="say what would go, remove nothing")] = False,
) -> None:
    """Remove least recently used entries until each cache is within its cap (or --max-gb)."""
    from candleflow.fs.caches import evict, gb_to_bytes, require_cache

    cfg, targets = _cache_targets(config, set_, kind, folder)
    limit = gb_to_bytes(cfg.cache.max_gb if max_gb is None else max_gb)
    age = None if older_than is None else older_than * 86400.0
    verb = "would remove" if dry_run else "removed"
    # a folder named with --folder must exist; a config's folder that was never written is empty
    targets = [(k, root) for k, root in targets if root is not None and (folder is not None or root.exists())]
    for k, root in targets:  # every folder checked before anything is removed from any
        require_cache(k, root)
    for k, root in targets:
        gone = evict(k, root, limit, older_than=age, dry_run=dry_run)
        console.print(
            f"{k} ({root}): {verb} {len(gone):,} entries, {sum(e.bytes for e in gone) / 1e9:.3f} GB",
            markup=False,
            highlight=False,
        )
        if dry_run:
            for e in gone:
                console.print(f"  {e.path}", markup=False, highlight=False)


@models_app.command("list")
def models_list(runs_dir: RunsOpt = Path("runs")) -> None:
    """List complete runs, oldest first."""
    from candleflow.runs.registry import list_runs

    runs = list_runs(runs_dir)
    if not runs:
        console.print(f"no runs in {runs_dir}/ yet; start one with `candleflow run`")
        return
    t = Table(title=f"runs in {runs_dir}/")
    for col in ("run", "created", "data", "input", "params", "val bal. acc", "edge"):
        t.add_column(col)
    damaged = []
    for m in runs:
        try:
            row = _run_row(m) if "damaged" not in m else None
        except (AttributeError, TypeError, ValueError, KeyError):
            row, m["damaged"] = None, f"{Path(m['path']).name}/metadata.json: unexpected content"
        if row is None:
            damaged.append(m["damaged"])
            t.add_row(Path(m["path"]).name, "damaged", *["-"] * 5, style="red")
        else:
            t.add_row(*row)
    console.print(t)
    for line in damaged:
        console.print(f"damaged: {line}", highlight=False)


def _run_row(m: dict) -> list[str]:
    val = m.get("metrics", {}).get("val", {})
    if m.get("task") == "reward":
        score, edge = f"R^2 {val.get('r2', float('nan')):.3f}", f"{val.get('edge_r2', float('nan')):+.3f}"
    else:
        score = f"{val.get('balanced_accuracy', float('nan')):.3f}"
        edge = f"{val.get('edge_balanced_accuracy', float('nan')):+.3f}"
    return [
        Path(m["path"]).name,
        str(m.get("created", ""))[:19],
        f"{m.get('symbol')} {m.get('interval')}",
        "x".join(map(str, m.get("input_shape", []))),
        f"{m.get('parameters', 0):,}",
        score,
        edge,
    ]


@models_app.command("show")
def models_show(
    run: Annotated[str, typer.Argument(help="run folder name, path, or 'latest'")], runs_dir: RunsOpt = Path("runs")
) -> None:
    """Show a run's metadata and its metrics table."""
    from candleflow.runs.registry import read_metadata, resolve_run

    path = resolve_run(run, runs_dir)
    meta = read_metadata(path)
    metrics = RunFolder(path).metrics()
    console.print(f"{path}")
    for key in (
        "created",
        "symbol",
        "interval",
        "data_fingerprint",
        "input_shape",
        "parameters",
        "epochs_run",
        "peak_rss_mb",
        "seconds",
        "versions",
    ):
        console.print(f"  {key}: {meta.get(key)}")
    for part, m in metrics.items():
        if meta.get("task") == "reward":
            console.print(reward_table(m))
        else:
            console.print(metrics_table(m, title=f"{part} period: {m['n']:,} windows"))


def reward_table(m: dict) -> Table:
    """The reward model against constant predictions on the validation samples."""
    t = Table(title=f"reward model, validation period: {m['n']:,} samples")
    for col in ("predictor", "R^2", "Spearman", "MSE"):
        t.add_column(col, justify="left" if col == "predictor" else "right")
    for name, r in m["table"].items():
        t.add_row(
            name, f"{r['r2']:.4f}", f"{r['spearman']:.4f}", f"{r['mse']:.3e}", style="bold" if name == "model" else None
        )
    t.caption = f"R^2 over the best constant: {m['edge_r2']:+.4f}"
    return t


@app.command()
def rewards(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    out: Annotated[Path, typer.Option("--out", "-o", help=".parquet or .npz")] = Path("reward_samples.parquet"),
    n: Annotated[int | None, typer.Option(min=1, help="samples (default: rewards.n)")] = None,
    workers: Annotated[int | None, typer.Option(help="threads (default: all cores)")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing --out")] = False,
) -> None:
    """Build reward samples (window, state, action, reward) from the configured source and save them."""
    from candleflow.config import load_config
    from candleflow.data.load import load_candles
    from candleflow.fs.guard import check_output
    from candleflow.rewards.samples import build_reward_samples, save_samples

    cfg = load_config(config, set_)
    _setup_logging(log_file=_log_file(cfg, "rewards"))
    check_output(out, overwrite)  # before the work: refuse early what save_samples would refuse
    rc = cfg.rewards
    count = rc.n if n is None else n
    candles, report = load_candles(cfg.source, cfg.validation, cfg.cache)
    t0 = time.perf_counter()
    with _bar("reward samples") as progress:
        task = progress.add_task("samples", total=count)
        samples = build_reward_samples(
            candles,
            count,
            rc.lookback,
            rc.forward,
            cfg.training.seed,
            rc,
            workers=workers,
            on_progress=lambda k: progress.advance(task, k),
        )
    built = time.perf_counter() - t0
    save_samples(samples, out, overwrite=overwrite)
    r, side = samples.reward, samples.action[:, 0]
    t = Table(title=f"{count:,} reward samples from {candles.symbol} {candles.interval} in {built:.2f}s")
    for col in ("action", "samples", "mean reward", "std", "min", "max"):
        t.add_column(col, justify="left" if col == "action" else "right")
    for name, mask in (("hold", side == 0), ("long", side > 0), ("short", side < 0), ("all", np.ones_like(side, bool))):
        x = r[mask]
        t.add_row(
            name,
            f"{x.size:,}",
            f"{x.mean():+.3e}" if x.size else "-",
            f"{x.std():.3e}" if x.size else "-",
            f"{x.min():+.3e}" if x.size else "-",
            f"{x.max():+.3e}" if x.size else "-",
        )
    console.print(t)
    console.print(f"written: {out} ({out.stat().st_size / 2**20:,.1f} MB); windows {samples.windows.shape} float32")


def metrics_table(m: dict, title: str) -> Table:
    """Model and baselines in one table: accuracy, balanced accuracy, macro F1, per-class recall."""
    t = Table(title=title)
    for col in ("predictor", "accuracy", "balanced acc", "macro F1", "recall SHORT", "recall HOLD", "recall LONG"):
        t.add_column(col, justify="left" if col == "predictor" else "right")
    for name, r in m["table"].items():
        pc = r["per_class"]
        t.add_row(
            name,
            f"{r['accuracy']:.3f}",
            f"{r['balanced_accuracy']:.3f}",
            f"{r['macro_f1']:.3f}",
            *(f"{pc[c]['recall']:.3f}" for c in ("SHORT", "HOLD", "LONG")),
            style="bold" if name == "model" else None,
        )
    t.caption = f"edge in balanced accuracy over the best baseline: {m['edge_balanced_accuracy'] * 100:+.1f} points"
    if "edge_over_reference" in m:
        edge = m["edge_over_reference"] * 100
        verdict = "; the model loses to it" if edge < 0 else ""
        t.caption += f"; over the best reference model ({m['best_reference']}): {edge:+.1f} points{verdict}"
    return t


def _fail(text: str, limit: int = 800) -> None:
    """One error line: control characters shown escaped (a hostile file's bytes cannot move the
    cursor or clear the screen), at most `limit` characters."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    shown = shown if len(shown) <= limit else shown[: limit - 3] + "..."
    err_console.print(f"error: {shown}", markup=False, highlight=False, soft_wrap=True)
    sys.exit(2)


def _usage_errors() -> tuple[type[Exception], ...]:
    """The exception types of bad options and arguments: typer's (it vendors click) and click's."""
    kinds: list[type[Exception]] = [k for k in (getattr(typer, "TyperException", None),) if k is not None]
    try:
        import click

        kinds.append(click.ClickException)
    except ImportError:
        pass
    return tuple(kinds)


def main() -> None:
    """Entry point: any error candleflow can explain is one line on stderr and exit code 2."""
    try:
        code = app(standalone_mode=False)
    except _usage_errors() as exc:  # a bad option or argument: the parser's message, on one line
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            console.print(ctx.get_help(), markup=False, highlight=False)
            sys.exit(0)
        if not hasattr(exc, "format_message"):
            raise
        where = f"{ctx.command_path}: " if ctx is not None else ""
        _fail(where + " ".join(exc.format_message().split()))
    except typer.Abort:
        err_console.print("interrupted", markup=False, highlight=False)
        sys.exit(130)
    except (CandleflowError, OSError) as exc:  # OSError: a file or folder we could not use
        # one line: the message, and a note such as "resume with: ..." on the same line
        notes = "; ".join(getattr(exc, "__notes__", []))
        text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
        _fail(text + (f" ({notes})" if notes else ""))
    except MemoryError:
        _fail("out of memory; use a smaller dataset.batch_size, window or data range")
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
