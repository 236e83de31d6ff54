"""The report of a regression run (forward returns, volatility): the verdict first, then each
period's table of the model, the reference models and the quants' baselines, the forecast
against the realised values, and the training curves."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from candleflow.runs.folder import RunFolder

RETURN_COLUMNS = ("ic", "rank_ic", "icir", "r2", "hit_rate", "pnl_per_trade", "trades", "mse")
VOLATILITY_COLUMNS = ("r2", "qlike", "mse", "ic", "rank_ic")


def columns(kind: str) -> tuple[str, ...]:
    """The metrics a table of `kind` shows, in order."""
    return RETURN_COLUMNS if kind == "forward_return" else VOLATILITY_COLUMNS


def verdict(metrics: dict[str, Any]) -> str:
    """One line: does the model beat the baseline to beat, on the last evaluated period."""
    part = "test" if "test" in metrics else "val"
    m = metrics[part]
    best, gain = m["best_baseline"], m["gain_r2"]
    r2 = m["table"]["model"]["r2"]
    base = m["table"][best]["r2"]
    if gain is None or r2 is None:
        return f"{part}: the model's R^2 is undefined (a constant target or forecast)"
    word = "beats" if gain > 0 else "does not beat"
    line = f"{part}: the model {word} {best} (R^2 {r2:.4f} against {base:.4f}, {gain:+.4f})"
    if m["target"] == "forward_return":
        ic = m["table"]["model"]["ic"]
        line += f"; IC {ic:+.4f}" if ic is not None else "; IC undefined (a constant forecast)"
    return line


def build_regression_report(run_dir: Path) -> Path:
    """report.html for a regression run, from its folder alone."""
    from candleflow.runs import plots
    from candleflow.runs.report import _img, _read_history, _table, _write_page

    folder = RunFolder(run_dir)
    meta, metrics = folder.metadata(), folder.metrics()
    preds = folder.predictions()
    kind = meta["target"]
    cols = columns(kind)
    sections = [
        f"<h1>candleflow run {html.escape(meta['run'])}</h1>",
        f"<p class='verdict'><b>{html.escape(verdict(metrics))}</b></p>",
        f"<p class='lead'>{html.escape(str(meta.get('symbol')))} {html.escape(str(meta.get('interval')))} · target "
        f"{html.escape(kind)} ({html.escape(meta['target_units'])}) · input {'x'.join(map(str, meta['input_shape']))}"
        f" · {meta['parameters']:,} parameters · {meta['epochs_run']} epochs in {meta['fit_seconds']} s</p>",
    ]
    figures = [_img(plots.training_curves(_read_history(run_dir / RunFolder.HISTORY)), "training curves")]
    for part, m in metrics.items():
        rows = [[name, *(r.get(c) for c in cols)] for name, r in m["table"].items()]
        sections.append(f"<h2>{part} period: {m['windows']:,} windows</h2>")
        sections.append(_table(rows, ["predictor", *cols], "metrics"))
        gain = "undefined" if m["gain_r2"] is None else f"{m['gain_r2']:+.4f}"
        sections.append(
            f"<p>gain in R^2 over {html.escape(m['best_baseline'])} (the baseline to beat): "
            f"<b class='edge'>{gain}</b></p>"
        )
        p = preds[part]
        figures.append(_img(plots.forecast_scatter(p["y"], p["forecast"], f"{part}: forecast against realised"), part))
    sections.append("<h2>plots</h2><div class='figs'>" + "".join(figures) + "</div>")
    sections.append(f"<h2>config</h2><pre>{html.escape(folder.config_text())}</pre>")
    summary = (run_dir / RunFolder.SUMMARY).read_text()
    return _write_page(run_dir, meta, metrics, sections, summary)
