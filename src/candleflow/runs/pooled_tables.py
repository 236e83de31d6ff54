"""The cross-section's tables in words and rows: one pooled period's (a run's `cross_section`
metrics) or a pooled walk-forward's, shared by the console, the docs' benchmarks and the report."""

from __future__ import annotations

from typing import Any

from candleflow.dataset.targets import target


def _f(v: Any, fmt: str = "+.4f") -> str:
    return "-" if v is None else format(v, fmt)


def pooled_header(kind: str) -> list[str]:
    """The columns of a cross-section table for the target `kind`."""
    if target(kind).trades_sign:
        return [
            "predictor",
            "rank IC",
            "95% CI (folds)",
            "NW t",
            "rank ICIR",
            "IC",
            "Q5 L-S net",
            "Q5 t",
            "turnover",
            "top-k excess",
        ]
    return [
        "predictor",
        "MSE",
        "QLIKE",
        "R2 (train mean)",
        "R2 (period mean)",
        "median asset R2",
        "rank IC",
        "95% CI (folds)",
    ]


def pooled_rows(kind: str, table: dict[str, dict[str, Any]]) -> list[list[str]]:
    """One row per forecast in `table` (families first, then the baselines)."""
    rows = []
    for name, r in table.items():
        ci = r.get("rank_ic_ci95")
        ci_s = "-" if not ci else f"[{ci[0]:+.4f}, {ci[1]:+.4f}]"
        if target(kind).trades_sign:
            q5, topk = r.get("book_q5") or {}, r.get("topk") or {}
            rows.append(
                [
                    name,
                    _f(r.get("rank_ic")),
                    ci_s,
                    _f(r.get("rank_ic_t_nw"), "+.2f"),
                    _f(r.get("rank_icir"), "+.3f"),
                    _f(r.get("ic")),
                    _f(q5.get("net"), "+.5f"),
                    _f(q5.get("t"), "+.2f"),
                    _f(q5.get("turnover"), ".2f"),
                    _f(topk.get("net"), "+.5f"),
                ]
            )
        else:
            rows.append(
                [
                    name,
                    _f(r.get("mse"), ".5f"),
                    _f(r.get("qlike"), ".5f"),
                    _f(r.get("r2_train_mean")),
                    _f(r.get("r2_period_mean")),
                    _f(r.get("r2_median_asset")),
                    _f(r.get("rank_ic")),
                    ci_s,
                ]
            )
    return rows


def pooled_verdict(kind: str, table: dict[str, dict[str, Any]], best: str, models: list[str]) -> str:
    """The first line: the best model against the cross-section's baseline to beat."""
    b = table[best]
    if target(kind).trades_sign:
        top = max(models, key=lambda m: table[m].get("rank_ic") or -1.0)
        d = table[top].get("vs_best_rank_ic") or {}
        ci = d.get("ci95")
        ahead = ci is not None and ci[0] > 0
        return (
            f"{top} {'beats' if ahead else 'does not beat'} {best} across the assets: daily rank IC "
            f"{_f(table[top].get('rank_ic'))} against {_f(b.get('rank_ic'))}, difference {_f(d.get('mean'))} "
            f"(Newey-West t {_f(d.get('t'), '+.2f')}"
            + (f", 95% CI [{ci[0]:+.4f}, {ci[1]:+.4f}])" if ci else ")")
            + f"; Q5 long-short after costs {_f((table[top].get('book_q5') or {}).get('net'), '+.5f')} a period"
        )
    top = min(models, key=lambda m: table[m].get("mse") or float("inf"))
    parts = []
    for loss in target(kind).losses:
        d = table[top].get(f"vs_best_{loss}") or {}
        ratio = (table[top].get(loss) or 0) / b[loss] if b.get(loss) else None
        ci = d.get("ci95")
        parts.append(
            f"{loss.upper()} x{_f(ratio, '.3f')} (t {_f(d.get('t'), '+.2f')}"
            + (f", difference CI [{ci[0]:+.5f}, {ci[1]:+.5f}])" if ci else ")")
        )
    wins = all(((table[top].get(f"vs_best_{x}") or {}).get("ci95") or [0, 0])[0] > 0 for x in target(kind).losses)
    return f"{top} {'beats' if wins else 'does not beat'} {best} on every loss: " + "; ".join(parts)


def cross_section_html(metrics: dict[str, Any], preds: dict[str, dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    """A pooled run's report sections (each period's cross-section verdict and table) and figures
    (the model's cumulative daily rank IC across the assets)."""
    from candleflow.evaluation.pooled import daily_ic
    from candleflow.runs import plots
    from candleflow.runs.page import h, img, table

    sections: list[Any] = []
    figures: list[Any] = []
    for part, m in metrics.items():
        cs = m.get("cross_section")
        if not cs:
            continue
        kind = m["target"]
        sections.append(
            h("<h2>{} period across the assets: {} assets at {} times</h2>", part, cs["assets"], cs["times"])
        )
        sections.append(
            h("<p class='verdict'><b>{}</b></p>", pooled_verdict(kind, cs["table"], cs["best_baseline"], ["model"]))
        )
        header = [c for c in pooled_header(kind) if c != "95% CI (folds)"]
        keep = [i for i, c in enumerate(pooled_header(kind)) if c != "95% CI (folds)"]
        rows = [[row[i] for i in keep] for row in pooled_rows(kind, cs["table"])]
        sections.append(table(rows, header, "metrics"))
        p = preds.get(part, {})
        if "times" in p and "forecast" in p:
            d = daily_ic(p["times"], p["y"], p["forecast"])
            figures.append(
                img(
                    plots.cumulative_rank_ic(d["times"], d["rank_ic"], f"{part}: the model's daily rank IC, summed"),
                    part,
                )
            )
    return sections, figures


def write_pooled_walkforward_report(folder: Any, summary: dict[str, Any]) -> Any:
    """folder/report.html of a pooled walk-forward study: the verdict against the cross-section's
    baseline to beat, and every family's and baseline's figures on the stitched test stretches."""
    from pathlib import Path

    from candleflow.fs.atomic import write_text
    from candleflow.runs.page import h, render_page, table

    folder = Path(folder)
    kind = summary["target"]
    sections = [
        h("<h1>pooled walk-forward {}</h1>", folder.name),
        h(
            "<p class='verdict'><b>{}</b></p>",
            pooled_verdict(kind, summary["table"], summary["best_baseline"], summary["families"]),
        ),
        h(
            "<p class='lead'>target {} over {} bars · {} assets · {} folds · {} test windows at {} times · "
            "costs {} bps per side</p>",
            kind,
            summary["horizon"],
            summary["assets"],
            summary["folds"],
            f"{summary['test_windows']:,}",
            f"{summary['test_times']:,}",
            round(summary["cost_per_side"] * 1e4, 1),
        ),
        table(pooled_rows(kind, summary["table"]), pooled_header(kind), "metrics"),
        h(
            "<p>baseline to beat: {} (chosen on the folds' validation windows). CI (folds): the folds' mean daily "
            "rank ICs combined by a random-effects meta-analysis; NW t: Newey-West over every test time.</p>",
            summary["best_baseline"],
        ),
    ]
    path = folder / "report.html"
    write_text(path, render_page(f"candleflow {folder.name}", sections, summary))
    return path


__all__ = ["write_pooled_walkforward_report", "cross_section_html", "pooled_header", "pooled_rows", "pooled_verdict"]
