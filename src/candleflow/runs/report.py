"""One self-contained HTML report per run (plots embedded), and runs compared side by side."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import yaml

from candleflow.config import LAYOUT_RULES
from candleflow.dataset.labels import CLASS_NAMES
from candleflow.errors import CandleflowError, RegistryError
from candleflow.evaluation.metrics import decide
from candleflow.fs.atomic import write_text
from candleflow.runs.folder import RunFolder
from candleflow.runs.page import Markup, fmt, h, img, join, render_page, table
from candleflow.runs.report_data import report_arrays
from candleflow.runs.verdict import training_summary


def classification_rows(m: dict[str, Any]) -> list[list[Any]]:
    return [
        [
            name,
            r["accuracy"],
            r["balanced_accuracy"],
            r["macro_f1"],
            *(r["per_class"][c]["precision"] for c in CLASS_NAMES),
            *(r["per_class"][c]["recall"] for c in CLASS_NAMES),
        ]
        for name, r in m["table"].items()
    ]


CLASSIFICATION_HEADER = [
    "predictor",
    "accuracy",
    "balanced accuracy",
    "macro F1",
    "precision SHORT",
    "precision HOLD",
    "precision LONG",
    "recall SHORT",
    "recall HOLD",
    "recall LONG",
]
BACKTEST_KEYS = [
    "total_return",
    "sharpe",
    "max_drawdown",
    "trades",
    "hit_rate",
    "average_win",
    "average_loss",
    "cost_share",
    "exposure",
    "turnover",
    "annual_return",
    "annual_volatility",
    "sortino",
]


PERCENT_KEYS = {
    "total_return",
    "annual_return",
    "annual_volatility",
    "max_drawdown",
    "hit_rate",
    "average_trade",
    "average_win",
    "average_loss",
    "cost_share",
    "exposure",
}


UNSIGNED_KEYS = {"max_drawdown", "exposure", "hit_rate", "cost_share", "annual_volatility"}  # sizes and shares


def _bt_value(key: str, value: Any) -> Any:
    """Every fraction in percent (one unit on the page); Sharpe and Sortino as ratios, turnover as
    position changes a year, trades as a count."""
    if value is None:
        return "-"
    if key in UNSIGNED_KEYS and isinstance(value, (int, float)):  # a size, not a gain or a loss: no sign
        return f"{value * 100:.2f}%"
    if key in PERCENT_KEYS and isinstance(value, (int, float)):
        return f"{value * 100:+.2f}%"
    if key in ("sharpe", "sortino", "turnover") and isinstance(value, float):
        return f"{value:.2f}"
    return value


def _tags_html(meta: dict[str, Any]) -> list[Markup]:
    """The run's own tags and notes (output.tags, output.notes)."""
    out = []
    if meta.get("tags"):
        out.append(h("<p>tags: {}</p>", join((h("<code>{}</code>", t) for t in meta["tags"]), ", ")))
    if meta.get("notes"):
        out.append(h("<p class='notes'>{}</p>", meta["notes"]))
    return out


def backtest_rows(bt: dict[str, Any]) -> list[list[Any]]:
    """The model, its long and short legs, the model at 0x and 2x costs, and the baselines."""
    rows = {**bt["table"]}
    rows.update(bt.get("legs", {}))
    rows.update({f"model at {k} costs": v for k, v in bt.get("costs", {}).items() if k != "1x"})
    return [[name, *(_bt_value(k, r.get(k)) for k in BACKTEST_KEYS)] for name, r in rows.items()]


CROSS_SECTION_KEYS = ["total_return", "sharpe", "max_drawdown", "turnover", "hit_rate", "active_periods"]


