"""One series from source to windows and a purged split (`prepare`), and its unit of work,
source to features and labels (`features_and_labels`), run in this process or on a Dask worker.
Imports no Keras, so a worker starts light."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from candleflow.config import RunConfig
from candleflow.data.candles import Candles
from candleflow.data.load import load_candles
from candleflow.data.validate import ValidationReport
from candleflow.dataset.cache import DatasetCache, cache_key
from candleflow.dataset.features import Features, compute_features
from candleflow.dataset.labels import Labels, has_label, take_profit_distances
from candleflow.dataset.split import Split, chronological_split
from candleflow.dataset.targets import make_labels
from candleflow.dataset.task_arrays import task_arrays
from candleflow.dataset.windows import WindowDataset
from candleflow.errors import DataError

log = logging.getLogger("candleflow")


def load_assets(cfg: RunConfig, main: Any = None) -> dict[str, Candles]:
    """The validated candles of every `features.assets` series. A source with a date range takes
    the main source's (`main`, default `cfg.source`) where both have one, so a run predicting later
    months reads the other assets over the same months."""
    main = main if main is not None else cfg.source
    out: dict[str, Candles] = {}
    for asset in cfg.features.assets:
        src = asset.source
        if all(hasattr(x, "start") and hasattr(x, "end") for x in (src, main)):
            src = src.model_copy(update={"start": main.start, "end": main.end})
        candles, report = load_candles(src, cfg.validation, cfg.cache)
        log.info("features.assets %s: %s %s, %s", asset.name, candles.symbol, candles.interval, report.summary())
        out[asset.name] = candles
    return out


def features_and_labels(
    cfg: RunConfig, candles: Candles, others: dict[str, Candles] | None = None
) -> tuple[Features, Labels, int | None]:
    """Causal features and forward labels of `candles`, and how many labels the finer candles
    changed (None when `labels.fine` is not set)."""
    if others is None and cfg.features.assets:
        others = load_assets(cfg)
    features = compute_features(candles, cfg.features, others)
    fine = None
    if cfg.labels.fine is not None:
        fine, fine_report = load_candles(cfg.labels.fine, cfg.validation, cfg.cache)
        log.info("finer candles for same-bar touches: %s %s, %s", fine.symbol, fine.interval, fine_report.summary())
    labels, changed = make_labels(candles, cfg.labels, fine)
    if fine is not None:
        log.info("finer candles changed %d of %d labels", changed, int(has_label(labels.y).sum()))
    return features, labels, changed if fine is not None else None


@dataclass
class PreparedData:
    """Everything between the source and the model: candles, features, labels, windows, split."""

    config: RunConfig
    candles: Candles
    report: ValidationReport
    features: Features
    labels: Labels
    dataset: WindowDataset
    split: Split
    fine_changed: int | None = None  # labels the finer candles changed (None: no finer candles)
    cache: str | None = None  # 'hit' or 'miss' in the prepared-data cache; None without one

    def summary(self) -> dict[str, Any]:
        """Shapes, class balance per split part and memory: what `candleflow prepare` prints."""
        parts, arrays = {}, task_arrays(self.config.labels.kind)
        for name, pos in self.split.parts.items():
            y = self.dataset.labels_at(pos)
            parts[name] = {
                "windows": int(pos.size),
                "purged": self.split.purged.get(name, 0),
                "first_end": self.candles.time_str(int(self.dataset.ends[pos[0]])) if pos.size else None,
                "last_end": self.candles.time_str(int(self.dataset.ends[pos[-1]])) if pos.size else None,
                **arrays.summary(y),
            }
        return {
            "symbol": self.candles.symbol,
            "interval": self.candles.interval,
            "rows": len(self.candles),
            "fingerprint": self.candles.fingerprint,
            "segments": int(len(self.candles.segments)),
            "features": self.features.descriptions,
            "feature_shape": list(self.features.values.shape),
            "window_shape": list(self.dataset.shape[1:]),
            "windows": len(self.dataset),
            "labels": self.labels.counts(),
            "label_kind": self.config.labels.kind,
            "labels_changed_by_finer_candles": self.fine_changed,
            **({"barriers": barrier_costs(self.candles, self.config)} if arrays.barriers else {}),
            "cache": self.cache,
            "split": parts,
            "feature_mb": round(self.features.values.nbytes / 2**20, 2),
            "materialised_windows_mb": round(self.dataset.materialised_nbytes() / 2**20, 1),
        }


def _longest_warmup(cfg: RunConfig) -> str:
    """' (rsi(5000): 5,000 bars)': the feature whose warm-up is the longest, for the too-short line."""
    from candleflow.dataset.features import resolve_feature

    bars: dict[str, int] = {}
    for feature in cfg.features.names:
        spec, params = resolve_feature(feature)
        bars[feature] = int(spec.warmup(cfg.features, *params))
    longest = max(bars, key=lambda k: bars[k], default="")
    return f" ({longest}: {bars[longest]:,} bars)" if longest and bars[longest] > 0 else ""


def barrier_costs(candles: Candles, cfg: RunConfig) -> dict[str, float]:
    """The median take-profit distance against the backtest's round-trip cost, both as fractions
    of the price: labels whose take-profit cannot pay the round trip cannot make money."""
    tp = take_profit_distances(candles, cfg.labels)
    median = float(np.nanmedian(tp)) if np.isfinite(tp).any() else float("nan")
    return {"median_take_profit": median, "round_trip_cost": 2 * (cfg.backtest.fee + cfg.backtest.slippage)}


def _warn_if_barriers_cannot_pay(candles: Candles, cfg: RunConfig) -> None:
    b = barrier_costs(candles, cfg)
    if b["median_take_profit"] < b["round_trip_cost"] * (1 - 1e-9):
        log.warning(
            "labels: the median take-profit is %.3f%% of the price, below the round trip of %.3f%% "
            "(2 x (backtest.fee + backtest.slippage)): a typical LONG or SHORT label loses %.3f%% even when it "
            "is right; set labels.min_barrier: costs (or a longer labels.horizon or larger labels.tp)",
            100 * b["median_take_profit"],
            100 * b["round_trip_cost"],
            100 * (b["round_trip_cost"] - b["median_take_profit"]),
        )


def prepare(cfg: RunConfig, cache: DatasetCache | None = None) -> PreparedData:
    """Source -> validated candles -> features, labels -> windows -> purged chronological split.
    With a cache (or `dataset.cache_dir`), features and labels come memory-mapped from an entry
    keyed by the candles' fingerprint and the config that shapes them, built on a miss."""
    t0 = time.perf_counter()
    candles, report = load_candles(cfg.source, cfg.validation, cfg.cache)
    log.info("candles: %s %s, %s", candles.symbol, candles.interval, report.summary())
    if task_arrays(cfg.labels.kind).barriers:  # a regression target has no take-profit to pay the round trip
        _warn_if_barriers_cannot_pay(candles, cfg)
    if cache is None and cfg.dataset.cache_dir:
        cache = DatasetCache(Path(cfg.dataset.cache_dir), max_bytes=cfg.cache.max_bytes)
    others = load_assets(cfg) if cfg.features.assets else None
    key = cache_key(
        candles.fingerprint,
        {
            "assets": {name: c.fingerprint for name, c in (others or {}).items()},
            "features": cfg.features.model_dump(mode="json"),
            "labels": {**cfg.labels.model_dump(mode="json"), "floor": cfg.labels.floor},
            "validation": cfg.validation.model_dump(mode="json"),
        },
    )
    entry = cache.load(key) if cache is not None else None
    if entry is not None:
        arrays, meta = entry["arrays"], entry["meta"]
        features = Features(arrays["features"], meta["feature_names"], meta["warmup"])
        labels = Labels(arrays["labels"], arrays["t1"], arrays.get("context"))
        changed = meta["fine_changed"]
    else:
        features, labels, changed = features_and_labels(cfg, candles, others)
        if cache is not None:
            cache.save(
                key,
                {"features": features.values, "labels": labels.y, "t1": labels.t1}
                | ({} if labels.context is None else {"context": labels.context}),
                {
                    "fingerprint": candles.fingerprint,
                    "feature_names": features.names,
                    "warmup": features.warmup,
                    "fine_changed": changed,
                },
            )
    dataset = WindowDataset.from_arrays(
        features.values,
        labels.y,
        candles.segments,
        cfg.dataset.window,
        cfg.dataset.sample_rate,
        cfg.dataset.stride,
        labels.context,
    )
    if len(dataset) == 0:
        longest = int((candles.segments[:, 1] - candles.segments[:, 0]).max()) if len(candles.segments) else 0
        raise DataError(
            f"no complete {cfg.dataset.window}-bar window with a label: {len(candles)} rows in "
            f"{len(candles.segments)} segments (the longest {longest:,} bars) are too short for the features' "
            f"warm-up of {features.warmup:,} bars{_longest_warmup(cfg)}, a window of {cfg.dataset.window} and "
            f"a label's horizon of {cfg.labels.horizon}"
        )
    split = chronological_split(
        dataset.ends, labels.t1, cfg.dataset.val_fraction, cfg.dataset.test_fraction, cfg.dataset.embargo
    )
    log.info(
        "prepared %d windows of %s in %.2fs; split %s",
        len(dataset),
        dataset.shape[1:],
        time.perf_counter() - t0,
        split.summary(),
    )
    return PreparedData(
        cfg,
        candles,
        report,
        features,
        labels,
        dataset,
        split,
        changed,
        None if cache is None else ("hit" if entry is not None else "miss"),
    )
