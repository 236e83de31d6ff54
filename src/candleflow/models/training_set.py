"""What every fit of one run reads (`TrainingSet`): the training and validation windows, their
labels and class weights, the periods to score and the lagged rows the tabular families see.
Keras-free, so a tabular run never loads a network library."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from candleflow.config import RunConfig
from candleflow.dataset.sampling import class_weights
from candleflow.dataset.windows import Windows
from candleflow.models.tabular import lag_features, window_lags

log = logging.getLogger("candleflow")


class LaggedRows:
    """Lagged-feature matrices of dataset parts, computed once and shared by the tabular models."""

    def __init__(self, window: int, lags: list[int] | tuple[int, ...]):
        self.lags = window_lags(list(lags), window)
        self._cache: dict[int, np.ndarray] = {}

    def of(self, part_ds: Windows) -> np.ndarray:
        key = id(part_ds)
        if key not in self._cache:
            self._cache[key] = lag_features(part_ds, self.lags)
        return self._cache[key]


@dataclass(frozen=True)
class TrainingSet:
    """What every fit of one run reads: the training windows (every `train_stride`-th), their
    labels (permuted for a control run) and class weights, the validation windows, every period
    to score, and the lagged rows the tabular families see."""

    train: Windows
    val: Windows
    y: np.ndarray
    weights: np.ndarray | None
    eval_parts: dict[str, Windows]
    rows: LaggedRows
    train_windows: int  # before the stride


def training_set(cfg: RunConfig, ds: Windows, parts: Mapping[str, np.ndarray]) -> TrainingSet:
    """The run's TrainingSet from its dataset and split positions."""
    tc = cfg.training
    train_ds, val_ds = ds.subset(parts["train"][:: cfg.dataset.train_stride]), ds.subset(parts["val"])
    y_train = train_ds.labels_at()
    if tc.shuffle_labels:
        y_train = np.random.default_rng(tc.seed).permutation(y_train)
        log.warning("training labels permuted (training.shuffle_labels): a control run that must learn nothing")
    balanced = tc.class_weight == "balanced" and not cfg.dataset.balanced and cfg.labels.rules.class_weights
    eval_parts = {p: ds.subset(parts[p]) for p in ("val", "test") if p in parts}
    eval_parts["val"] = val_ds
    return TrainingSet(
        train_ds,
        val_ds,
        y_train,
        class_weights(y_train) if balanced else None,
        eval_parts,
        LaggedRows(train_ds.shape[1], cfg.model.lags),
        int(parts["train"].size),
    )


__all__ = ["LaggedRows", "TrainingSet", "training_set"]
