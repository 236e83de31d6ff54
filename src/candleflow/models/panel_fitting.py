"""A panel run's training and scoring: the panel GPT fitted on the training windows (class
weights from every ticker's labels), then per evaluated period the metrics over every
(window, ticker) label against the baselines, per ticker, and the cross-sectional backtest."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from candleflow.config import RunConfig
from candleflow.dataset.panel import PanelDataset
from candleflow.dataset.sampling import class_weights
from candleflow.evaluation.cross_section import cross_sectional_backtest, cross_sectional_ic
from candleflow.evaluation.metrics import classification_metrics, decide, evaluate, resolve_margin
from candleflow.models.backend import keras
from candleflow.models.families import family, learning_rate
from candleflow.models.fitting import Trained
from candleflow.models.loaders import batch_loader
from candleflow.models.loading import model_from
from candleflow.models.memory import auto_batch_size, estimate_training_memory
from candleflow.models.panel_model import build_panel_gpt
from candleflow.models.tabular import window_lags
from candleflow.models.training import fit

log = logging.getLogger("candleflow")


def train_and_score_panel(
    cfg: RunConfig,
    work: Path,
    ds: PanelDataset,
    parts: Mapping[str, np.ndarray],
    bars_per_year: float,
    state: dict[str, Any] | None = None,
    callbacks: list | None = None,
    references: bool = True,
) -> Trained:
    """Fit on `parts['train']` (every `train_stride`-th window), score 'val' [and 'test'] against
    the baselines and, with `references`, the pooled reference models."""
    tc, d = cfg.training, cfg.dataset
    keras.utils.set_random_seed(tc.seed)
    train_ds = ds.subset(parts["train"][:: d.train_stride])
    y_train = train_ds.labels_at()
    if tc.shuffle_labels:  # permute each ticker's labels over time: a control that must learn nothing
        rng = np.random.default_rng(tc.seed)
        y_train = np.stack([rng.permutation(y_train[:, k]) for k in range(y_train.shape[1])], axis=1)
    flat = y_train[y_train >= 0]
    weights = class_weights(flat).tolist() if tc.class_weight == "balanced" else None
    eval_parts = {p: ds.subset(parts[p]) for p in ("val", "test") if p in parts}
    refs = panel_references(cfg, train_ds, y_train, eval_parts) if references else {}
    panel = ds.panel
    model, d, estimate = panel_model(cfg, train_ds, state, "classes", class_weights=weights, return_weighted=d.returns)
    log.info(
        "panel gpt: %d tickers x %d features (+ presence), %s parameters; training on %d windows, validating on %d",
        panel.n_tickers,
        panel.n_features,
        f"{model.count_params():,}",
        len(train_ds),
        parts["val"].size,
    )

    val_ds = ds.subset(parts["val"])
    bs = int(d.batch_size)
    train = batch_loader(len(train_ds), _labelled(train_ds, y_train, d.returns), bs, True, tc.seed, prefetch=d.prefetch)
    val = batch_loader(len(val_ds), _labelled(val_ds, val_ds.labels_at(), d.returns), bs, prefetch=d.prefetch)
    t_fit = time.perf_counter()
    fitted = fit(model, train, val, tc, work, state, callbacks)
    fit_s = time.perf_counter() - t_fit

    scored, metrics = _score_panel(cfg, model, ds, parts, flat, bars_per_year, refs)
    return Trained(model, fitted, fit_s, estimate, scored, metrics, (d.window, panel.values.shape[1]))


def panel_model(
    cfg: RunConfig, train_ds: PanelDataset, state: dict[str, Any] | None, what: str, **kwargs: Any
) -> tuple[Any, Any, dict[str, float]]:
    """The panel GPT (or the one saved with a resume state) normalised with the training windows'
    moments, the dataset config with `batch_size: auto` resolved for it, and its training memory
    estimate; `kwargs` go to `build_panel_gpt` (class weights, or the regression loss)."""
    d, panel = cfg.dataset, train_ds.panel
    mean, var = train_ds.moments()
    model = model_from(
        state,
        lambda: build_panel_gpt(
            cfg.model, d.window, panel.values.shape[1], panel.n_tickers, mean, var, learning_rate(cfg), **kwargs
        ),
    )
    if d.batch_size == "auto":
        bs, why = auto_batch_size(model, len(train_ds), cfg.training.memory_share)
        log.info("dataset.batch_size auto (panel gpt, %s): %s", what, why)
        d = d.model_copy(update={"batch_size": bs})
    return model, d, estimate_training_memory(model, int(d.batch_size))


def _labelled(sub: PanelDataset, y: np.ndarray, returns: bool) -> Callable[[np.ndarray], tuple[Any, Any]]:
    """A batch's (windows, labels); with `dataset.returns` each label carries the ticker's
    return R beside it (the return-weighted loss reads it)."""
    if not returns:
        return lambda idx: (sub.gather(idx), y[idx])
    r = np.nan_to_num(sub.returns_at()).astype(np.float32)
    return lambda idx: (sub.gather(idx), np.stack([y[idx].astype(np.float32), r[idx]], axis=-1))


def _score_panel(
    cfg: RunConfig,
    model: Any,
    ds: PanelDataset,
    parts: Mapping[str, np.ndarray],
    flat_train: np.ndarray,
    bars_per_year: float,
    refs: dict[str, dict[str, np.ndarray]],
) -> tuple[dict[str, tuple[Any, np.ndarray, np.ndarray]], dict[str, Any]]:
    """Each evaluated period's windows, labels and probabilities, and its metrics at the decision
    margin (`auto`: chosen on validation's balanced accuracy)."""
    scored: dict[str, tuple[Any, np.ndarray, np.ndarray]] = {}
    metrics: dict[str, Any] = {}
    for part in [p for p in ("val", "test") if p in parts]:
        sub = ds.subset(parts[part])
        probs = np.asarray(model.predict(batch_loader(len(sub), _inputs_of(sub), 1024), verbose=0))[: len(sub)]
        scored[part] = (sub, sub.labels_at(), probs)
    _, y_val, p_val = scored["val"]
    choice = resolve_margin(cfg.evaluation.decision_margin, y_val[y_val >= 0], p_val[y_val >= 0])
    mcfg = cfg.model_copy(update={"evaluation": cfg.evaluation.model_copy(update={"decision_margin": choice.margin})})
    for part, (sub, y, probs) in scored.items():
        metrics[part] = panel_metrics(
            mcfg, sub, y, probs, flat_train, bars_per_year, {k: v[part] for k, v in refs.items()}
        )
        if choice.to_json() is not None:
            metrics[part]["decision_margin_auto"] = choice.to_json()
    return scored, metrics


def _inputs_of(sub: PanelDataset):
    return lambda idx: (sub.gather(idx),)


def ticker_rows(sub: PanelDataset, lags: list[int]) -> np.ndarray:
    """(windows x tickers, lags x features) float32: each (window, ticker) pair's own lagged
    feature rows, ticker-major within a window, as the tabular families read a series' windows."""
    p = sub.panel
    n, f = p.n_tickers, p.n_features
    rows = np.array([sub.window - 1 - lag for lag in window_lags(lags, sub.window)])
    out = np.empty((len(sub) * n, rows.size * f), np.float32)
    for lo in range(0, len(sub), 2048):
        idx = np.arange(lo, min(lo + 2048, len(sub)))
        x = sub.gather(idx)[:, rows, : n * f].reshape(idx.size, rows.size, n, f)
        out[lo * n : (lo + idx.size) * n] = x.transpose(0, 2, 1, 3).reshape(idx.size * n, rows.size * f)
    return out


def panel_references(
    cfg: RunConfig,
    train_ds: PanelDataset,
    y_train: np.ndarray,
    eval_parts: dict[str, PanelDataset],
    y_val: np.ndarray | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """{reference kind: {part: outputs}}: each tabular reference family (evaluation.reference_models)
    fitted once on every ticker's lagged rows, pooled (one model for all tickers, as the panel
    GPT's encoder is shared), early-stopped on validation (`y_val`, default its labels). Classes
    (int labels, -1: none; balanced class weights as configured) give (windows, tickers, 3)
    probabilities; a regression target (float, NaN: none) gives (windows, tickers) forecasts."""
    kinds = [k for k in cfg.evaluation.reference_models if family(k).tabular]
    if not kinds:
        return {}
    regress = bool(np.issubdtype(y_train.dtype, np.floating))
    labelled = np.isfinite if regress else (lambda v: v >= 0)
    as_target = (lambda v: v) if regress else (lambda v: v.astype(np.int64))
    lags = window_lags(cfg.model.lags, train_ds.window)
    x, y = ticker_rows(train_ds, lags), y_train.reshape(-1)
    keep = labelled(y)
    xs = {p: ticker_rows(d, lags) for p, d in eval_parts.items()}
    yv = (eval_parts["val"].labels_at() if y_val is None else y_val).reshape(-1)
    w = class_weights(y[keep]) if not regress and cfg.training.class_weight == "balanced" else None
    n = train_ds.panel.n_tickers
    shape = (n,) if regress else (n, -1)
    out: dict[str, dict[str, np.ndarray]] = {}
    for kind in kinds:
        t0 = time.perf_counter()
        fit_rows = family(kind).fit
        assert fit_rows is not None
        ref = fit_rows(
            cfg.model,
            cfg.training.seed,
            x[keep],
            as_target(y[keep]),
            None if w is None else w[y[keep]],
            xs["val"][labelled(yv)],
            as_target(yv[labelled(yv)]),
            lags,
        )
        out[kind] = {p: ref.predict_proba(xs[p]).reshape(len(d), *shape) for p, d in eval_parts.items()}
        log.info(
            "reference model %s on %d (window, ticker) rows: fitted in %.1fs",
            kind,
            int(keep.sum()),
            time.perf_counter() - t0,
        )
    return out


def panel_metrics(
    cfg: RunConfig,
    sub: PanelDataset,
    y: np.ndarray,
    probs: np.ndarray,
    y_train_flat: np.ndarray,
    bars_per_year: float,
    references: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Pooled metrics over every (window, ticker) with a label, against the baselines and the
    reference models fitted on the same pairs; balanced accuracy per ticker; and the
    cross-sectional backtest of the period."""
    valid = y >= 0
    margin = cfg.evaluation.margin
    refs = {k: v[valid] for k, v in (references or {}).items()}
    block = max(2 * cfg.labels.horizon, 24) * y.shape[1]  # pooled (window, ticker) pairs in time order
    m = evaluate(y[valid], probs[valid], y_train_flat, margin, cfg.backtest.seed, refs, block=block)
    decisions = decide(probs.reshape(-1, probs.shape[-1]), margin).reshape(y.shape)
    m["n_labels"] = int(valid.sum())
    m["tickers"] = {
        name: {
            "labels": int(valid[:, k].sum()),
            "balanced_accuracy": classification_metrics(y[valid[:, k], k], decisions[valid[:, k], k])[
                "balanced_accuracy"
            ]
            if valid[:, k].any()
            else None,
        }
        for k, name in enumerate(sub.panel.names)
    }
    bt = cfg.backtest
    present = sub.panel.present()[sub.ends]
    scored = {"model": probs, **(references or {})}
    m["cross_section_ic"] = {  # the ranking score P(LONG) - P(SHORT) against the forward returns, per time
        name: cross_sectional_ic(p[..., 2] - p[..., 0], sub.returns_at(), present) for name, p in scored.items()
    }
    m["cross_section"] = cross_sectional_backtest(
        probs,
        sub.returns_at(),
        present,
        cfg.labels.horizon,
        bt.top_k,
        bt.fee + bt.slippage,
        bars_per_year,
        bt.seed,
    )
    return m
