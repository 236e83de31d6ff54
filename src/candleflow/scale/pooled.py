"""A pooled run's pieces (one model over a universe's assets, their windows stacked): the
features scaled per asset, the target transformed across the assets at each time
(`labels.cross_section`), and every scored period's cross-section table (`evaluation.pooled`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from candleflow.config import RunConfig
from candleflow.data.calendar import bars_per_year
from candleflow.dataset.asset_scales import FILE as ASSET_SCALES
from candleflow.dataset.asset_scales import AssetScales
from candleflow.dataset.windows import MultiWindowDataset
from candleflow.evaluation.cross_section_scores import PooledWindows, periods_per_year, score_cross_section
from candleflow.evaluation.pooled import cross_section_target
from candleflow.evaluation.regression import finite_or_none

log = logging.getLogger("candleflow")


@dataclass(frozen=True)
class UniverseWindows:
    """A universe's windows as a run, a study and a tune read them: the store built (only what is
    missing) and opened, its series' names and manifest records, the build report, and the
    holding periods of `labels.horizon` bars in a year."""

    raw: MultiWindowDataset
    names: list[str]
    records: dict[str, Any]
    report: Any
    per_year: float


def universe_windows(cfg: RunConfig) -> UniverseWindows:
    """Build the configured universe's store and open its windows (with the cross-sectional
    columns of `features.cross_section`)."""
    from candleflow.scale.cluster import build_store, plan_tasks
    from candleflow.scale.store import SeriesStore, open_dataset

    report = build_store(cfg)
    names = [t.name for t in plan_tasks(cfg)]
    d = cfg.dataset
    raw = open_dataset(cfg.universe.store, d.window, names, d.sample_rate, d.stride, cfg.features.cross_section)
    records = SeriesStore.for_config(cfg).manifest()["entries"]
    first = records[names[0]]
    per_year = universe_per_year(cfg, first.get("calendar", "24/7"), first["interval"], int(raw.end_times().max()))
    return UniverseWindows(raw, names, records, report, per_year)


def pooled_dataset(cfg: RunConfig, ds: MultiWindowDataset, parts: Mapping[str, np.ndarray]) -> MultiWindowDataset:
    """The windows a pooled model trains on: each asset's features on its own training scale
    (`dataset.asset_scaling: per_asset`) and the target as `labels.cross_section` asks."""
    if cfg.dataset.asset_scaling == "per_asset":
        ds = ds.scaled_by_series(ds.subset(parts["train"]), ds.shape[2] - len(cfg.features.cross_section))
        log.info("dataset.asset_scaling per_asset: each of %d series standardised by its training rows", len(ds.parts))
    if cfg.dataset.asset_embedding:
        ds = ds.with_identity()
        log.info(
            "dataset.asset_embedding: each window carries its asset's one-hot identity (%d columns)", len(ds.parts)
        )
    how = cfg.labels.cross_section
    if how == "raw":  # the config allows another only for a regression target across assets
        return ds
    y = cross_section_target(ds.end_times(), ds.labels_at(), how).astype(np.float32)
    labels = [y[ds.which == k] for k in range(len(ds.parts))]  # series after series, in window order
    log.info(
        "labels.cross_section %s: the pooled model learns the target %s across the assets at each time",
        how,
        "demeaned" if how == "demean" else "ranked",
    )
    return ds.with_labels(labels)


def save_asset_scales(work: Path, ds: MultiWindowDataset, records: Mapping[str, Any]) -> dict[str, Any]:
    """Write the run's per-asset scales (what predict applies) where the features were scaled;
    what metadata.json says of them."""
    if ds.scales is None or ds.pooled_scale is None:
        return {"asset_scaling": "pooled"}
    scales = AssetScales(
        list(ds.names),
        [str(records[n]["symbol"]) for n in ds.names],
        np.stack([m for m, _ in ds.scales]),
        np.stack([sd for _, sd in ds.scales]),
        ds.pooled_scale,
    )
    scales.save(work)
    return {"asset_scaling": "per_asset", "asset_scales": ASSET_SCALES}


def pooled_windows(ds: MultiWindowDataset, raw: MultiWindowDataset) -> PooledWindows:
    """`ds`'s windows with the raw targets of `raw` (the dataset before any transform)."""
    context = ds.context_at()
    if context is None:
        raise ValueError("a pooled regression's windows carry no baseline context")
    return PooledWindows(ds.end_times(), ds.which.astype(np.int64), raw.labels_at(), context)


def universe_per_year(cfg: RunConfig, calendar: str, interval: str, last_time: int) -> float:
    """Holding periods of `labels.horizon` bars in a year of the universe's calendar."""
    return periods_per_year(bars_per_year(calendar, interval, last_time), cfg.labels.horizon)


def cross_section_metrics(
    cfg: RunConfig,
    raw: MultiWindowDataset,
    train_positions: np.ndarray,
    scored: Mapping[str, tuple[Any, np.ndarray, np.ndarray]],
    per_year: float,
    forecasts: Mapping[str, Mapping[str, np.ndarray]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Each scored period's cross-section table (validation first: it chooses the baseline to
    beat, which test keeps). `forecasts`: other forecasts per period (reference models)."""
    train_ds = raw.subset(train_positions)
    train = pooled_windows(train_ds, train_ds)
    cost = cfg.backtest.fee + cfg.backtest.slippage
    out: dict[str, dict[str, Any]] = {}
    best = None
    for part in ("val", "test"):
        if part not in scored:
            continue
        part_ds, _, forecast = scored[part]
        windows = pooled_windows(part_ds, part_ds.with_labels(raw.series_labels))
        named = {"model": np.asarray(forecast, np.float64).reshape(-1)}
        named |= {k: np.asarray(v[part], np.float64).reshape(-1) for k, v in (forecasts or {}).items()}
        table = score_cross_section(cfg.labels.kind, train, windows, named, cfg.labels.horizon, cost, per_year, best)
        best = table["best_baseline"] if part == "val" else best
        out[part] = finite_or_none(table)
    return out


__all__ = [
    "UniverseWindows",
    "universe_windows",
    "save_asset_scales",
    "cross_section_metrics",
    "pooled_dataset",
    "pooled_windows",
    "universe_per_year",
]
