"""Commands that build data: prepare (one series or a store of many), inspect, images, rewards.
Each parses its options, calls the library and prints."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from candleflow.cli.common import ConfigOpt, SetOpt, app, bar, console, log_file_for, setup_logging


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
    setup_logging(verbose=not as_json, log_file=log_file_for(cfg, "prepare"))
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
    console.print(_split_table(summary["split"], cfg.labels.regression))


def _split_table(split: dict, regression: bool) -> Table:
    """The split's parts: windows, purge, first and last window end, and the class counts (or a
    regression target's mean, standard deviation and quartiles)."""
    stats = ("mean", "std", "p25", "median", "p75") if regression else ("SHORT", "HOLD", "LONG")
    t = Table(title="split (chronological, purged)" + (", target per part" if regression else ""))
    for col in ("part", "windows", "purged", "first end", "last end", *stats):
        t.add_column(col, justify="right" if col not in ("part", "first end", "last end") else "left")
    for part, p in split.items():
        values = p.get("target") or {} if regression else p["classes"]
        cells = (
            [f"{values[k]:+.4f}" if k in values else "-" for k in stats]
            if regression
            else [f"{values[k]:,}" for k in stats]
        )
        t.add_row(part, f"{p['windows']:,}", str(p["purged"]), str(p["first_end"]), str(p["last_end"]), *cells)
    return t


def _prepare_store(cfg, force: bool, as_json: bool) -> None:
    from candleflow.scale.cluster import build_store, plan_tasks
    from candleflow.scale.store import SeriesStore

    store = SeriesStore.for_config(cfg)  # a bad URL is reported before any work starts
    n = len(plan_tasks(cfg))
    with bar("prepare", transient=False, disable=as_json) as progress:
        task = progress.add_task("entries", total=n)
        report = build_store(cfg, force=force, on_done=lambda name, rec, err: progress.advance(task))
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
    batches: Annotated[
        int, typer.Option("--batches", min=0, max=10_000, help="also self-test N shuffled batches per part")
    ] = 0,
    memory: Annotated[
        bool, typer.Option("--memory", help="also the memory account: cache, dataset, model and optimizer")
    ] = False,
) -> None:
    """Check the prepared data: shapes, dtypes, class balance per split, NaN/inf, one-hot, memory;
    with --batches N, the generator self-test with its rating."""
    from candleflow.config import load_config
    from candleflow.dataset.inspect import inspect_dataset
    from candleflow.dataset.prepare import prepare as prepare_data

    cfg = load_config(config, set_)
    setup_logging(verbose=not as_json, log_file=log_file_for(cfg, "inspect"))
    prep = prepare_data(cfg)
    report = inspect_dataset(prep, batches=batches)
    if memory:
        from candleflow.models.families import build_model
        from candleflow.models.memory import memory_usage

        model = build_model(cfg, prep.dataset.subset(prep.split.parts["train"]), prep)
        report["memory_account"] = memory_usage(prep.dataset, model, cfg.dataset.cache_dir)
    if as_json:
        console.print_json(json.dumps(report))
    else:
        f, m = report["features"], report["memory"]
        console.print(
            f"features {tuple(f['shape'])} {f['dtype']}{' (memory-mapped)' if f['memory_mapped'] else ''}; "
            f"{report['windows']:,} windows of {tuple(report['window_shape'])}; labels "
            f"{report['labels']['kind']} {report['labels']['dtype']}"
        )
        console.print(_inspect_table(report["split"], report["labels"]["task"] == "regress"))
        console.print(
            f"memory: {m['resident_mb']:,} MB resident; features {m['features_mb']:,} MB; materialised "
            f"windows would take {m['materialised_windows_mb']:,} MB ({m['saving']} the features)"
        )
        if "memory_account" in report:
            a = report["memory_account"]
            console.print(
                f"memory account: cache {a['cache_mb']:.1f} MB, dataset {a['dataset_mb']:.1f} MB, model "
                f"{a['model_mb']:.2f} MB, optimizer {a['optimizer_mb']:.2f} MB; total {a['total_mb']:.1f} MB "
                f"(resident {a['resident_mb']:.0f} MB, the runtime included)"
            )
        if "generator" in report:
            g = report["generator"]
            console.print(
                f"generator: {g['batches']} batches of {g['batch_size']}, {g['mean_batch_ms']:.2f} ms a batch, "
                f"resident memory {g['rss_growth_mb']:+.1f} MB over them; rating: {g['rating']}"
            )
        labels = "finite targets" if report["labels"]["dtype"].startswith("float") else "one-hot labels"
        for line in report["problems"] or [f"all checks passed: finite windows, {labels}, no look-ahead across splits"]:
            console.print(("problem: " if report["problems"] else "") + line)
    if report["problems"]:
        raise typer.Exit(1)