def build_panel_report(run_dir: Path) -> Path:
    """Write a panel run's report.html from its files: the pooled classification table against
    the baselines and the pooled reference models, balanced accuracy per ticker, the
    cross-sectional books' table and equity curves (stored at run time), training curves, the
    model and (folded) the config."""
    from candleflow.runs import plots

    folder = RunFolder(run_dir)
    meta, metrics = folder.metadata(), folder.metrics()
    stored = folder.report_data()
    if stored is None:
        raise RegistryError(f"{run_dir}: a panel run written before report_data.npz existed; train it again")
    summary_text = (run_dir / RunFolder.SUMMARY).read_text() if (run_dir / RunFolder.SUMMARY).is_file() else ""
    config_text = (run_dir / RunFolder.CONFIG).read_text()
    history = _read_history(run_dir / RunFolder.HISTORY)
    tickers = meta.get("tickers", [])
    from candleflow.runs.verdict import classifier_verdict

    sections = [
        h("<h1>candleflow panel run {}</h1>", meta["run"]),
        h("<p class='verdict'><b>{}</b></p>", classifier_verdict(metrics)),
        *_warnings_html(metrics),
        h(
            "<p class='lead'>{} tickers side by side ({}), {} bars · input {} · {} · created {}</p>",
            len(tickers),
            ", ".join(map(str, tickers)),
            meta.get("interval"),
            "x".join(map(str, meta["input_shape"])),
            training_summary(meta),
            meta["created"],
        ),
    ]
    figures = _training_figure(history)
    for part, m in metrics.items():
        sections += _panel_part_sections(part, m)
        drawn = stored[part]
        curves = {k.removeprefix("equity_"): v for k, v in drawn.items() if k.startswith("equity_")}
        curves.pop("oracle", None)  # it knows the future: in the table, not on the scale of the plot
        figures.append(img(plots.equity_and_drawdown(drawn["times"], curves, part), f"books' equity ({part})"))
        figures.append(
            img(
                plots.confusion(m["table"]["model"]["confusion_matrix"], f"{part}: model decisions"),
                f"confusion ({part})",
            )
        )
    sections.append(h("<h2>plots</h2><div class='figs'>{}</div>", join(figures)))
    sections += _per_ticker_html(folder)
    sections.append(h("<details><summary>config</summary><pre>{}</pre></details>", config_text))
    return _write_page(run_dir, meta, metrics, sections, summary_text)


def _per_ticker_html(folder: RunFolder) -> list[Markup]:
    """Each ticker's data as its store entry recorded it: span, calendar, how prices were
    adjusted, suspected splits and bad prints, and the validation summary."""
    try:
        per = folder.data().get("per_ticker") or {}
    except (OSError, ValueError):
        return []
    if not per:
        return []
    cols = ["rows", "first", "last", "calendar", "adjusted", "suspected_splits", "bad_print_rows", "validation"]
    rows = [
        [name, *(", ".join(v) if isinstance(v := d.get(c), list) else ("none" if v == "" else v) for c in cols)]
        for name, d in per.items()
    ]
    return [h("<h2>data per ticker</h2>{}", table(rows, ["ticker", *cols], "per-ticker"))]


def _panel_part_sections(part: str, m: dict[str, Any]) -> list[Any]:
    """A panel period's tables: pooled classification, edges, per ticker, cross-sectional books."""
    edge_ref = (
        h(
            "; over the best reference model ({}, pooled over the tickers' lagged rows): "
            "<b class='edge-ref'>{:+.2f} points</b>",
            m["best_reference"],
            m["edge_over_reference"] * 100,
        )
        if "edge_over_reference" in m
        else ""
    )
    books = [[name, *(_bt_value(k, r[k]) for k in CROSS_SECTION_KEYS)] for name, r in m["cross_section"].items()]
    return [
        h("<h2>{} period: {} (window, ticker) labels</h2>", part, fmt(m["n"])),
        h("<h3>classification</h3>{}", table(classification_rows(m), CLASSIFICATION_HEADER, "metrics")),
        h(
            "<p>edge in balanced accuracy over the best baseline: <b class='edge'>{:+.2f} points</b>{}</p>",
            m["edge_balanced_accuracy"] * 100,
            edge_ref,
        ),
        h(
            "<h3>per ticker (the model's decisions)</h3>{}",
            table(
                [[name, r["labels"], r["balanced_accuracy"]] for name, r in m["tickers"].items()],
                ["ticker", "labels", "balanced accuracy"],
                "tickers",
            ),
        ),
        h(
            "<h3>cross-sectional books (long the top k by P(LONG) - P(SHORT), short the bottom k, "
            "rebalanced every horizon)</h3>{}"
            "<p class='note'>oracle: ranked by the realised returns (a bound, not a strategy)</p>",
            table(books, ["book", *[k.replace("_", " ") for k in CROSS_SECTION_KEYS]], "cross-section"),
        ),
    ]


