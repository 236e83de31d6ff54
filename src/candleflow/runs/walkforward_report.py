"""The walk-forward study's self-contained HTML page: the family table with confidence intervals,
per-fold scores and the stitched equity curves."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from candleflow.fs.atomic import write_text
from candleflow.runs import plots
from candleflow.runs.page import fmt, h, img, render_page, table


def _pct(x: float) -> str:
    return f"{x * 100:+.1f}"


def _ci(ci: list[float] | None) -> str:
    return "-" if ci is None else f"[{ci[0] * 100:+.1f}, {ci[1] * 100:+.1f}]"


def family_rows(summary: dict[str, Any]) -> list[list[Any]]:
    """One row per family: balanced accuracy (mean +- std over seeds), edges in points with 95% CIs,
    Sharpe and return of the stitched backtest, training seconds."""
    rows = []
    for family, e in summary["table"].items():
        rows.append(
            [
                family,
                f"{e['balanced_accuracy_mean']:.4f} ± {e['balanced_accuracy_std']:.4f}",
                f"{e['macro_f1_mean']:.4f}",
                _pct(e["edge_over_baseline"]),
                _ci(e["edge_over_baseline_ci95"]),
                _pct(e["edge_over_lightgbm"]) if "edge_over_lightgbm" in e else "-",
                _ci(e.get("edge_over_lightgbm_ci95")),
                f"{e['sharpe_mean']:.2f}",
                f"{e['total_return_mean'] * 100:+.1f}%",
                f"{e['trades_mean']:.0f}",
                _share(e.get("hit_rate_mean")),
                f"{_share(e.get('average_win_mean'), 2)} / {_share(e.get('average_loss_mean'), 2)}",
                "-" if e.get("turnover_mean") is None else f"{e['turnover_mean']:.0f}",
                _share(e.get("cost_share_mean"), 0) if e.get("cost_share_mean") is not None else "gross ≤ 0",
                f"{e['training_seconds']:.0f}",
            ]
        )
    return rows


FAMILY_HEADER = [
    "family",
    "balanced acc (mean ± sd)",
    "macro F1",
    "edge vs baseline (pts)",
    "95% CI",
    "edge vs LightGBM (pts)",
    "95% CI",
    "Sharpe",
    "return",
    "trades",
    "hit rate",
    "avg win / loss",
    "turnover / yr",
    "costs / gross",
    "train s",
]


def _share(x: float | None, digits: int = 1) -> str:
    """A fraction as a percent (every trading figure in a report is in percent)."""
    return "-" if x is None else f"{x * 100:.{digits}f}%"


def write_walkforward_report(folder: Path, summary: dict[str, Any], equity: dict[str, Any]) -> Path:
    """Write folder/report.html from the summary and the stitched equity curves
    ({"times": open times, "curves": {name: equity}})."""
    families = list(summary["table"])
    sections: list[Any] = [
        h("<h1>walk-forward {}</h1>", folder.name),
        _lead(summary, f"{len(summary['folds'])} folds ({'rolling' if summary.get('rolling') else 'expanding'})"),
        h("<h2>families</h2>"),
        table(family_rows(summary), FAMILY_HEADER, "metrics"),
        h(
            "<p>best baseline balanced accuracy {:.4f} ({}); buy and hold over the stitched period: Sharpe {:.2f}, "
            "return {:+.1f}%. An edge whose CI covers 0 is not distinguishable from noise.</p>",
            max(summary["baselines"].values()),
            ", ".join(f"{k} {v:.4f}" for k, v in summary["baselines"].items()),
            summary["buy_and_hold"]["sharpe"],
            summary["buy_and_hold"]["total_return"] * 100,
        ),
    ]
    sections.append(
        img(
            plots.stitched_equity(
                equity["times"], equity["curves"], f"stitched out-of-sample equity, seed {summary['seeds'][0]}"
            ),
            "equity curves of " + ", ".join(families) + " and buy and hold",
        )
    )
    return _write_study_page(folder, summary, sections, "balanced_accuracy", "balanced accuracy")


def _lead(summary: dict[str, Any], folds: str) -> Any:
    """The study's lead line: the series, `folds` (what was folded, and how), the seeds, the
    stitched out-of-sample windows and the bootstrap."""
    st, boot = summary["stitched"], summary["bootstrap"]
    return h(
        "<p class='lead'>{} {} · {} · seeds {} · {} out-of-sample windows {} .. {} · block bootstrap of {} windows, "
        "{} resamples</p>",
        summary["symbol"],
        summary["interval"],
        folds,
        summary["seeds"],
        fmt(st["windows"]),
        st["from"],
        st["to"],
        boot["block_windows"],
        boot["resamples"],
    )


def _write_study_page(folder: Path, summary: dict[str, Any], sections: list[Any], key: str, what: str) -> Path:
    """The folds' table, each family and seed's `key` per fold, and the page written with the
    summary embedded."""
    fold_rows = [
        [f["fold"], f["train"], f["val"], f["test"], f["train_from"], f["test_from"]] for f in summary["folds"]
    ]
    sections = [
        *sections,
        h("<h2>folds</h2>"),
        table(fold_rows, ["fold", "train", "val", "test", "train from", "test from"]),
    ]
    per_fold = []
    for family, e in summary["table"].items():
        for seed, folds in e["folds"].items():
            per_fold.append([family, seed, *[f"{f[key]:.4f}" for f in folds]])
    header = ["family", "seed", *[f"fold {f['fold']}" for f in summary["folds"]]]
    sections += [h("<h2>{} per fold</h2>", what), table(per_fold, header)]
    page = render_page(f"candleflow {folder.name}", sections, summary)
    out = folder / "report.html"
    write_text(out, page)
    return out


def write_regression_walkforward_report(folder: Path, summary: dict[str, Any]) -> Path:
    """folder/report.html of a regression study: the verdict, the family and baseline table with
    intervals, the folds and each family's R^2 per fold."""
    best = summary["best_baseline"]
    sections: list[Any] = [
        h("<h1>walk-forward {}</h1>", folder.name),
        h("<p class='verdict'><b>{}</b></p>", regression_verdict(summary)),
        _lead(summary, f"target {summary['target']} · {len(summary['folds'])} folds"),
        h("<h2>families against {} (the baseline to beat)</h2>", best),
        table(regression_family_rows(summary), REGRESSION_HEADER, "metrics"),
        h(
            "<p>R^2 is out of sample against the naive forecast (zero for returns, each fold's own test mean for "
            "volatility); a gain or IC whose interval covers 0 is not distinguishable from noise. Ratios are the "
            "family's loss over the baseline to beat's (chosen by validation MSE), with the Diebold-Mariano t "
            "(positive: the family's loss is smaller); the model confidence set (10%) keeps the forecasts no test "
            "rejects.</p>"
        ),
    ]
    return _write_study_page(folder, summary, sections, "r2", "R^2")