def _inspect_table(split: dict, regression: bool) -> Table:
    """Each part's class shares (or its target's mean and quartiles) and the shapes of a real batch."""
    stats = ("mean", "std", "median") if regression else ("SHORT", "HOLD", "LONG")
    what = "the target's spread" if regression else "class balance"
    t = Table(title=f"split: {what} and a real batch of each part")
    for col in ("part", "windows", "purged", *stats, "batch x", "batch y"):
        t.add_column(col, justify="left" if col in ("part", "batch x", "batch y") else "right")
    for part, p in split.items():
        if regression:
            cells = [f"{p['target'][k]:+.4f}" if k in p["target"] else "-" for k in stats]
        else:
            cells = [f"{p['class_share'][k]:.1%}" for k in stats]
        batch = p.get("batch", {})
        t.add_row(part, f"{p['windows']:,}", str(p["purged"]), *cells, batch.get("x", "-"), batch.get("y", "-"))
    return t


@app.command()
def images(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="hdf5, npz, zarr, png or jpeg (default: images.format)")
    ] = None,
    layout: Annotated[str | None, typer.Option(help="bar4 or jkx (default: images.layout)")] = None,
    out: Annotated[
        str | None, typer.Option("--out", "-o", help="file (hdf5/npz) or folder, a local path (default: images.out)")
    ] = None,
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
    from candleflow.fs.guard import local_path
    from candleflow.images.write import write_image_dataset

    shortcuts = {"format": fmt, "layout": layout, "mode": mode, "images_per_file": images_per_file}
    overrides = list(set_ or []) + [f"images.{k}={v}" for k, v in shortcuts.items() if v is not None]
    cfg = load_config(config, overrides)
    target = local_path(out if out is not None else cfg.images.out, "--out" if out is not None else "images.out")
    setup_logging(log_file=log_file_for(cfg, "images"))
    prep = prepare_data(cfg)
    with bar(f"render {cfg.images.layout}") as progress:
        task = progress.add_task("images", total=None)
        res = write_image_dataset(
            prep,
            cfg.images,
            target,
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
def rewards(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    out: Annotated[
        str, typer.Option("--out", "-o", help=".parquet, .npz or .zarr (a local path), written as the samples are made")
    ] = "reward_samples.parquet",
    n: Annotated[int | None, typer.Option(min=1, help="samples (default: rewards.n)")] = None,
    workers: Annotated[int | None, typer.Option(help="threads (default: all cores)")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing --out")] = False,
) -> None:
    """Build reward samples (window, state, action, reward) from the configured source and save them."""
    from candleflow.config import load_config
    from candleflow.data.load import load_candles
    from candleflow.fs.guard import check_output, local_path
    from candleflow.rewards.samples import reward_statistics, stream_reward_samples

    target = local_path(out)
    cfg = load_config(config, set_)
    setup_logging(log_file=log_file_for(cfg, "rewards"))
    check_output(target, overwrite)  # before the work: refuse early what save_samples would refuse
    rc = cfg.rewards
    count = rc.n if n is None else n
    candles, report = load_candles(cfg.source, cfg.validation, cfg.cache)
    t0 = time.perf_counter()
    with bar("reward samples") as progress:
        task = progress.add_task("samples", total=count)
        _, reward, side = stream_reward_samples(  # written as they are made: memory holds a few chunks
            candles,
            count,
            target,
            rc.lookback,
            rc.forward,
            cfg.training.seed,
            rc,
            workers=workers,
            overwrite=overwrite,
            on_progress=lambda k: progress.advance(task, k),
        )
    built = time.perf_counter() - t0
    t = Table(title=f"{count:,} reward samples from {candles.symbol} {candles.interval} in {built:.2f}s (written)")
    for col in ("action", "samples", "mean reward", "std", "min", "max"):
        t.add_column(col, justify="left" if col == "action" else "right")
    for name, st in reward_statistics(reward, side[:, None]).items():
        t.add_row(
            name,
            f"{st['samples']:,}",
            *(
                "-" if st[k] is None else f"{st[k]:{'+' if k != 'std' else ''}.3e}"
                for k in ("mean", "std", "min", "max")
            ),
        )
    console.print(t)
    size = sum(p.stat().st_size for p in ([target] if target.is_file() else target.rglob("*")) if p.is_file())
    console.print(f"written: {target} ({size / 2**20:,.1f} MB); windows ({count:,}, {rc.lookback}, 5) float32")
