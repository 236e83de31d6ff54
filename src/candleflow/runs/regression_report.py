"""What a regression run's report and console say (forward returns, volatility): the verdict
line and the metric columns of each target; `runs/report.py` draws the page."""

from __future__ import annotations

from typing import Any

from candleflow.dataset.targets import target


def columns(kind: str) -> tuple[str, ...]:
    """The metrics a table of target `kind` shows, in order (the target declares them)."""
    return target(kind).columns


def verdict(metrics: dict[str, Any]) -> str:
    """One line: does the model beat the baseline to beat, on the last evaluated period."""
    part = "test" if "test" in metrics else "val"
    m = metrics[part]
    best, gain = m["best_baseline"], m["gain_r2"]
    r2 = m["table"]["model"]["r2"]
    base = m["table"][best]["r2"]
    if gain is None or r2 is None:
        return f"{part}: the model's R^2 is undefined (a constant target or forecast)"
    ci = m.get("gain_r2_ci95")
    if ci is None:  # a run folder written before single runs had an interval
        word = "beats" if gain > 0 else "does not beat"
        line = f"{part}: the model {word} {best} (R^2 {r2:.4f} against {base:.4f}, {gain:+.4f})"
    else:
        word = "beats" if ci[0] > 0 else ("loses to" if ci[1] < 0 else "is not distinguishable from")
        line = (
            f"{part}: the model {word} {best}: R^2 {r2:.4f} against {base:.4f}, {gain:+.4f} "
            f"(95% CI [{ci[0]:+.4f}, {ci[1]:+.4f}])"
        )
    spec = target(m["target"])
    line += _losses(m["table"]["model"], spec.losses)
    if spec.trades_sign:  # a forecast of direction: its IC says whether it ranks the moves
        ic = m["table"]["model"]["ic"]
        line += f"; IC {ic:+.4f}" if ic is not None else "; IC undefined (a constant forecast)"
    return line


def _losses(row: dict[str, Any], losses: tuple[str, ...]) -> str:
    """The model's losses over the baseline to beat's, with their Diebold-Mariano t ('' for a
    run folder written before they were kept)."""
    parts = []
    for loss in losses:
        ratio, t = row.get(f"{loss}_ratio"), row.get(f"dm_t_{loss}")
        if ratio is not None:
            parts.append(f"{loss.upper()} x{ratio:.3f}" + (f" (DM t {t:+.2f})" if t is not None else ""))
    return "; " + ", ".join(parts) if parts else ""
