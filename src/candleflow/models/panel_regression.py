"""The panel GPT regressing (the seeds' stock predictor on a return or volatility target): one
output per ticker from the shared encoder, trained on the tickers that have a target (as
`labels.cross_section` asks: raw, demeaned or ranked across the tickers at each time), and
scored as a pooled run is: the pooled table over every (window, ticker) pair and the
cross-section's table against its baselines (`evaluation.cross_section_scores`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from candleflow.config import RunConfig
from candleflow.dataset.panel import PanelDataset
from candleflow.dataset.targets import training_loss
from candleflow.evaluation.baselines import TargetWindows
from candleflow.evaluation.cross_section_scores import PooledWindows, score_cross_section
from candleflow.evaluation.pooled import cross_section_target
from candleflow.evaluation.regression import evaluate_regression, finite_or_none
from candleflow.models.backend import keras
from candleflow.models.fitting import Trained
from candleflow.models.loaders import batch_loader
from candleflow.models.panel_fitting import panel_model, panel_references
from candleflow.models.training import fit

log = logging.getLogger("candleflow")


def learned_target(cfg: RunConfig, sub: PanelDataset) -> np.ndarray:
    """(windows, tickers) float32: the target the model learns (`labels.cross_section` across the
    tickers of each window's time), NaN where a ticker has none."""
    y = np.asarray(sub.labels_at(), np.float64)
    rows = np.repeat(np.arange(y.shape[0]), y.shape[1])
    return cross_section_target(rows, y.reshape(-1), cfg.labels.cross_section).reshape(y.shape).astype(np.float32)


def long_format(sub: PanelDataset, values: np.ndarray | None = None) -> tuple[PooledWindows, np.ndarray]:
    """The (window, ticker) pairs with a target as a pooled run's windows, and their positions
    into the flattened (windows x tickers) grid (`values`' rows there, where given)."""
    y = np.asarray(sub.labels_at(), np.float64)
    ok = (np.isfinite(y) & sub.panel.present()[sub.ends]).reshape(-1)
    n, m = y.shape
    ctx = sub.context_at()
    context = np.full((n * m, 1), np.nan, np.float32) if ctx is None else ctx.reshape(n * m, -1)
    where = np.flatnonzero(ok)
    windows = PooledWindows(
        np.repeat(sub.end_times(), m)[where],
        np.tile(np.arange(m), n)[where],
        y.reshape(-1)[where],
        context[where],
    )
    return windows, where


def train_and_score_panel_regression(
    cfg: RunConfig,
    work: Path,
    ds: PanelDataset,
    parts: Mapping[str, np.ndarray],
    bars_per_year: float,
    state: dict[str, Any] | None = None,
    callbacks: list | None = None,
    references: bool = True,
) -> Trained:
    """Fit on `parts['train']` (every `train_stride`-th window), score 'val' [and 'test']."""
    tc, d = cfg.training, cfg.dataset
    keras.utils.set_random_seed(tc.seed)
    train_ds, val_ds = ds.subset(parts["train"][:: d.train_stride]), ds.subset(parts["val"])
    y_train, y_val = learned_target(cfg, train_ds), learned_target(cfg, val_ds)
    if tc.shuffle_labels:  # permute each ticker's targets over time: a control that must learn nothing
        rng = np.random.default_rng(tc.seed)
        y_train = np.stack([rng.permutation(y_train[:, k]) for k in range(y_train.shape[1])], axis=1)
    eval_parts = {p: ds.subset(parts[p]) for p in ("val", "test") if p in parts}
    refs = panel_references(cfg, train_ds, y_train, eval_parts, y_val) if references else {}
    panel = ds.panel
    model, d, estimate = panel_model(cfg, train_ds, state, cfg.labels.kind, regression_loss=training_loss(cfg.labels))
    log.info(
        "panel gpt regressing %s: %d tickers x %d features, %s parameters; training on %d windows, validating on %d",
        cfg.labels.kind,
        panel.n_tickers,
        panel.n_features,
        f"{model.count_params():,}",
        len(train_ds),
        len(val_ds),
    )
    bs = int(d.batch_size)
    train = batch_loader(
        len(train_ds), lambda i: (train_ds.gather(i), y_train[i]), bs, True, tc.seed, prefetch=d.prefetch
    )
    val = batch_loader(len(val_ds), lambda i: (val_ds.gather(i), y_val[i]), bs, prefetch=d.prefetch)
    t_fit = time.perf_counter()
    fitted = fit(model, train, val, tc, work, state, callbacks)
    fit_s = time.perf_counter() - t_fit
    scored: dict[str, tuple[Any, np.ndarray, np.ndarray]] = {}
    for part, sub in eval_parts.items():
        out = np.asarray(model.predict(batch_loader(len(sub), _inputs(sub), 1024), verbose=0))
        scored[part] = (sub, sub.labels_at(), out[: len(sub)])
    metrics = _score(cfg, ds.subset(parts["train"]), scored, refs, bars_per_year)
    return Trained(model, fitted, fit_s, estimate, scored, metrics, (d.window, panel.values.shape[1]), references=refs)


def _inputs(sub: PanelDataset) -> Any:
    return lambda idx: (sub.gather(idx),)


def _score(
    cfg: RunConfig,
    train_all: PanelDataset,
    scored: dict[str, tuple[Any, np.ndarray, np.ndarray]],
    refs: dict[str, dict[str, np.ndarray]],
    per_year: float,
) -> dict[str, Any]:
    """Each period's pooled table and cross-section table (validation chooses both baselines to
    beat); `per_year`: bars in a year."""
    from candleflow.evaluation.cross_section_scores import periods_per_year

    kind, h = cfg.labels.kind, cfg.labels.horizon
    train, train_where = long_format(train_all)
    # the pooled table scores the target the model learned (raw, demeaned or ranked); the
    # cross-section's reads the raw one (its ranks are the same)
    train_tw = TargetWindows(learned_target(cfg, train_all).reshape(-1)[train_where].astype(np.float64), train.context)
    cost = cfg.backtest.fee + cfg.backtest.slippage
    metrics: dict[str, Any] = {}
    best: str | None = None
    best_cs: str | None = None
    for part, (sub, _, out) in scored.items():
        windows, where = long_format(sub)
        forecast = np.asarray(out, np.float64).reshape(-1)[where]
        others = {k: np.asarray(v[part], np.float64).reshape(-1)[where] for k, v in refs.items()}
        learned = learned_target(cfg, sub).reshape(-1)[where].astype(np.float64)
        m = evaluate_regression(
            kind,
            learned,
            forecast,
            train_tw,
            TargetWindows(learned, windows.context),
            others,
            h,
            cfg.dataset.stride,
            2 * cost,
            best=best,
        )
        cs = score_cross_section(
            kind, train, windows, {"model": forecast, **others}, h, cost, periods_per_year(per_year, h), best_cs
        )
        best = best or m["best_baseline"]
        best_cs = best_cs or cs["best_baseline"]
        m["cross_section"] = cs
        times = sub.end_times()
        when = [str(np.datetime64(int(t), "ns").astype("datetime64[s]")) for t in (times[0], times[-1])]
        m["period"] = {"from": when[0], "to": when[1]}
        metrics[part] = finite_or_none(m)
    return metrics


__all__ = ["learned_target", "long_format", "train_and_score_panel_regression"]