def _rebuild_report_data(run_dir: Path, meta: dict, metrics: dict, preds: dict, cfg: Any, prep: Any) -> dict:
    """report_arrays for a run folder written before they were stored: the run's data prepared
    again (it must still have the run's fingerprint) and each period backtested again."""
    from candleflow.evaluation.trading import trading_evaluation

    if prep is None:
        from candleflow.dataset.prepare import prepare

        prep = prepare(cfg)
    if prep.candles.fingerprint != meta["data_fingerprint"]:
        raise RegistryError(
            f"{run_dir}: the data its config produces now (fingerprint "
            f"{prep.candles.fingerprint[:12]}) is not the data it was trained on "
            f"({meta['data_fingerprint'][:12]})"
        )
    out = {}
    for part, m in metrics.items():
        p = preds[part]
        decisions = decide(p["probs"], m["decision_margin"])
        _, results = trading_evaluation(prep.candles, p["ends"], p["y"], p["probs"], decisions, cfg)
        out[part] = report_arrays(prep.candles, p["ends"], results, cfg.dataset.window, cfg.labels.horizon)
    return out


def build_report(run_dir: str | Path, prep=None) -> Path:
    """Write run_dir/report.html from the run's files alone (the curves and example windows were
    stored at run time in report_data.npz). A run folder from before that file existed is
    rebuilt from its source: `prep` (the prepared data) or the run's config, with the run's data
    fingerprint. A folder whose files hold values of the wrong kind (edited, or from another
    version) is one RegistryError naming the folder, not a traceback."""
    run_dir = Path(run_dir)
    try:
        return _build_report(run_dir, prep)
    except CandleflowError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        what = f"missing key {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
        raise RegistryError(
            f"{run_dir}: cannot build a report: its metadata.json or metrics.json does not hold what a run "
            f"writes ({what}); was the folder edited, or written by another version?"
        ) from None


def _build_report(run_dir: Path, prep: Any) -> Path:
    """The report of the run's target task and layout (metadata.json), never guessed from its keys."""
    meta = RunFolder(run_dir).metadata()
    rules = LAYOUT_RULES.get(str(meta.get("layout")))
    if rules is None or not rules.family:  # a reward model: one network, no family, no report
        what = "a reward-model run" if rules else f"layout {str(meta.get('layout'))[:40]!r}"
        raise RegistryError(f"{run_dir}: {what}; its numbers are in metrics.json (reports cover classifier runs)")
    if meta.get("target_task") == "regress":  # a series, a pooled universe or a regressing panel
        return build_regression_report(run_dir)
    return CLASS_REPORTS[rules.name](run_dir, prep)


def _universe_report(run_dir: Path, prep: Any) -> Path:
    raise RegistryError(
        f"{run_dir}: a run over many series (universe); its numbers are in metrics.json "
        "(the HTML report covers single-series and panel runs)"
    )


