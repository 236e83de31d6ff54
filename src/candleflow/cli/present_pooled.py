"""How a pooled run (one model over a universe's assets, or a regressing panel) looks on the
console: each period's cross-section table, the latest time's forecasts ranked, and a pooled
walk-forward's table."""

from __future__ import annotations

from rich.table import Table

from candleflow.cli.common import console


def print_cross_section(kind: str, cross: dict) -> None:
    """A pooled run's cross-section tables (each period's): the verdict against the baseline to
    beat, then every forecast's daily rank IC, books or per-asset losses."""
    from candleflow.runs.pooled_tables import pooled_header, pooled_rows, pooled_verdict

    for part, cs in cross.items():
        console.print(f"{part}: " + pooled_verdict(kind, cs["table"], cs["best_baseline"], ["model"]), style="bold")
        t = Table(title=f"{part} period across the assets: {cs['assets']} assets at {cs['times']:,} times")
        header = [c for c in pooled_header(kind) if c != "95% CI (folds)"]
        for col in header:
            t.add_column(col, justify="left" if col == "predictor" else "right")
        for row in pooled_rows(kind, cs["table"]):
            t.add_row(*[v for c, v in zip(pooled_header(kind), row, strict=True) if c != "95% CI (folds)"])
        t.caption = (
            f"baseline to beat: {cs['best_baseline']} (chosen on {cs['best_baseline_chosen_on']}); costs "
            f"{cs['cost_per_side'] * 1e4:.0f} bps per side"
        )
        console.print(t)


def print_ranked_forecasts(table, run: str, what: str, out: str | None) -> None:
    """A pooled or panel run's forecasts at the latest time: the five assets ranked highest and
    the five lowest (the new period's daily rank IC is among the notes printed after)."""
    from candleflow.runs.pooled_predict import latest_ranked

    name = "asset" if "asset" in table.column_names else "ticker"
    rows = latest_ranked(table)
    t = Table(
        title=f"{run} on {what}: {table.num_rows:,} (time, {name}) rows; the latest time, "
        f"{str(rows[0]['open_time'])[:19] if rows else '-'}, ranked"
    )
    for col in (name, "forecast", "rank", "realised"):
        t.add_column(col, justify="left" if col == name else "right")
    shown = rows if len(rows) <= 10 else [*rows[:5], None, *rows[-5:]]
    for r in shown:
        if r is None:
            t.add_row("...", "", "", "")
            continue
        realised = "-" if r.get("realised") is None else f"{r['realised']:+.5f}"
        t.add_row(str(r[name]), f"{r['forecast']:+.5f}", f"{r['rank']:.3f}", realised)
    console.print(t)
    if out:
        console.print(f"written: {out}")


def print_pooled_study(s: dict) -> None:
    from candleflow.runs.pooled_tables import pooled_header, pooled_rows, pooled_verdict

    console.print(pooled_verdict(s["target"], s["table"], s["best_baseline"], s["families"]), style="bold")
    t = Table(
        title=f"pooled walk-forward, target {s['target']} over {s['horizon']} bars: {s['assets']} assets, {s['folds']} "
        f"folds, {s['test_windows']:,} test windows at {s['test_times']:,} times"
    )
    for col in pooled_header(s["target"]):
        t.add_column(col, justify="left" if col == "predictor" else "right")
    for row in pooled_rows(s["target"], s["table"]):
        t.add_row(*row)
    t.caption = (
        f"baseline to beat: {s['best_baseline']} (chosen on the folds' validation windows); costs "
        f"{s['cost_per_side'] * 1e4:.0f} bps per side; CI (folds): random-effects over the folds' rank ICs"
    )
    console.print(t)


__all__ = ["print_cross_section", "print_pooled_study", "print_ranked_forecasts"]
