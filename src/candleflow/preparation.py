"""One series from source to features and labels: the unit of work of `prepare`, run in this
process or on a Dask worker (it imports no Keras, so a worker starts light)."""

from __future__ import annotations

import logging

from .candles import Candles
from .config import RunConfig
from .features import Features, compute_features
from .labels import Labels, make_labels
from .sources import load_candles

log = logging.getLogger("candleflow")


def features_and_labels(cfg: RunConfig, candles: Candles) -> tuple[Features, Labels, int | None]:
    """Causal features and forward labels of `candles`, and how many labels the finer candles
    changed (None when `labels.fine` is not set)."""
    features = compute_features(candles, cfg.features)
    fine = None
    if cfg.labels.fine is not None:
        fine, fine_report = load_candles(cfg.labels.fine, cfg.validation)
        log.info("finer candles for same-bar touches: %s %s, %s", fine.symbol, fine.interval, fine_report.summary())
    labels, changed = make_labels(candles, cfg.labels, fine)
    if fine is not None:
        log.info("finer candles changed %d of %d labels", changed, int((labels.y >= 0).sum()))
    return features, labels, changed if fine is not None else None
