"""How predict's rows look on the console: the latest decisions (or a regression's forecasts),
the score against the run's labels where known."""

from __future__ import annotations

from rich.table import Table

from candleflow.cli.common import console
from candleflow.config import layout_rules


def print_signals(
    table, run: str, what: str, layout: str, score: dict | None, out: str | None, regress: bool = False
) -> None:
    """predict's last rows (the last 10 bars; for a panel, the tickers at the last time ranked),
    the score against the run's labels where known, and the latest decision(s); a regression
    run's (`regress`) forecasts instead."""
    if regress:
        print_forecasts(table, run, what, score, out)
        return
    panel = layout_rules(layout).side_by_side
    n_tickers = len(set(table.column("ticker").to_pylist())) if panel else 1
    rows = table.slice(max(table.num_rows - (n_tickers if panel else 10), 0)).to_pylist()
    scored = table.num_rows // n_tickers
    t = Table(title=f"{run} on {what}: {scored:,} {'times x tickers' if panel else 'windows'} scored")
    cols = ("open time", *(("ticker", "rank") if panel else ()), "close", "P(SHORT)", "P(HOLD)", "P(LONG)", "decision")
    for col in cols:
        t.add_column(col, justify="left" if col in ("open time", "ticker", "decision") else "right")
    if panel:
        rows.sort(key=lambda r: (r["rank"] is None, r["rank"] or 0))
    for r in rows:
        absent = r["decision"] is None
        cells = [
            str(r["open_time"])[:19],
            *((r["ticker"], "-" if absent else str(r["rank"])) if panel else ()),
            "-" if r["close"] is None else f"{r['close']:,.2f}",
            *("-" if absent else f"{r[k]:.3f}" for k in ("prob_short", "prob_hold", "prob_long")),
            "absent" if absent else r["decision"],
        ]
        t.add_row(*cells, style="bold" if (not panel and r is rows[-1]) else None)
    console.print(t)
    if score is not None:
        console.print(
            f"against the run's labels on the {score['rows']:,} rows whose forward window is complete: balanced "
            f"accuracy {score['balanced_accuracy']:.4f}, macro F1 {score['macro_f1']:.4f} (chance: 0.3333)"
        )
    last = rows[-1] if not panel else rows[0]
    said = (
        f"latest bar {str(last['open_time'])[:19]}: {last['decision']}"
        if not panel
        else f"latest time {str(last['open_time'])[:19]}: "
        + ", ".join(f"{r['ticker']} {r['decision']}" for r in rows if r["decision"] is not None)
    )
    console.print(said + (f"; written: {out}" if out else ""))


def print_forecasts(table, run: str, what: str, score: dict | None, out: str | None) -> None:
    """A regression run's last 10 forecasts, their IC where realised, and the latest forecast;
    a pooled run's (one row per time and asset) latest time ranked instead."""
    if "rank" in table.column_names:
        from candleflow.cli.present_pooled import print_ranked_forecasts

        print_ranked_forecasts(table, run, what, out)
        return
    rows = table.slice(max(table.num_rows - 10, 0)).to_pylist()
    kind, h = rows[-1]["target"], rows[-1]["horizon"]
    t = Table(title=f"{run} on {what}: {table.num_rows:,} windows scored; {kind} over the next {h} bars")
    for col in ("open time", "close", "forecast", "realised"):
        t.add_column(col, justify="left" if col == "open time" else "right")
    for r in rows:
        t.add_row(
            str(r["open_time"])[:19],
            f"{r['close']:,.2f}",
            f"{r['forecast']:+.5f}",
            "-" if r["realised"] is None else f"{r['realised']:+.5f}",
            style="bold" if r is rows[-1] else None,
        )
    console.print(t)
    if score is not None:
        ic = "undefined" if score["ic"] != score["ic"] else f"{score['ic']:+.4f}"
        console.print(
            f"against the realised target on the {score['rows']:,} rows whose forward window is complete: IC {ic}"
        )
    from candleflow.dataset.targets import target

    spec = target(kind)
    said = f"latest bar {str(rows[-1]['open_time'])[:19]}: {spec.units or kind} forecast {rows[-1]['forecast']:+.5f}"
    if spec.plain is not None:
        said += f" ({spec.plain(float(rows[-1]['forecast']), int(h))})"
    console.print(said + (f"; written: {out}" if out else ""))