def _series_report(run_dir: Path, prep: Any) -> Path:
    """One series' classifier report: verdict, tables, backtest, curves, example windows."""
    from candleflow.runs import plots

    folder = RunFolder(run_dir)
    meta = folder.metadata()
    metrics, data = folder.metrics(), folder.data()
    try:
        config_text = folder.config_text()
        summary_text = (run_dir / RunFolder.SUMMARY).read_text()
        preds = folder.predictions()
    except (OSError, ValueError) as exc:
        raise RegistryError(f"{run_dir}: cannot build a report ({exc})") from None
    history = _read_history(run_dir / RunFolder.HISTORY)
    cfg = folder.config()
    stored = folder.report_data()
    if stored is None:  # a run folder from before report_data.npz: rebuilt from the run's source
        stored = _rebuild_report_data(run_dir, meta, metrics, preds, cfg, prep)
    from candleflow.runs.verdict import classifier_verdict

    sections: list[Any] = [
        h("<h1>candleflow run {}</h1>", meta["run"]),
        h("<p class='verdict'><b>{}</b></p>", classifier_verdict(metrics)),
        *_warnings_html(metrics),
        h(
            "<p class='lead'>{} {} · input {} · {} · created {}</p>",
            meta["symbol"],
            meta["interval"],
            "x".join(map(str, meta["input_shape"])),
            training_summary(meta),
            meta["created"],
        ),
        *_tags_html(meta),
    ]
    figures = _training_figure(history)
    for part, m in metrics.items():
        sections += _part_sections(part, m)
        figures += _part_figures(part, m, preds[part], stored[part], cfg)
    figures.append(img(plots.class_balance(data["dataset"]["split"]), "class balance per split"))
    sections += _importance_html(metrics)
    sections.append(h("<h2>plots</h2><div class='figs'>{}</div>", join(figures)))
    sections += _data_html(data)
    sections.append(h("<details><summary>config</summary><pre>{}</pre></details>", config_text))
    return _write_page(run_dir, meta, metrics, sections, summary_text)


# each layout's classifier report (metadata's layout); a regression's is build_regression_report
CLASS_REPORTS = {"series": _series_report, "panel": lambda d, _: build_panel_report(d), "universe": _universe_report}


def _part_sections(part: str, m: dict[str, Any]) -> list[Any]:
    """A scored period's heading, classification table, edge and backtest."""
    when = f", {m['period']['from']} .. {m['period']['to']}" if "period" in m else ""
    return [
        h("<h2>{} period: {} windows{}</h2>", part, fmt(m["n"]), when),
        h("<h3>classification</h3>{}", table(classification_rows(m), CLASSIFICATION_HEADER, "metrics")),
        _edge_html(m),
        *_backtest_html(m["trading"]),
    ]


def _part_figures(part: str, m: dict[str, Any], p: dict[str, Any], drawn: dict[str, Any], cfg: Any) -> list[Any]:
    """A scored period's figures: confusion matrix, equity and drawdown, calibration, example windows."""
    from candleflow.runs import plots

    y, probs = p["y"], p["probs"]
    decisions = decide(probs, m["decision_margin"])
    curves = {k.removeprefix("equity_"): v for k, v in drawn.items() if k.startswith("equity_")}
    bt, pick = m["trading"], drawn["example_pick"]
    return [
        img(
            plots.confusion(m["table"]["model"]["confusion_matrix"], f"{part}: model decisions"),
            f"confusion matrix ({part})",
        ),
        img(
            plots.equity_and_drawdown(drawn["times"], curves, part, cfg.output.equity_scale),
            f"equity and drawdown ({part})",
        ),
        img(plots.calibration(bt["reliability"], bt["coverage"]), f"calibration ({part})"),
        img(
            plots.example_windows(drawn["example_close"], cfg.dataset.window, y[pick], decisions[pick], probs[pick]),
            f"example windows ({part})",
        ),
    ]


def _edge_html(m: dict[str, Any]) -> Markup:
    """The edge over the best baseline and over the best reference model, in points."""
    over_reference = ""
    if "edge_over_reference" in m:
        over_reference = h(
            "; over the best reference model ({}): <b class='edge-ref'>{:+.2f} points</b>{}",
            m["best_reference"],
            m["edge_over_reference"] * 100,
            h(" <b>(the model loses to it)</b>") if m["edge_over_reference"] < 0 else "",
        )
    return h(
        "<p>edge in balanced accuracy over the best baseline: <b class='edge'>{:+.2f} points</b> "
        "(decision margin {}){}</p>",
        m["edge_balanced_accuracy"] * 100,
        fmt(m["decision_margin"]),
        over_reference,
    )


