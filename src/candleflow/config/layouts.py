"""The run layouts and what follows from each, decided here once: `RunConfig.layout` names the
layout, `LAYOUT_RULES[layout]` says what it is. Code elsewhere asks these rules (or looks its own
per-layout function up by the name), never `if layout == "panel"`.

- series: one series' windows; its decisions trade that series (the backtest, the sharpe and
  return objectives, the decision margin chosen on P&L, the refit).
- universe: many series stacked into one pooled model; learns across assets.
- panel: many tickers side by side on one time axis; learns across assets; a label is a
  (window, ticker) pair.
- reward: a reward model on reward samples (one network, no registered family).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Layout = Literal["series", "universe", "panel", "reward"]


@dataclass(frozen=True)
class LayoutRules:
    """What a layout is, for every module that would otherwise test its name.

    - what: the layout in words, for log lines and one-line errors.
    - trades: its decisions trade one series (backtest, sharpe/return objectives, a margin chosen
      on P&L, `training.refit`, an MLflow model whose input is one series' windows).
    - across_assets: one model learns across many assets; the cross-section's verdict leads.
    - family: it trains a registered family (`model.kind`); reward trains its own network.
    - side_by_side: its input holds every ticker at one time (a panel); otherwise a window is one
      asset's (its model reads one series' windows, and predict applies it to one series).
    - labels: what one scored label is, in words ("windows", "(window, ticker) labels").
    """

    name: Layout
    what: str
    trades: bool
    across_assets: bool
    family: bool
    side_by_side: bool
    labels: str

    @property
    def pooled(self) -> bool:
        """Many series' windows stacked into one model (a universe): each window is one asset's."""
        return self.across_assets and not self.side_by_side


LAYOUT_RULES: dict[str, LayoutRules] = {
    "series": LayoutRules(
        "series", "one series", trades=True, across_assets=False, family=True, side_by_side=False, labels="windows"
    ),
    "universe": LayoutRules(
        "universe",
        "one model over many series",
        trades=False,
        across_assets=True,
        family=True,
        side_by_side=False,
        labels="windows",
    ),
    "panel": LayoutRules(
        "panel",
        "many tickers side by side",
        trades=False,
        across_assets=True,
        family=True,
        side_by_side=True,
        labels="(window, ticker) labels",
    ),
    "reward": LayoutRules(
        "reward",
        "a reward model on reward samples",
        trades=False,
        across_assets=False,
        family=False,
        side_by_side=False,
        labels="samples",
    ),
}
LAYOUTS: tuple[str, ...] = tuple(LAYOUT_RULES)


def layout_rules(name: str) -> LayoutRules:
    """The rules of layout `name`; a one-line error naming the layouts that exist."""
    try:
        return LAYOUT_RULES[name]
    except KeyError:
        raise ValueError(f"layout {str(name)[:40]!r}: expected one of {', '.join(LAYOUTS)}") from None


__all__ = ["LAYOUTS", "LAYOUT_RULES", "Layout", "LayoutRules", "layout_rules"]
