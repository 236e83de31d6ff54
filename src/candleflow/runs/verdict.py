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


__all__ = ["classifier_verdict"]
