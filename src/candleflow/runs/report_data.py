"""What a run's report draws, computed once at run time and stored in report_data.npz, so
`report` never re-reads the source: equity curves and example windows of one series, the
cross-sectional books' equity of a panel."""

from __future__ import annotations

from typing import Any

import numpy as np

from candleflow.config import RunConfig
from candleflow.dataset.panel import PanelDataset

EXAMPLES = 6  # example windows drawn per period


def report_arrays(candles: Any, ends: np.ndarray, results: dict[str, Any], window: int, horizon: int) -> dict:
    """What the report draws for one period, computed once at run time: the equity curve of each
    backtested strategy with its bar times, and a few example windows' closes (window then
    horizon, NaN past the data's end), so `report` never re-reads the source."""
    model = results["model"]
    out: dict[str, np.ndarray] = {"times": candles.open_time[model.start : model.stop].astype(np.int64)}
    out.update({f"equity_{k}": np.asarray(r.equity, np.float64) for k, r in results.items()})
    pick = np.linspace(0, ends.size - 1, min(EXAMPLES, ends.size)).astype(np.int64)
    segments = np.full((pick.size, window + horizon), np.nan)
    for row, e in enumerate(ends[pick]):
        part = candles.close[int(e) - window + 1 : int(e) + horizon + 1]
        segments[row, : part.size] = part
    out.update({"example_pick": pick, "example_close": segments})
    return out


def panel_report_arrays(sub: PanelDataset, probs: np.ndarray, cfg: RunConfig) -> dict[str, np.ndarray]:
    """What a panel run's report draws for one period, computed at run time: each cross-sectional
    book's equity at its rebalancing times (as the backtest table scores them)."""
    from candleflow.evaluation.cross_section import book_curves

    bt = cfg.backtest
    present = sub.panel.present()[sub.ends]
    rows, curves = book_curves(
        probs, sub.returns_at(), present, cfg.labels.horizon, bt.top_k, bt.fee + bt.slippage, bt.seed
    )
    return {"times": sub.end_times()[rows].astype(np.int64), **{f"equity_{k}": v for k, v in curves.items()}}
