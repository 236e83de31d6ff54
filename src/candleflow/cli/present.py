"""How results look on the console: the metrics and backtest tables of a run of each layout, the
reward table. Every function takes a result (or a metrics dict) and prints; none computes."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from candleflow.cli.common import console
from candleflow.runs.verdict import training_summary


def print_result(result) -> None:
    """A finished run, by its layout (series, universe, panel, reward): never guessed from its keys."""
    meta = result.metadata
    if meta.get("target_task") == "regress":  # a regression target: the verdict, then the tables
        print_regression(result)
        return
    if result.layout == "reward":
        console.print(reward_table(result.metrics["val"]))
    else:
        from candleflow.runs.verdict import classifier_verdict

        console.print(classifier_verdict(result.metrics), style="bold", highlight=False)
        for part, m in result.metrics.items():
            what = "(window, ticker) labels" if result.layout == "panel" else "windows"
            when = f", {m['period']['from']} .. {m['period']['to']}" if "period" in m else ""
            console.print(metrics_table(m, title=f"{part} period: {m['n']:,} {what}{when}"))
            print_warnings(part, m)
    console.print(
        f"peak resident memory {meta['peak_rss_mb']:.0f} MB; {training_summary(meta)}; run took {meta['seconds']:.0f}s"
    )
    if result.layout == "reward":
        console.print(f"run folder: {result.run_dir}")
        return
    if result.layout == "panel":  # every ticker side by side
        print_panel(result)
        return
    if result.layout == "universe":  # one model over many series
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
    print_refit(meta)
    console.print(f"run folder: {result.run_dir}{_report_said(result.run_dir)}")


def print_warnings(part: str, m: dict) -> None:
    """A period's warnings (decisions all one class and why, too few windows), one line each."""
    for line in m.get("warnings", []):
        console.print(f"warning, {part} period: {line}", style="yellow", highlight=False)


def regression_table(m: dict, title: str) -> Table:
    """One period's regression table: the model, the reference models, the baselines."""
    from candleflow.runs.regression_report import columns

    # the R^2 variants stay in metrics.json and the report: the console table fits a terminal
    cols = tuple(c for c in columns(m["target"]) if c not in ("r2_train_mean", "r2_prevailing_mean"))
    t = Table(title=title)
    t.add_column("predictor")
    for c in cols:
        t.add_column(c.replace("_", " "), justify="right")
    for name, r in m["table"].items():
        cells = ["-" if r.get(c) is None else (f"{r[c]:,}" if isinstance(r[c], int) else f"{r[c]:.4f}") for c in cols]
        t.add_row(name, *cells, style="bold" if name in ("model", m["best_baseline"]) else None)
    gain = "undefined" if m["gain_r2"] is None else f"{m['gain_r2']:+.4f}"
    t.caption = (
        f"the model's R^2 over {m['best_baseline']} (the baseline to beat, the smallest validation MSE): {gain}; "
        "ratios: the loss over the baseline to beat's; dm t: Diebold-Mariano, positive where the model's loss is smaller; "
        "R^2 against the training and prevailing means: metrics.json and the report"
    )
    return t


def print_regression(result) -> None:
    """A regression run: the verdict line first, each period's table, the run's figures."""
    from candleflow.runs.regression_report import verdict

    meta = result.metadata
    if result.layout in ("universe", "panel"):  # learnt across assets: the cross-section's verdict leads
        cross = {part: m["cross_section"] for part, m in result.metrics.items()}
        from candleflow.cli.present_pooled import print_cross_section

        print_cross_section(result.metrics["val"]["target"], cross)
    console.print(verdict(result.metrics), style="bold")
    for part, m in result.metrics.items():
        when = f", {m['period']['from']} .. {m['period']['to']}" if "period" in m else ""
        what = "every window pooled, " if result.layout in ("universe", "panel") else ""
        console.print(
            regression_table(m, f"{part} period ({what}{m['windows']:,} windows{when}), target {m['target']}")
        )
    console.print(
        f"peak resident memory {meta['peak_rss_mb']:.0f} MB; {training_summary(meta)}; run took {meta['seconds']:.0f}s"
    )
    print_refit(meta)
    console.print(f"run folder: {result.run_dir}{_report_said(result.run_dir)}")


def print_refit(meta: dict) -> None:
    """One line on the production model, where the run trained one (training.refit)."""
    refit = meta.get("refit")
    if refit:
        what = f"{refit['epochs']} epochs" if "epochs" in refit else f"{refit.get('rounds')} boosting rounds"
        console.print(
            f"refit: the production model trained on all {refit['windows']:,} labelled windows to {refit['to']} "
            f"({what}, {refit['seconds']:.0f}s); predict uses it (--model validated for the one scored above)"
        )


