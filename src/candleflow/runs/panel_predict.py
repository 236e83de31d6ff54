"""`predict` for a panel run: fresh bars of every ticker, read and featured exactly as the run's
store entries were, put side by side on one time axis as the run's panel was, and the panel model
applied to every complete window. One row per (time, ticker): probabilities, decision and the
ticker's cross-sectional rank; a ticker without a bar at a time is marked absent, never filled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from candleflow.config import RunConfig
from candleflow.data.load import load_candles
from candleflow.dataset.labels import CLASS_NAMES
from candleflow.dataset.panel import Panel, PanelDataset, SeriesArrays, align_panel
from candleflow.dataset.prepare import features_and_labels
from candleflow.dataset.universe import plan_tasks
from candleflow.errors import DataError, RegistryError
from candleflow.evaluation.metrics import decide
from candleflow.runs.timerange import in_range

PREDICT_BATCH = 1024


def panel_series(cfg: RunConfig) -> list[SeriesArrays]:
    """Every ticker of the configured universe as a panel takes it, computed as the store builder
    computes an entry (the same loader, validation, features and labels)."""
    out = []
    for task in plan_tasks(cfg):
        c = task.config
        candles, _ = load_candles(c.source, c.validation, c.cache)
        features, labels, _ = features_and_labels(c, candles)
        out.append(
            SeriesArrays(
                task.name,
                candles.open_time,
                features.values,
                labels.y,
                labels.t1.astype(np.int64),
                candles.close,
                candles.segments,
                candles.calendar,
                candles.interval,
                labels.context,
            )
        )
    return out


def predict_panel(
    model: Any,
    cfg: RunConfig,
    meta: dict[str, Any],
    run_dir: Path,
    start: str | None = None,
    end: str | None = None,
    latest: bool = False,
) -> pa.Table:
    """The panel model on the configured tickers' bars: a row per complete window's end time and
    ticker (ticker-major within a time), with P(SHORT/HOLD/LONG), the decision, the rank of
    P(LONG) - P(SHORT) among the tickers present (1 = the highest), presence, close and the run's
    label where its forward window is complete. Windows ending between `start` and `end`; with
    `latest`, only the last of them is scored."""
    series = panel_series(cfg)
    names = [s.name for s in series]
    if names != list(meta.get("tickers", [])):
        raise RegistryError(
            f"{run_dir}: the run was trained on tickers {meta.get('tickers')}; the config gives {names} "
            "(a panel model reads its tickers in its own order: give the same universe)"
        )
    panel = align_panel(series, cfg.labels.horizon, cfg.dataset.panel_calendar)
    window = cfg.dataset.window
    ends = np.arange(window - 1, panel.times.size)
    ends = ends[in_range(panel.times[ends], start, end)]
    if ends.size == 0:
        raise DataError(
            f"the panel of {len(names)} tickers has {panel.times.size} rows: no complete {window}-row window"
            + (f" between {start or 'the start'} and {end or 'the end'}" if start or end else "")
        )
    if latest:  # score only what is asked: the newest window, not every window then keep one
        ends = ends[-1:]
    ds = PanelDataset(panel, ends, window)
    probs = np.concatenate(
        [
            np.asarray(model.predict(ds.gather(np.arange(lo, min(lo + PREDICT_BATCH, len(ds)))), verbose=0))
            for lo in range(0, len(ds), PREDICT_BATCH)
        ]
    )
    run = str(meta.get("run") or run_dir.name)
    tables = {  # the run's target task: its decisions, or its forecasts ranked across the tickers
        "classify": lambda: panel_table(panel, ends, probs, cfg.evaluation.margin, run),
        "regress": lambda: panel_forecast_table(panel, ends, probs, run, cfg.labels.horizon),
    }
    return tables[cfg.labels.task]()


def panel_forecast_table(panel: Panel, ends: np.ndarray, forecast: np.ndarray, run: str, horizon: int) -> pa.Table:
    """A regressing panel's (time, ticker) rows: the forecast, its rank among the tickers present
    (in (0, 1)), the realised target where its window is complete; the new period's daily rank IC
    in the table's notes."""
    import json

    from candleflow.evaluation.pooled import Groups, group_ranks, ic_summary

    n_w, n_t = forecast.shape[:2]
    present = panel.present()[ends].reshape(-1)
    f = np.where(present, np.asarray(forecast, np.float64).reshape(-1), np.nan)
    times = np.repeat(panel.times[ends], n_t)
    groups = Groups.by_time(times)
    n = groups.count(np.isfinite(f))
    rank = (group_ranks(groups, f) - 0.5) / np.maximum(n[groups.of], 1)
    realised = np.asarray(panel.labels[ends], np.float64).reshape(-1)
    closes = np.full((n_w, n_t), np.nan) if panel.closes is None else panel.closes[ends]
    scored = ic_summary(times, realised, f, horizon)
    notes = (
        [f"the new period's daily rank IC across the tickers: {scored['rank_ic']:+.4f} over {scored['times']} times"]
        if scored["rank_ic"] is not None
        else []
    )
    table = pa.table(
        {
            "open_time": pa.array(times.astype("datetime64[ns]")),
            "ticker": pa.array(np.tile(np.asarray(panel.names, dtype=object), n_w), pa.string()),
            "present": pa.array(present),
            "close": pa.array(closes.reshape(-1), mask=~np.isfinite(closes.reshape(-1))),
            "forecast": pa.array(f.astype(np.float32), mask=~np.isfinite(f)),
            "rank": pa.array(rank.astype(np.float32), mask=~np.isfinite(rank)),
            "realised": pa.array(realised.astype(np.float32), mask=~np.isfinite(realised)),
            "run": pa.array([run] * (n_w * n_t)),
        }
    )
    return table.replace_schema_metadata(
        {b"candleflow_notes": json.dumps(notes), b"candleflow_cross_section": json.dumps(scored)}
    )


