"""Walk-forward for a panel: the panel GPT (with each seed) and the pooled reference models
retrained on each fold of the panel's windows, their test predictions over every (window, ticker)
label stitched, and each one's edge over the best naive baseline (and the GPT's and the linear
model's over LightGBM) with a moving-block bootstrap 95% interval, blocks of whole windows (all
tickers of a time stay together), as the single-series study reports them."""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from candleflow.config import RunConfig
from candleflow.dataset.panel import PanelDataset
from candleflow.dataset.split import walk_forward_splits
from candleflow.errors import ConfigError
from candleflow.evaluation.bootstrap import block_indices, ci95
from candleflow.evaluation.cross_section import cross_sectional_backtest
from candleflow.evaluation.metrics import baseline_predictions, classification_metrics, decide
from candleflow.fs.atomic import write_json, write_text
from candleflow.fs.guard import check_name
from candleflow.models import families as registry
from candleflow.studies.common import BASELINES, WalkForwardResult

log = logging.getLogger("candleflow")


def panel_walkforward(
    cfg: RunConfig,
    folds: int = 6,
    seeds: int = 1,
    name: str | None = None,
    val_fraction: float = 0.15,
    resamples: int = 1000,
    progress: Callable[[str], None] | None = None,
) -> WalkForwardResult:
    """The panel's study in `runs_dir/walkforward-NAME/` (summary.json, config.yaml); returns it."""
    from candleflow.models.panel_fitting import panel_references, train_and_score_panel
    from candleflow.scale.panel import panel_inputs

    registry.family(cfg.model.kind).check_layout(cfg.layout)
    name = check_name(name or f"{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}", "walk-forward name")
    folder = Path(cfg.output.runs_dir) / f"walkforward-{name}"
    folder.mkdir(parents=True, exist_ok=True)
    write_text(folder / "config.yaml", cfg.to_yaml())
    inputs = panel_inputs(cfg)  # the same inputs a panel run builds
    d, panel, ds, names = cfg.dataset, inputs.panel, inputs.dataset, inputs.names
    interval, per_year = inputs.interval, inputs.per_year
    label_row = np.searchsorted(panel.times, panel.label_end)  # each row's latest label end, as a row
    splits = walk_forward_splits(ds.ends, label_row, folds, val_fraction, d.embargo)
    refs = [k for k in cfg.evaluation.reference_models if registry.family(k).tabular]
    seed_list = [cfg.training.seed + s for s in range(seeds)]
    probs: dict[str, dict[int, list[np.ndarray]]] = {cfg.model.kind: {s: [] for s in seed_list}}
    probs.update({k: {0: []} for k in refs})
    seconds = dict.fromkeys(probs, 0.0)
    tests, class_counts = [], []
    for k, split in enumerate(splits):
        test = ds.subset(split.parts["test"])
        tests.append(test)
        train_ds = ds.subset(split.parts["train"][:: d.train_stride])
        y_train = train_ds.labels_at()
        class_counts.append(np.bincount(y_train[y_train >= 0], minlength=3))
        t0 = time.perf_counter()
        fitted = panel_references(cfg, train_ds, y_train, {"val": ds.subset(split.parts["val"]), "test": test})
        for kind in refs:
            probs[kind][0].append(fitted[kind]["test"])
            seconds[kind] += (time.perf_counter() - t0) / max(len(refs), 1)
        for seed in seed_list:
            fcfg = cfg.model_copy(deep=True)
            fcfg.training.seed = seed
            work = Path(tempfile.mkdtemp(prefix=".work-", dir=folder))
            t0 = time.perf_counter()
            try:
                trained = train_and_score_panel(fcfg, work, ds, split.parts, per_year, references=False)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            seconds[cfg.model.kind] += time.perf_counter() - t0
            probs[cfg.model.kind][seed].append(trained.scored["test"][2])
            if progress is not None:
                progress(f"fold {k + 1}/{len(splits)} seed {seed}")
    summary = summarise_panel(cfg, tests, probs, class_counts, seconds, per_year, resamples)
    summary["folds"] = [
        {"fold": k + 1, **{p: int(v.size) for p, v in s.parts.items()}, "purged": s.purged}
        for k, s in enumerate(splits)
    ]
    summary["tickers"] = names
    summary["interval"] = interval
    write_json(folder / "summary.json", summary)
    return WalkForwardResult(folder, summary)


def _panel_baselines(
    cfg: RunConfig, tests: list[PanelDataset], class_counts: list[np.ndarray], y: np.ndarray
) -> dict[str, np.ndarray]:
    """Each naive baseline's decisions over the stitched (window, ticker) labels, drawn per fold
    from that fold's training class counts (-1 where there is no label)."""
    baselines: dict[str, np.ndarray] = {b: np.full(y.shape, -1) for b in BASELINES}
    offset = 0
    for k, (t, counts) in enumerate(zip(tests, class_counts, strict=True)):
        yk = y[offset : offset + len(t)]
        drawn = baseline_predictions(np.repeat(np.arange(3), counts), int((yk >= 0).sum()), cfg.training.seed + k)
        for b, pred in drawn.items():
            part = baselines[b][offset : offset + len(t)]
            part[yk >= 0] = pred
        offset += len(t)
    return baselines


