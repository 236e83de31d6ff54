"""The production refit: after a run has chosen its settings on the validation period (the epochs
early stopping kept, their learning rates, the decision margin), the same family is trained again
on every labelled window, validation and test included, with exactly those settings, so the
model a trader deploys has seen the most recent data. Nothing is chosen on the refit: it has no
held-out period, and the run's metrics remain those of the validated model."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from candleflow.config import RunConfig
from candleflow.dataset.sampling import class_weights
from candleflow.dataset.windows import Windows
from candleflow.models.families import family
from candleflow.models.files import REFIT_DIR

log = logging.getLogger("candleflow")


def best_epochs(history: dict[str, list[float]], monitor: str, epochs_run: int) -> int:
    """The epoch count the validated fit kept: the best epoch by `monitor` (1-based)."""
    values = history.get(monitor) or []
    if not values:
        return max(epochs_run, 1)
    pick = np.nanargmin(values) if monitor.endswith("loss") else np.nanargmax(values)
    return int(pick) + 1


def refit(cfg: RunConfig, ds: Windows, positions: np.ndarray, trained: Any, prep: Any, out: Path) -> dict[str, Any]:
    """Train `cfg.model.kind` on the windows `positions` of `ds` (every train_stride-th) with the
    validated run's choices, save it in `out` (the family's own format) and return what the run's
    metadata records: epochs or boosting rounds, windows, the bars they end on."""
    from candleflow.models.fitting import seed_everything

    fam = family(cfg.model.kind)
    seed_everything(cfg.training.seed, network=not fam.tabular)  # a tabular refit never loads Keras
    all_ds = ds.subset(positions[:: cfg.dataset.train_stride])
    y = all_ds.labels_at()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    info: dict[str, Any] = {"windows": len(all_ds)}
    weighed = cfg.labels.rules.class_weights and cfg.training.class_weight == "balanced"  # classes only
    if fam.tabular:
        from candleflow.models.training_set import LaggedRows

        rows = LaggedRows(all_ds.shape[1], cfg.model.lags)
        x = rows.of(all_ds)
        weights = class_weights(y)[y] if weighed else None
        rounds = int(getattr(trained.model, "rounds", 0))
        model_cfg = cfg.model.model_copy(update={"gbm_trees": rounds}) if rounds else cfg.model
        assert fam.fit is not None
        # no held-out part: the validated run's boosting rounds, early stopping disarmed (its
        # "validation" rows are the training rows themselves)
        model = fam.fit(model_cfg, cfg.training.seed, x, y, weights, x, y, rows.lags)
        info["rounds"] = int(getattr(model, "rounds", 0)) or None
    else:
        fitted = trained.fitted
        epochs = best_epochs(fitted.get("history", {}), cfg.training.monitor, int(fitted.get("epochs_run", 1)))
        rates = list(fitted.get("history", {}).get("learning_rate", []))[:epochs]
        model, loader, _ = fam.network(cfg, all_ds, prep)
        weights = class_weights(y) if weighed else None
        bs = int(trained.fitted.get("batch_size", cfg.dataset.batch_size))
        train = loader(
            all_ds, bs, shuffle=True, seed=cfg.training.seed, labels=y, weights=weights, prefetch=cfg.dataset.prefetch
        )
        from candleflow.models.backend import keras

        callbacks = [keras.callbacks.LearningRateScheduler(lambda e, lr: float(rates[e]) if e < len(rates) else lr)]
        model.fit(train, epochs=epochs, shuffle=False, callbacks=callbacks, verbose=0)
        info["epochs"] = epochs
    fam.save(model, out)
    info["seconds"] = round(time.perf_counter() - t0, 1)
    info["model"] = model
    log.info(
        "refit %s on all %d labelled windows (%s) in %.1fs",
        cfg.model.kind,
        len(all_ds),
        f"{info['epochs']} epochs" if "epochs" in info else f"{info.get('rounds')} rounds",
        info["seconds"],
    )
    return info


__all__ = ["REFIT_DIR", "best_epochs", "refit"]