def print_panel(result) -> None:
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
        if "cross_section_ic" in m:
            t = Table(title=f"cross-sectional IC, {part} period (score P(LONG) - P(SHORT) against forward returns)")
            for col in ("predictor", "times", "IC", "ICIR", "rank IC", "rank ICIR", "top - bottom third"):
                t.add_column(col, justify="left" if col == "predictor" else "right")
            num = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
            for name, r in m["cross_section_ic"].items():
                t.add_row(
                    name,
                    f"{r['times']:,}",
                    num(r["ic"], "+.4f"),
                    num(r["icir"], "+.3f"),
                    num(r["rank_ic"], "+.4f"),
                    num(r["rank_icir"], "+.3f"),
                    num(r["top_minus_bottom"], "+.5f"),
                    style="bold" if name == "model" else None,
                )
            console.print(t)
    console.print(f"run folder: {result.run_dir}")


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


def print_signals(
    table, run: str, what: str, layout: str, score: dict | None, out: str | None, regress: bool = False
) -> None:
    """predict's last rows (the last 10 bars; for a panel, the tickers at the last time ranked),
    the score against the run's labels where known, and the latest decision(s); a regression
    run's (`regress`) forecasts instead."""
    if regress:
        print_forecasts(table, run, what, score, out)
        return
    panel = layout == "panel"
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


def _report_said(run_dir: Path) -> str:
    """' (report: RUN/report.html)', or how to write it when the run skipped it (output.report)."""
    page = run_dir / "report.html"
    return f" (report: {page})" if page.is_file() else f" (no report: candleflow report {run_dir} writes it)"


def print_study(result) -> None:
    """A finished walk-forward study: the verdict and the families' table (regression), or the
    accuracy and trading tables (classes); then where its folder and report are."""
    s = result.summary
    if s.get("kind") == "pooled":
        from candleflow.cli.present_pooled import print_pooled_study

        print_pooled_study(s)
    elif s.get("target_task") == "regress":
        _print_regression_study(s)
    else:
        _print_class_study(s)
    page = result.folder / "report.html"
    console.print(f"folder: {result.folder}" + (f" (report: {page})" if page.is_file() else ""))


def _print_regression_study(s: dict) -> None:
    from candleflow.runs.walkforward_report import REGRESSION_HEADER, regression_family_rows, regression_verdict

    st = s["stitched"]
    console.print(regression_verdict(s), style="bold")
    t = Table(
        title=f"walk-forward {s['symbol']} {s['interval']}, target {s['target']}: {len(s['folds'])} folds x "
        f"{len(s['seeds'])} seeds, {st['windows']:,} out-of-sample windows {st['from']} .. {st['to']}"
    )
    for col in REGRESSION_HEADER:
        t.add_column(col, justify="left" if col == "predictor" else "right")
    for row in regression_family_rows(s):
        t.add_row(*row)
    t.caption = f"gains in R^2 over {s['best_baseline']}, 95% block-bootstrap intervals: one that covers 0 is noise"
    console.print(t)


def _print_class_study(s: dict) -> None:
    from candleflow.runs.walkforward_report import FAMILY_HEADER, family_rows

    st = s["stitched"]
    t = Table(
        title=f"walk-forward {s['symbol']} {s['interval']}: {len(s['folds'])} folds x {len(s['seeds'])} seeds, "
        f"{st['windows']:,} out-of-sample windows {st['from']} .. {st['to']}"
    )
    rows = family_rows(s)
    trading = {"Sharpe", "return", "trades", "hit rate", "avg win / loss", "turnover / yr", "costs / gross"}
    accuracy_cols = [k for k, c in enumerate(FAMILY_HEADER) if c not in trading]
    trading_cols = [0] + [k for k, c in enumerate(FAMILY_HEADER) if c in trading]
    for k in accuracy_cols:
        t.add_column(FAMILY_HEADER[k], justify="left" if k == 0 else "right")
    for row in rows:
        t.add_row(*[str(row[k]) for k in accuracy_cols])
    t.caption = (
        f"best baseline balanced accuracy {max(s['baselines'].values()):.4f}; edges in points with block-bootstrap "
        "95% CIs: a CI that covers 0 is noise"
    )
    console.print(t)
    bt = Table(title=f"the stitched signals traded (decision rule: {s.get('objective', '-')})")
    for k in trading_cols:
        bt.add_column(FAMILY_HEADER[k], justify="left" if k == 0 else "right")
    for row in rows:
        bt.add_row(*[str(row[k]) for k in trading_cols])
    bt.caption = f"buy and hold: Sharpe {s['buy_and_hold']['sharpe']:.2f}, return {s['buy_and_hold']['total_return'] * 100:+.1f}%"
    console.print(bt)