def regression_verdict(summary: dict[str, Any]) -> str:
    """One line: which family, if any, beats the baseline to beat with an interval above 0 (with
    objective ic: whose IC interval lies above 0)."""
    if summary.get("objective") == "ic":
        scored = {f: e for f, e in summary["table"].items() if e.get("ic_ci95")}
        if not scored:
            return "no family has an IC: every forecast was constant"
        top = max(scored, key=lambda f: scored[f]["ic_mean"])
        e = scored[top]
        lo, hi = e["ic_ci95"]
        if lo > 0:
            return f"{top} ranks the future out of sample: IC {e['ic_mean']:+.4f} (95% CI [{lo:+.4f}, {hi:+.4f}], over folds)"
        return (
            f"no family's IC is distinguishable from 0; the largest, {top}, IC {e['ic_mean']:+.4f} "
            f"(95% CI [{lo:+.4f}, {hi:+.4f}], over folds)"
        )
    best = summary["best_baseline"]
    wins = [f for f, e in summary["table"].items() if e["gain_r2_ci95"][0] > 0]
    if wins:
        top = max(wins, key=lambda f: summary["table"][f]["gain_r2"])
        e = summary["table"][top]
        return (
            f"{top} beats {best} out of sample: R^2 {e['r2_mean']:.4f}, gain {e['gain_r2']:+.4f} "
            f"(95% CI [{e['gain_r2_ci95'][0]:+.4f}, {e['gain_r2_ci95'][1]:+.4f}])"
        )
    top = max(summary["table"], key=lambda f: summary["table"][f]["gain_r2"])
    e = summary["table"][top]
    return (
        f"no family beats {best} beyond noise; the closest, {top}, gains {e['gain_r2']:+.4f} R^2 "
        f"(95% CI [{e['gain_r2_ci95'][0]:+.4f}, {e['gain_r2_ci95'][1]:+.4f}])"
    )


def regression_family_rows(summary: dict[str, Any]) -> list[list[str]]:
    """One row per family, then the baselines: R^2 (mean +- sd over seeds), gain over the
    baseline to beat with its 95% interval, the MSE and QLIKE ratios over it with their
    Diebold-Mariano t, IC with its interval, the losses whose model confidence set keeps it, and
    training seconds."""

    def ci(c: list[float] | None) -> str:
        return "-" if c is None else f"[{c[0]:+.4f}, {c[1]:+.4f}]"

    def ratio(a: dict[str, Any], loss: str) -> str:
        r, t = a.get(f"{loss}_ratio"), a.get(f"dm_t_{loss}")
        return "-" if r is None else f"{r:.3f}" + ("" if t is None else f" ({t:+.1f})")

    sets = {k: v for k, v in summary.get("confidence_set", {}).items() if isinstance(v, dict)}

    def kept(name: str) -> str:
        return ", ".join(loss.upper() for loss, mcs in sets.items() if name in mcs["included"]) or (
            "no" if sets else "-"
        )

    rows = []
    for family, e in summary["table"].items():
        ic = "-" if e["ic_mean"] is None else f"{e['ic_mean']:+.4f}"
        a = e.get("against_best", {})
        rows.append(
            [
                family,
                f"{e['r2_mean']:.4f} ± {e['r2_std']:.4f}",
                f"{e['gain_r2']:+.4f}",
                ci(e["gain_r2_ci95"]),
                ratio(a, "mse"),
                ratio(a, "qlike"),
                ic,
                ci(e["ic_ci95"]),
                kept(family),
                f"{e['training_seconds']:.0f}",
            ]
        )
    for b, m in summary["baselines"].items():
        v = m.get("ic_fold_mean", m["ic"])
        ic = "-" if v is None or not math.isfinite(v) else f"{v:+.4f}"
        rows.append([f"{b} (baseline)", f"{m['r2']:.4f}", "", "", "", "", ic, ci(m.get("ic_fold_ci95")), kept(b), ""])
    return rows


REGRESSION_HEADER = [
    "predictor",
    "R^2 (mean ± sd)",
    "gain over best",
    "95% CI",
    "MSE ratio (DM t)",
    "QLIKE ratio (DM t)",
    "IC (mean over folds)",
    "IC 95% CI (over folds)",
    "in the 10% MCS",
    "train s",
]