def _backtest_html(bt: dict[str, Any]) -> list[Markup]:
    """The backtest table (every value from the run folder escaped), the trade list and coverage."""
    out = [
        h(
            "<h3>backtest ({} position, fee {}, slippage {} per side, {} .. {})</h3>{}{}",
            bt["mode"],
            fmt(bt["fee"]),
            fmt(bt["slippage"]),
            bt["span"][0],
            bt["span"][1],
            table(backtest_rows(bt), ["strategy", *[k.replace("_", " ") for k in BACKTEST_KEYS]], "backtest"),
            h("<p class='note'><b>note:</b> {}</p>", bt["note"]) if bt.get("note") else "",
        )
    ]
    if bt.get("trades"):
        out.append(
            h(
                "<details><summary>trade list ({} first trades)</summary>{}</details>",
                len(bt["trades"]),
                table(
                    [
                        [t["entry"], t["exit"], t["side"], f"{t['return'] * 100:+.2f}%", t["exit_reason"]]
                        for t in bt["trades"]
                    ],
                    ["entry", "exit", "side", "return", "exit"],
                    "trades",
                ),
            )
        )
    out.append(
        h(
            "<h3>coverage by confidence threshold</h3>{}",
            table(
                [
                    [r["threshold"], r["coverage"], r["accuracy"], r["trades_signalled"], r["total_return"]]
                    for r in bt["coverage"]
                ],
                ["threshold", "coverage", "accuracy", "signals", "total return"],
                "coverage",
            ),
        )
    )
    return out


def _data_html(data: dict[str, Any]) -> list[Markup]:
    """The validation report, the dataset's description and the features' definitions."""
    rep = data["validation"]
    ds = {k: v for k, v in data["dataset"].items() if k not in ("split", "features")}
    return [
        h(
            "<h2>data</h2>{}",
            table(
                [[k, json.dumps(v) if isinstance(v, (dict, list)) else v] for k, v in rep.items()],
                ["validation", "value"],
                "validation",
            ),
        ),
        table(
            [[k, json.dumps(v) if isinstance(v, (dict, list)) else v] for k, v in ds.items()],
            ["dataset", "value"],
            "dataset",
        ),
        table([[k, v] for k, v in data["dataset"]["features"].items()], ["feature", "definition"], "features"),
    ]


def build_regression_report(run_dir: Path) -> Path:
    """report.html for a regression run, from its folder alone."""
    from candleflow.runs import plots
    from candleflow.runs.regression_report import columns, verdict

    folder = RunFolder(run_dir)
    meta, metrics = folder.metadata(), folder.metrics()
    preds = folder.predictions()
    kind = meta["target"]
    cols = columns(kind)
    sections: list[Any] = [
        h("<h1>candleflow run {}</h1>", meta["run"]),
        h("<p class='verdict'><b>{}</b></p>", verdict(metrics)),
        h(
            "<p class='lead'>{} {} · target {} ({}) · input {} · {}</p>",
            meta.get("symbol"),
            meta.get("interval"),
            kind,
            meta["target_units"],
            "x".join(map(str, meta["input_shape"])),
            training_summary(meta),
        ),
    ]
    figures = _training_figure(_read_history(run_dir / RunFolder.HISTORY))
    from candleflow.runs.pooled_tables import cross_section_html

    pooled, pooled_figures = cross_section_html(metrics, preds)  # a pooled run: the cross-section first
    sections += pooled
    figures += pooled_figures
    for part, m in metrics.items():
        rows = [[name, *(r.get(c) for c in cols)] for name, r in m["table"].items()]
        sections.append(h("<h2>{} period: {} windows</h2>", part, fmt(m["windows"])))
        sections.append(table(rows, ["predictor", *cols], "metrics"))
        gain = "undefined" if m["gain_r2"] is None else f"{m['gain_r2']:+.4f}"
        sections.append(
            h("<p>gain in R^2 over {} (the baseline to beat): <b class='edge'>{}</b></p>", m["best_baseline"], gain)
        )
        p = preds[part]
        if "baseline" in p and "times" in p:  # folders written before issue 41 stored neither
            names = (meta.get("model_kind", "model"), m["best_baseline"])
            over_time = plots.forecast_over_time(
                p["times"], p["y"], p["forecast"], p["baseline"], names, f"{part}: over time"
            )
            figures.append(img(over_time, f"forecast and realised over time ({part})"))
        figures.append(img(plots.forecast_scatter(p["y"], p["forecast"], f"{part}: forecast against realised"), part))
    sections += _importance_html(metrics)
    sections.append(h("<h2>plots</h2><div class='figs'>{}</div>", join(figures)))
    sections.append(h("<details><summary>config</summary><pre>{}</pre></details>", folder.config_text()))
    summary = (run_dir / RunFolder.SUMMARY).read_text()
    return _write_page(run_dir, meta, metrics, sections, summary)