def summarise_panel(
    cfg: RunConfig,
    tests: list[PanelDataset],
    probs: dict[str, dict[int, list[np.ndarray]]],
    class_counts: list[np.ndarray],
    seconds: dict[str, float],
    per_year: float,
    resamples: int,
) -> dict[str, Any]:
    """The family table of the stitched (window, ticker) test labels, with block-bootstrap CIs."""
    if cfg.evaluation.decision_margin == "auto":
        raise ConfigError("a panel walk-forward decides with a fixed evaluation.decision_margin (auto is for runs)")
    margin, bt = float(cfg.evaluation.decision_margin), cfg.backtest
    y = np.concatenate([t.labels_at() for t in tests])  # (W, N), -1: no label
    valid = y >= 0
    returns = np.concatenate([t.returns_at() for t in tests])
    present = np.concatenate([t.panel.present()[t.ends] for t in tests])
    baselines = _panel_baselines(cfg, tests, class_counts, y)
    rng = np.random.default_rng(cfg.training.seed)
    block = max(1, int(round(len(y) ** (1 / 3))))
    idx = block_indices(len(y), block, resamples, rng)

    def resampled(pred: np.ndarray) -> np.ndarray:
        return _pooled_balanced_accuracy(y, pred, idx)

    base_point = {b: classification_metrics(y[valid], p[valid])["balanced_accuracy"] for b, p in baselines.items()}
    best = max(base_point, key=lambda b: base_point[b])
    best_base = resampled(baselines[best])
    decided = {
        fam: {s: decide(np.concatenate(parts).reshape(-1, 3), margin).reshape(y.shape) for s, parts in runs.items()}
        for fam, runs in probs.items()
    }
    stacked = {fam: {s: np.concatenate(parts) for s, parts in runs.items()} for fam, runs in probs.items()}
    gbm = np.mean([resampled(p) for p in decided["lightgbm"].values()], axis=0) if "lightgbm" in decided else None
    table = {}
    for fam, runs in decided.items():
        ba = np.array([classification_metrics(y[valid], p[valid])["balanced_accuracy"] for p in runs.values()])
        f1 = np.array([classification_metrics(y[valid], p[valid])["macro_f1"] for p in runs.values()])
        res = np.mean([resampled(p) for p in runs.values()], axis=0)
        books = [
            cross_sectional_backtest(
                p, returns, present, cfg.labels.horizon, bt.top_k, bt.fee + bt.slippage, per_year, bt.seed
            )["model"]
            for p in stacked[fam].values()
        ]
        entry = {
            "balanced_accuracy_mean": float(ba.mean()),
            "balanced_accuracy_std": float(ba.std(ddof=1)) if ba.size > 1 else 0.0,
            "macro_f1_mean": float(f1.mean()),
            "edge_over_baseline": float(ba.mean() - base_point[best]),
            "edge_over_baseline_ci95": ci95(res - best_base),
            "sharpe_mean": float(np.mean([b["sharpe"] for b in books])),
            "total_return_mean": float(np.mean([b["total_return"] for b in books])),
            "training_seconds": round(seconds[fam], 1),
        }
        if gbm is not None and fam != "lightgbm":
            gbm_point = classification_metrics(y[valid], decided["lightgbm"][0][valid])["balanced_accuracy"]
            entry["edge_over_lightgbm"] = float(ba.mean() - gbm_point)
            entry["edge_over_lightgbm_ci95"] = ci95(res - gbm)
        table[fam] = entry
    times = np.concatenate([t.end_times() for t in tests])
    return {
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "layout": cfg.layout,
        "symbol": f"{y.shape[1]} tickers",
        "stitched": {
            "windows": int(len(y)),
            "labels": int(valid.sum()),
            "from": str(np.datetime64(int(times[0]), "ns"))[:19],
            "to": str(np.datetime64(int(times[-1]), "ns"))[:19],
        },
        "seeds": sorted(probs[next(iter(probs))]),
        "bootstrap": {"resamples": resamples, "block_windows": block, "method": "moving block of whole windows"},
        "baselines": base_point,
        "table": table,
    }


def _pooled_balanced_accuracy(y: np.ndarray, pred: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Balanced accuracy over every (window, ticker) label of each resample of whole windows."""
    r = idx.shape[0]
    yy, pp = y[idx], pred[idx]  # (r, W, N)
    ok = yy >= 0
    codes = np.arange(r)[:, None, None] * 9 + np.maximum(yy, 0) * 3 + np.maximum(pp, 0)
    cm = np.bincount(codes[ok].ravel(), minlength=r * 9).reshape(r, 3, 3).astype(np.float64)
    support = cm.sum(axis=2)
    recall = np.divide(np.diagonal(cm, axis1=1, axis2=2), support, out=np.zeros((r, 3)), where=support > 0)
    return recall.sum(axis=1) / np.maximum((support > 0).sum(axis=1), 1)


__all__ = ["panel_walkforward"]