def panel_table(panel: Panel, ends: np.ndarray, probs: np.ndarray, margin: float, run: str) -> pa.Table:
    """The (time, ticker) rows of `predict_panel` from (windows, tickers, 3) probabilities."""
    n_w, n_t = probs.shape[:2]
    present = panel.present()[ends]  # (windows, tickers)
    decisions = decide(probs.reshape(-1, probs.shape[-1]), margin).reshape(n_w, n_t)
    score = np.where(present, probs[..., 2] - probs[..., 0], -np.inf)
    order = np.argsort(-score, axis=1, kind="stable")
    rank = np.empty_like(order)
    rank[np.arange(n_w)[:, None], order] = np.arange(1, n_t + 1)[None, :]
    labels = panel.labels[ends]
    closes = np.full((n_w, n_t), np.nan) if panel.closes is None else panel.closes[ends]
    flat = lambda a: a.reshape(-1)  # noqa: E731  (time-major, ticker within)
    shown = flat(present)
    return pa.table(
        {
            "open_time": pa.array(np.repeat(panel.times[ends], n_t).astype("datetime64[ns]")),
            "ticker": pa.array(np.tile(np.asarray(panel.names, dtype=object), n_w), pa.string()),
            "present": pa.array(shown),
            "close": pa.array(flat(closes), mask=~np.isfinite(flat(closes))),
            **{
                f"prob_{c.lower()}": pa.array(flat(probs[..., k]).astype(np.float32), mask=~shown)
                for k, c in enumerate(CLASS_NAMES)
            },
            "decision": pa.array([CLASS_NAMES[d] if p else None for d, p in zip(flat(decisions), shown)], pa.string()),
            "rank": pa.array(flat(rank), mask=~shown),
            "label": pa.array([CLASS_NAMES[v] if v >= 0 else None for v in flat(labels)], pa.string()),
            "run": pa.array([run] * (n_w * n_t)),
        }
    )


__all__ = ["panel_forecast_table", "panel_series", "panel_table", "predict_panel"]
