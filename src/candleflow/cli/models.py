"""`candleflow models list` and `models show`: the run folders as a registry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from candleflow.cli.common import RunsOpt, console, models_app, plain, printable
from candleflow.cli.present import period_table
from candleflow.config import LAYOUT_RULES
from candleflow.errors import RegistryError
from candleflow.runs.folder import RunFolder


@models_app.command("list")
def models_list(
    runs_dir: RunsOpt = Path("runs"),
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="only runs carrying this tag (output.tags); repeat: all of them")
    ] = None,
) -> None:
    """List complete runs, oldest first, with their tags."""
    from candleflow.runs.registry import list_runs

    runs = list_runs(runs_dir)
    if tag:
        runs = [m for m in runs if "damaged" in m or set(tag) <= set(_tags(m))]
    if not runs:
        wanted = f" tagged {', '.join(tag)}" if tag else ""
        console.print(f"no runs{wanted} in {runs_dir}/ yet; start one with `candleflow run`")
        return
    t = Table(title=f"runs in {runs_dir}/" + (f" tagged {', '.join(tag)}" if tag else ""))
    for col in ("run", "created", "data", "input", "params", "val bal. acc", "edge", "tags"):
        t.add_column(col)
    damaged = []
    for m in runs:
        try:
            row = _run_row(m) if "damaged" not in m else None
        except (AttributeError, TypeError, ValueError, KeyError):
            row, m["damaged"] = None, f"{Path(m['path']).name}/metadata.json: unexpected content"
        if row is None:
            damaged.append(m["damaged"])
            t.add_row(plain(Path(m["path"]).name), "damaged", *["-"] * 6, style="red")
        else:
            t.add_row(*(plain(cell) for cell in row))
    console.print(t)
    for line in damaged:
        console.print(f"damaged: {printable(line)}", highlight=False, markup=False)


def _run_row(m: dict) -> list[str]:
    val = m.get("metrics", {}).get("val", {})
    rules = LAYOUT_RULES.get(str(m.get("layout")))
    if rules is not None and not rules.family:  # a reward model
        score, edge = f"R^2 {val.get('r2', float('nan')):.3f}", f"{val.get('edge_r2', float('nan')):+.3f}"
    elif m.get("target_task") == "regress":  # R^2 and its gain over the baseline to beat
        r2, gain = val.get("r2"), val.get("gain_r2")
        score = "R^2 -" if r2 is None else f"R^2 {r2:.3f}"
        edge = "-" if gain is None else f"{gain:+.3f} vs {val.get('best_baseline')}"
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
        ", ".join(_tags(m)),
    ]


def _tags(meta: dict) -> list[str]:
    """A run's tags as strings (an edited metadata.json may hold anything there)."""
    tags = meta.get("tags")
    return [str(t) for t in tags] if isinstance(tags, list) else ([] if tags is None else [str(tags)])


@models_app.command("show")
def models_show(
    run: Annotated[str, typer.Argument(help="run folder name, path, or 'latest'")], runs_dir: RunsOpt = Path("runs")
) -> None:
    """Show a run's metadata and its metrics table."""
    from candleflow.runs.registry import check_run, read_metadata, resolve_run

    path = resolve_run(run, runs_dir)
    meta = read_metadata(path)
    check_run(path, meta)  # the model file is the one the run wrote, the metadata as written
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
        console.print(f"  {key}: {printable(meta.get(key))}", markup=False, highlight=False)
    for part, m in metrics.items():
        try:
            console.print(period_table(meta, part, m))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # an edited or foreign metrics.json
            raise RegistryError(
                f"{path / RunFolder.METRICS}: period {part!r} is not a metrics table ({type(exc).__name__}: {exc})"
            ) from None