def _training_figure(history: dict[str, list[float]]) -> list[Markup]:
    """The training curves, where there were epochs (a tree or linear model has none: no empty axes)."""
    from candleflow.runs import plots

    if not history.get("loss"):
        return []
    return [img(plots.training_curves(history), "training curves")]


def _importance_html(metrics: dict[str, Any]) -> list[Markup]:
    """Which inputs matter: LightGBM's gain per feature (summed over lags), the top 20, and the
    model's own permutation importance on validation where the run measured it."""
    first: dict[str, Any] = next(iter(metrics.values()), {})
    out = []
    gain = first.get("importance", {}).get("lightgbm_gain")
    if gain:
        rows = [[name, f"{100 * share:.1f}%"] for name, share in list(gain.items())[:20]]
        out.append(
            h(
                "<h2>which inputs matter</h2><p>LightGBM's share of the split gain per feature, over its lags "
                "(the reference model, or the model itself)</p>{}",
                table(rows, ["feature", "gain share"], "importance"),
            )
        )
    perm = first.get("importance", {}).get("permutation")
    if perm:
        rows = [[name, f"{drop * 100:+.2f}"] for name, drop in list(perm["drop"].items())[:20]]
        left = f"; not measured in the time budget: {', '.join(perm['not_measured'])}" if perm["not_measured"] else ""
        out.append(
            h(
                "<h3>permutation importance (the model, validation)</h3><p>the drop of the validation score "
                "({:.2f} on {} windows) when one input is shuffled across windows, in points{}</p>{}",
                perm["score"] * 100,
                fmt(perm["windows"]),
                left,
                table(rows, ["feature", "score drop (points)"], "importance"),
            )
        )
    return out


def _warnings_html(metrics: dict[str, Any]) -> list[Markup]:
    """Each period's warnings, one line each, for the top of the page."""
    lines = [f"{part}: {w}" for part, m in metrics.items() for w in m.get("warnings", [])]
    if not lines:
        return []
    return [h("<ul class='warnings'>{}</ul>", join(h("<li>warning, {}</li>", x) for x in lines))]


def _write_page(run_dir: Path, meta: dict, metrics: dict, sections: list[Any], summary_text: str) -> Path:
    """report.html: the sections, then the model summary and the versions, metrics.json embedded."""
    sections = [
        *sections[:-1],
        h("<h2>model</h2><pre>{}</pre>", summary_text),
        sections[-1],
        h("<h2>versions</h2><pre>{}</pre>", yaml.safe_dump(meta["versions"])),
    ]
    page = render_page(f"candleflow {meta['run']}", sections, metrics)
    out = run_dir / RunFolder.REPORT
    write_text(out, page)
    return out


def _read_history(path: Path) -> dict[str, list[float]]:
    if not path.is_file():
        return {}
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    return {k: [float(r[k]) for r in rows] for k in (rows[0] if rows else {})}
