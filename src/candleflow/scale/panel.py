"""A panel's inputs, built once for a run and for a study: the universe's series built into the
store (only what is missing), aligned on one time axis, and cut into windows of every ticker
side by side."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from candleflow.config import RunConfig
from candleflow.data.calendar import bars_per_year
from candleflow.dataset.panel import PanelDataset, panel_window_ends
from candleflow.errors import ConfigError, DataError
from candleflow.scale.cluster import build_store, plan_tasks
from candleflow.scale.store import SeriesStore, open_panel

log = logging.getLogger("candleflow")


@dataclass(frozen=True)
class PanelInputs:
    """What a panel run or study trains on: the store's build report, the tickers (store entry
    names), the aligned panel, its windows, the entries' records, the bar interval and the bars
    a year (for annualised backtest figures)."""

    report: Any
    names: list[str]
    panel: Any
    dataset: PanelDataset
    records: dict[str, Any]
    interval: str
    per_year: float


def panel_inputs(cfg: RunConfig) -> PanelInputs:
    """Build the store and the panel's windows (a one-line error with fewer than 2 tickers, or
    where no row has a full window before it and a label)."""
    if not cfg.universe.active and len(getattr(cfg.source, "tickers", [])) < 2:
        raise ConfigError(
            "dataset.layout panel needs several tickers: set universe.symbols (or yfinance source.tickers)"
        )
    report = build_store(cfg)
    names = [t.name for t in plan_tasks(cfg)]
    d = cfg.dataset
    panel = open_panel(cfg.universe.store, names, cfg.labels.horizon, d.panel_calendar)
    ends = panel_window_ends(panel, d.window, d.stride)
    if ends.size == 0:
        raise DataError(f"the panel of {len(names)} tickers has no row with {d.window} rows before it and a label")
    records = SeriesStore.for_config(cfg).manifest()["entries"]
    interval = records[names[0]]["interval"]
    calendar = panel.calendar if panel.calendar != "mixed" else "24/7"
    per_year = bars_per_year(calendar, interval, int(panel.times[-1]))
    return PanelInputs(report, names, panel, PanelDataset(panel, ends, d.window), records, interval, per_year)


def _fit_panel_classes(*args: Any) -> Any:
    from candleflow.models.panel_fitting import train_and_score_panel

    return train_and_score_panel(*args)


def _fit_panel_forecasts(*args: Any) -> Any:
    from candleflow.models.panel_regression import train_and_score_panel_regression

    return train_and_score_panel_regression(*args)


# the panel's fit of each target task (`cfg.labels.task`), both imported only when a panel trains
# (they load Keras): (cfg, work, dataset, parts, bars per year, resume state, callbacks) -> Trained
PANEL_FITS: dict[str, Callable[..., Any]] = {"classify": _fit_panel_classes, "regress": _fit_panel_forecasts}

__all__ = ["PANEL_FITS", "PanelInputs", "panel_inputs"]
