"""Several runs side by side (`candleflow compare`): their key metrics and the config keys
whose values differ, as rows or a page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from candleflow.config import flatten_keys
from candleflow.runs.folder import RunFolder
from candleflow.runs.page import h, render_page, table


def compare_rows(run_dirs: list[Path]) -> tuple[list[str], list[list[Any]]]:
    """Key metrics of several runs side by side, and the config keys whose values differ."""
    metas, mets, cfgs = [], [], []
    for d in run_dirs:
        metas.append(RunFolder(d).metadata())
        mets.append(RunFolder(d).metrics().get("val", {}))
        cfgs.append(flatten_keys(yaml.safe_load((d / RunFolder.CONFIG).read_text())))
    rows: list[list[Any]] = []

    def row(name: str, values: list[Any]) -> None:
        rows.append([name, *values])

    row("data", [f"{m['symbol']} {m['interval']}" for m in metas])
    row("parameters", [m["parameters"] for m in metas])
    row("epochs", [m["epochs_run"] for m in metas])
    model_keys: tuple[str, ...] = ("accuracy", "balanced_accuracy", "macro_f1")
    if any(m.get("target_task") == "regress" for m in metas):  # regression targets compare on their own figures
        model_keys = ("r2", "ic", "rank_ic", "qlike")
        row("gain_r2", [m.get("gain_r2") for m in mets])
        row("best_baseline", [m.get("best_baseline") for m in mets])
    for key in model_keys:
        row(key, [m.get("table", {}).get("model", {}).get(key) for m in mets])
    if "balanced_accuracy" in model_keys:
        row("edge_balanced_accuracy", [m.get("edge_balanced_accuracy") for m in mets])
    for key in ("total_return", "sharpe", "max_drawdown", "trades", "hit_rate"):
        row(f"backtest {key}", [m.get("trading", {}).get("table", {}).get("model", {}).get(key) for m in mets])
    keys = sorted(set().union(*cfgs))
    for k in keys:
        vals = [c.get(k) for c in cfgs]
        if any(v != vals[0] for v in vals):
            row(f"config {k}", [json.dumps(v) if isinstance(v, (list, dict)) else v for v in vals])
    return [d.name for d in run_dirs], rows


def compare_html(run_dirs: list[Path]) -> str:
    """The runs' key metrics and differing config keys side by side, as a page."""
    names, rows = compare_rows(run_dirs)
    return render_page("candleflow compare", [h("<h1>runs compared</h1>"), table(rows, ["", *names], "compare")], {})
