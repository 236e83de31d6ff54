"""How results look on the console: the metrics and backtest tables of a run of each layout, the
reward table. Every function takes a result (or a metrics dict) and prints; none computes."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from candleflow.cli.common import console
from candleflow.config import layout_rules
from candleflow.runs.verdict import training_summary


def print_result(result) -> None:
    """A finished run, by its target's task and its layout (metadata): never guessed from its keys."""
    if result.metadata.get("target_task") == "regress":  # a regression target: the verdict, then the tables
        print_regression(result)
        return
    CLASS_PRINTERS[result.layout](result)


def _run_figures(result) -> None:
    meta = result.metadata
    console.print(
        f"peak resident memory {meta['peak_rss_mb']:.0f} MB; {training_summary(meta)}; run took {meta['seconds']:.0f}s"
    )


def _print_reward(result) -> None:
    console.print(reward_table(result.metrics["val"]))
    _run_figures(result)
    console.print(f"run folder: {result.run_dir}")


def _print_classes(result) -> None:
    """The verdict and each period's table of the decisions against the baselines."""
    from candleflow.runs.verdict import classifier_verdict

    console.print(classifier_verdict(result.metrics), style="bold", highlight=False)
    what = layout_rules(result.layout).labels
    for part, m in result.metrics.items():
        when = f", {m['period']['from']} .. {m['period']['to']}" if "period" in m else ""
        console.print(metrics_table(m, title=f"{part} period: {m['n']:,} {what}{when}"))
        print_warnings(part, m)
    _run_figures(result)


def _print_universe(result) -> None:
    """One model over many series: the decisions' accuracy per series."""
    _print_classes(result)
    t = Table(title="validation period, per series (the model's decisions)")
    for col in ("series", "windows", "accuracy"):
        t.add_column(col, justify="left" if col == "series" else "right")
    for name, r in result.metrics["val"]["series"].items():
        t.add_row(name, f"{r['windows']:,}", f"{r['accuracy']:.2%}")
    console.print(t)
    console.print(f"run folder: {result.run_dir}")


def _print_series(result) -> None:
    """One series: the tables, then the backtest of every evaluated period, the refit."""
    _print_classes(result)
    for part, m in result.metrics.items():  # every evaluated period: validation, and test when there is one
        console.print(backtest_table(part, m["trading"]))
    print_refit(result.metadata)
    console.print(f"run folder: {result.run_dir}{_report_said(result.run_dir)}")


def backtest_table(part: str, tr: dict) -> Table:
    """One period's backtest of the decisions: the model, its legs and costs, the baselines."""
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
    return t


def period_table(meta: dict, part: str, m: dict) -> Table:
    """One period's table of a run, by its layout and target task (metadata.json): a reward
    model's, a regression's, or the decisions' against the baselines."""
    rules = layout_rules(str(meta.get("layout")))
    if not rules.family:
        return reward_table(m)
    if meta.get("target_task") == "regress":
        return regression_table(m, f"{part} period: {m['windows']:,} windows, target {m['target']}")
    return metrics_table(m, title=f"{part} period: {m['n']:,} {rules.labels}")


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
    across = layout_rules(result.layout).across_assets
    if across:  # learnt across assets: the cross-section's verdict leads
        cross = {part: m["cross_section"] for part, m in result.metrics.items()}
        from candleflow.cli.present_pooled import print_cross_section

        print_cross_section(result.metrics["val"]["target"], cross)
    console.print(verdict(result.metrics), style="bold")
    for part, m in result.metrics.items():
        when = f", {m['period']['from']} .. {m['period']['to']}" if "period" in m else ""
        what = "every window pooled, " if across else ""
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
    _print_classes(result)
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


# how a classifier run of each layout is shown (RunResult.layout, metadata's layout)
CLASS_PRINTERS = {"series": _print_series, "universe": _print_universe, "panel": print_panel, "reward": _print_reward}


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
