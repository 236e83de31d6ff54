"""The `candleflow` command: a thin layer over the Python API."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from .errors import CandleflowError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Exchange candles to leak-free datasets and trained, evaluated, versioned models.")
models_app = typer.Typer(no_args_is_help=True, help="List and inspect saved runs and their models.")
app.add_typer(models_app, name="models")
# wide enough for the metrics table when output goes to a file or a CI log
console = Console() if sys.stdout.isatty() else Console(width=120)
err_console = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, width=120)

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config; the embedded default when omitted")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", "-s", help="override a config key, e.g. --set labels.horizon=48")]
RunsOpt = Annotated[Path, typer.Option("--runs-dir", help="folder holding run folders")]


def _setup_logging(verbose: bool = False) -> None:
    log = logging.getLogger("candleflow")
    log.setLevel(logging.INFO)
    if not any(isinstance(h, RichHandler) for h in log.handlers):
        h = RichHandler(console=err_console, show_path=False, show_time=False, markup=False)
        h.setLevel(logging.INFO if verbose else logging.WARNING)
        h.addFilter(lambda record: record.name != "candleflow.epochs")
        log.addHandler(h)
    log.propagate = False


@app.command()
def run(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Train and evaluate a model end to end and save a run folder (embedded default: synthetic market)."""
    from .config import load_config
    from .pipeline import run as run_pipeline

    _setup_logging(verbose=True)
    cfg = load_config(config, set_)
    result = run_pipeline(cfg)
    meta = result.metadata
    for part, m in result.metrics.items():
        console.print(metrics_table(m, title=f"{part} period: {m['n']:,} windows"))
    console.print(f"parameters {meta['parameters']:,}; peak resident memory {meta['peak_rss_mb']:.0f} MB; "
                  f"{meta['epochs_run']} epochs in {meta['fit_seconds']:.0f}s; run took {meta['seconds']:.0f}s")
    console.print(f"run folder: [bold]{result.run_dir}[/bold]")


@app.command()
def prepare(config: ConfigOpt = None, set_: SetOpt = None,
            as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False) -> None:
    """Read the source, validate candles, compute features, labels, windows and split; no training."""
    from .config import load_config
    from .pipeline import prepare as prepare_data

    _setup_logging(verbose=not as_json)
    prep = prepare_data(load_config(config, set_))
    summary = prep.summary() | {"validation": prep.report.to_dict()}
    if as_json:
        console.print_json(json.dumps(summary))
        return
    console.print(f"[bold]{summary['symbol']} {summary['interval']}[/bold]: {summary['rows']:,} rows, "
                  f"{summary['segments']} segments, fingerprint {summary['fingerprint'][:16]}")
    console.print(f"validation: {prep.report.summary()}")
    console.print(f"features {tuple(summary['feature_shape'])} float32 ({summary['feature_mb']} MB); "
                  f"{summary['windows']:,} windows of {tuple(summary['window_shape'])} as views "
                  f"(a copy would take {summary['materialised_windows_mb']:,} MB)")
    t = Table(title="split (chronological, purged)")
    for col in ("part", "windows", "purged", "first end", "last end", "SHORT", "HOLD", "LONG"):
        t.add_column(col, justify="right" if col not in ("part", "first end", "last end") else "left")
    for part, p in summary["split"].items():
        c = p["classes"]
        t.add_row(part, f"{p['windows']:,}", str(p["purged"]), str(p["first_end"]), str(p["last_end"]),
                  f"{c['SHORT']:,}", f"{c['HOLD']:,}", f"{c['LONG']:,}")
    console.print(t)


@models_app.command("list")
def models_list(runs_dir: RunsOpt = Path("runs")) -> None:
    """List complete runs, oldest first."""
    from .registry import list_runs

    runs = list_runs(runs_dir)
    if not runs:
        console.print(f"no runs in {runs_dir}/ yet; start one with `candleflow run`")
        return
    t = Table(title=f"runs in {runs_dir}/")
    for col in ("run", "created", "data", "input", "params", "val bal. acc", "edge"):
        t.add_column(col)
    for m in runs:
        val = m.get("metrics", {}).get("val", {})
        t.add_row(Path(m["path"]).name, m.get("created", "")[:19], f"{m.get('symbol')} {m.get('interval')}",
                  "x".join(map(str, m.get("input_shape", []))), f"{m.get('parameters', 0):,}",
                  f"{val.get('balanced_accuracy', float('nan')):.3f}", f"{val.get('edge_balanced_accuracy', float('nan')):+.3f}")
    console.print(t)


@models_app.command("show")
def models_show(run: Annotated[str, typer.Argument(help="run folder name, path, or 'latest'")],
                runs_dir: RunsOpt = Path("runs")) -> None:
    """Show a run's metadata and its metrics table."""
    from .registry import read_metadata, resolve_run

    path = resolve_run(run, runs_dir)
    meta = read_metadata(path)
    metrics = json.loads((path / "metrics.json").read_text())
    console.print(f"[bold]{path}[/bold]")
    for key in ("created", "symbol", "interval", "data_fingerprint", "input_shape", "parameters", "epochs_run",
                "peak_rss_mb", "seconds", "versions"):
        console.print(f"  {key}: {meta.get(key)}")
    for part, m in metrics.items():
        console.print(metrics_table(m, title=f"{part} period: {m['n']:,} windows"))


def metrics_table(m: dict, title: str) -> Table:
    """Model and baselines in one table: accuracy, balanced accuracy, macro F1, per-class recall."""
    t = Table(title=title)
    for col in ("predictor", "accuracy", "balanced acc", "macro F1", "recall SHORT", "recall HOLD", "recall LONG"):
        t.add_column(col, justify="left" if col == "predictor" else "right")
    for name, r in m["table"].items():
        pc = r["per_class"]
        t.add_row(name, f"{r['accuracy']:.3f}", f"{r['balanced_accuracy']:.3f}", f"{r['macro_f1']:.3f}",
                  *(f"{pc[c]['recall']:.3f}" for c in ("SHORT", "HOLD", "LONG")),
                  style="bold" if name == "model" else None)
    t.caption = f"edge in balanced accuracy over the best baseline: {m['edge_balanced_accuracy'] * 100:+.1f} points"
    return t


def main() -> None:
    """Entry point: any error candleflow can explain is one line on stderr and exit code 2."""
    try:
        app()
    except (CandleflowError, FileExistsError, ValueError) as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
