"""What a run across assets (a universe, a panel) writes besides its metrics: each scored
period's predictions per (window, asset), one writer per target task, and what identifies and
describes its data (one fingerprint of its store entries, their features, each asset's data)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from candleflow.config import RunConfig
from candleflow.dataset.windows import MultiWindowDataset
from candleflow.evaluation.metrics import decide
from candleflow.models.fitting import Trained
from candleflow.scale.pooled import cross_section_metrics

Predictions = dict[str, dict[str, np.ndarray]]


@dataclass(frozen=True)
class PooledRun:
    """What a universe run's predictions are written from besides the scored windows: its series'
    names, the untransformed windows (the raw target), the training positions and bars per year
    (the cross-section's tables)."""

    names: list[str]
    raw: MultiWindowDataset
    train_positions: np.ndarray
    per_year: float


def universe_decisions(cfg: RunConfig, trained: Trained, run: PooledRun) -> Predictions:
    """A pooled classifier's windows (series, bar, time, label, probabilities) per scored period;
    each series' accuracy written into the period's metrics."""
    predictions = {}
    for part, (part_ds, y_true, probs) in trained.scored.items():
        predictions[part] = _pooled_rows(part_ds) | {"y": y_true.astype(np.int8), "probs": probs.astype(np.float32)}
        decided = decide(probs, cfg.evaluation.margin)
        trained.metrics[part]["series"] = {
            run.names[k]: {
                "windows": int((part_ds.which == k).sum()),
                "accuracy": float((decided[part_ds.which == k] == y_true[part_ds.which == k]).mean()),
            }
            for k in np.unique(part_ds.which)
        }
    return predictions


def universe_forecasts(cfg: RunConfig, trained: Trained, run: PooledRun) -> Predictions:
    """A pooled regression's windows (series, bar, time, raw target, forecast) per scored period;
    the period's cross-section table written into its metrics."""
    tables = cross_section_metrics(cfg, run.raw, run.train_positions, trained.scored, run.per_year, trained.references)
    for part, table in tables.items():
        trained.metrics[part]["cross_section"] = table
    return {
        part: _pooled_rows(part_ds)
        | {
            "y": part_ds.with_labels(run.raw.series_labels).labels_at().astype(np.float32),  # the raw target
            "forecast": np.asarray(probs, np.float32).reshape(-1),
        }
        for part, (part_ds, _, probs) in trained.scored.items()
    }


def _pooled_rows(part_ds: MultiWindowDataset) -> dict[str, np.ndarray]:
    return {
        "series": part_ds.which,  # index into metadata's `series`
        "ends": part_ds.series_ends(),  # the window's last bar within its series
        "times": part_ds.end_times(),
    }


def panel_decisions(cfg: RunConfig, trained: Trained) -> tuple[Predictions, dict[str, Any]]:
    """A panel classifier's predictions per scored period (every ticker's probabilities at each
    window end) and what its report draws (the cross-sectional books' equity)."""
    from candleflow.runs.report_data import panel_report_arrays

    predictions = {
        part: {"ends": sub.ends, "times": sub.end_times(), "y": y.astype(np.int8), "probs": probs.astype(np.float32)}
        for part, (sub, y, probs) in trained.scored.items()
    }
    drawn = {part: panel_report_arrays(sub, probs, cfg) for part, (sub, _, probs) in trained.scored.items()}
    return predictions, drawn


def panel_forecasts(cfg: RunConfig, trained: Trained) -> tuple[Predictions, None]:
    """A regressing panel's predictions: each (window, ticker) pair with a target, as a pooled
    run writes its windows (series: the ticker's index into metadata's `tickers`); its report is
    the regression report, drawn from these."""
    from candleflow.models.panel_regression import long_format

    out = {}
    for part, (sub, _, forecast) in trained.scored.items():
        windows, where = long_format(sub)
        out[part] = {
            "series": windows.asset.astype(np.int32),
            "times": windows.times,
            "y": np.asarray(windows.y, np.float32),
            "forecast": np.asarray(forecast, np.float32).reshape(-1)[where],
        }
    return out, None


def per_ticker_data(records: dict[str, Any], names: list[str]) -> dict[str, dict[str, Any]]:
    """What each ticker's entry says of its data (rows, span, calendar, what validation changed:
    back-adjusted prices, suspected splits, bad prints, filled and repaired bars), for a panel's
    data.json and report; an entry from before `changes` was recorded says only its summary."""
    keep = ("rows", "first", "last", "calendar", "validation")
    return {n: {k: records[n].get(k) for k in keep} | dict(records[n].get("changes") or {}) for n in names}


def store_identity(
    records: dict[str, Any], names: list[str], cross_section: list[str] | None = None, identity: bool = False
) -> dict[str, Any]:
    """What identifies the data of a run over store entries: one fingerprint of all of them, and
    their (shared) feature names, then the cross-sectional columns' (features.cross_section) and
    the assets' one-hot columns (dataset.asset_embedding)."""
    from candleflow.dataset.asset_scales import asset_columns
    from candleflow.dataset.cross_features import cross_section_names

    joined = " ".join(records[n]["fingerprint"] for n in names)
    return {
        "data_fingerprint": hashlib.sha256(joined.encode()).hexdigest(),
        "feature_names": [
            *records[names[0]]["feature_names"],
            *cross_section_names(cross_section or []),
            *(asset_columns(names) if identity else []),
        ],
    }


# each layout across assets' prediction writers, by target task (`cfg.labels.task`)
UNIVERSE_PREDICTIONS = {"classify": universe_decisions, "regress": universe_forecasts}
PANEL_PREDICTIONS = {"classify": panel_decisions, "regress": panel_forecasts}
