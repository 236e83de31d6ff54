"""The one line a classifier run leads with (console and report): does the model beat the naive
baselines and the reference models on the last evaluated period, by intervals, not by points."""

from __future__ import annotations

from typing import Any


def _judge(edge: float, ci: list[float] | None, what: str) -> str:
    if ci is None:
        return f"{100 * edge:+.1f} points over {what}"
    span = f"95% CI [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]"
    if ci[0] > 0:
        return f"beats {what}: {100 * edge:+.1f} points ({span})"
    if ci[1] < 0:
        return f"loses to {what}: {100 * edge:+.1f} points ({span})"
    return f"is not distinguishable from {what}: {100 * edge:+.1f} points ({span})"


def classifier_verdict(metrics: dict[str, Any]) -> str:
    """'test: the model beats the naive baselines: +11.8 points (95% CI [...]) and is not
    distinguishable from lightgbm: ...' from a run's metrics (the test period when there is one)."""
    part = "test" if "test" in metrics else "val"
    m = metrics[part]
    ba = m["table"]["model"]["balanced_accuracy"]
    line = f"{part}: balanced accuracy {ba:.4f}; the model " + _judge(
        m["edge_balanced_accuracy"], m.get("edge_ci95"), "the best naive baseline"
    )
    if "edge_over_reference" in m:
        line += "; it " + _judge(m["edge_over_reference"], m.get("edge_over_reference_ci95"), f"{m['best_reference']}")
    if m.get("warnings"):
        line += f" ({len(m['warnings'])} warning{'s' if len(m['warnings']) > 1 else ''} below)"
    return line


__all__ = ["classifier_verdict", "training_summary"]


def training_summary(meta: dict[str, Any]) -> str:
    """How the model was fitted, in its family's own words: '643 parameters · 4 epochs in 63 s',
    '212 boosting rounds, 6,360 leaves in 1 s', '2,211 coefficients in 0 s'. Values from a run
    folder are shown as they are when they are not numbers (an edited folder)."""
    kind, epochs, size = meta.get("model_kind"), meta.get("epochs_run"), meta.get("parameters")
    seconds = meta.get("fit_seconds")
    if _tabular(kind):
        what = (
            f"{_count(epochs)} boosting rounds, {_count(size)} leaves"
            if kind == "lightgbm"
            else f"{_count(size)} coefficients"
        )
    else:
        what = f"{_count(size)} parameters · {_count(epochs)} epoch{'' if epochs == 1 else 's'}"
    shown = f"{seconds:.0f}" if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) else str(seconds)
    return f"{what} in {shown} s"


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _tabular(kind: Any) -> bool:
    """Whether a run's family fits lagged rows (no epochs, no network parameters)."""
    from candleflow.errors import ConfigError
    from candleflow.models.families import family

    try:
        return isinstance(kind, str) and family(kind).tabular
    except ConfigError:
        return False
