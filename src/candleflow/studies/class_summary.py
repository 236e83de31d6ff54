"""A classifier's walk-forward study: each fold's probabilities and decision rule, the folds
stitched per family and seed, their balanced accuracy and backtest against the naive baselines
with block-bootstrap intervals, and the equity curves its report draws."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from candleflow.config import RunConfig
from candleflow.data.candles import Candles
from candleflow.dataset.prepare import PreparedData
from candleflow.dataset.split import Split
from candleflow.dataset.windows import WindowDataset
from candleflow.errors import ConfigError
from candleflow.evaluation.backtest import buy_and_hold, configured_backtest, performance
from candleflow.evaluation.bootstrap import balanced_accuracy_resampled, block_indices, ci95
from candleflow.evaluation.funding import funding_for
from candleflow.evaluation.metrics import baseline_predictions, choose_margin, classification_metrics, decide
from candleflow.evaluation.trading import sides_of, trade_score
from candleflow.fs.atomic import write_json
from candleflow.models.fitting import Trained
from candleflow.studies.common import (
    BASELINES,
    RESULT,
    SeriesFolds,
    load_fold,
    study_header,
)

log = logging.getLogger("candleflow")


def fold_decisions(
    cfg: RunConfig, prep: PreparedData, train_ds: WindowDataset, trained: Trained, y_true: np.ndarray, probs: np.ndarray
) -> dict[str, Any]:
    """A classifier fold's probabilities, its validation period's too (a study re-chooses its
    decision rule by --objective), its training class counts and decision margin."""
    y_train = train_ds.labels_at()
    train_ends = train_ds.ends
    val_ds, val_y, val_probs = trained.scored["val"]
    return {
        "val_ends": val_ds.ends.astype(np.int64),
        "val_y": np.asarray(val_y).astype(np.int8),
        "val_probs": np.asarray(val_probs, np.float32),
        "y": y_true.astype(np.int8),
        "probs": probs.astype(np.float32),
        "class_counts": np.bincount(y_train[y_train >= 0], minlength=3),
        "margin": np.float64(trained.metrics["test"]["decision_margin"]),  # the fold's rule (auto: on its val)
        "train_last_end": np.int64(train_ends.max()),
        "train_last_label_end": np.int64(prep.labels.t1[train_ends].max()),
    }


def summarise_decisions(f: SeriesFolds) -> dict[str, Any]:
    """A classifier study: each family's stitched decisions, their backtest, the equity curves."""
    from candleflow.runs.walkforward_report import write_walkforward_report

    cfg, ev = f.cfg, f.cfg.evaluation
    summary = summarise(cfg, f.prep, f.splits, f.folder, f.families, f.seed_list, f.resamples, f.objective)
    summary |= {"target": cfg.labels.kind, "target_task": "classify", "rolling": f.rolling}
    summary["objective"] = f.objective or (
        f"{ev.margin_objective} (chosen when each fold trained)"
        if ev.decision_margin == "auto"
        else f"decision_margin {ev.decision_margin}"
    )
    write_json(f.folder / RESULT, summary)
    curves = equity_curves(cfg, f.prep, f.folder, f.families, f.seed_list[0])
    write_walkforward_report(f.folder, summary, curves)
    return summary


def _margin_rule(
    cfg: RunConfig, prep: PreparedData, objective: str | None, funding: np.ndarray | None
) -> Callable[[dict[str, np.ndarray]], float]:
    """A fold's decision rule: chosen again on its validation period by the study's --objective,
    else the one it chose when it trained (decision_margin auto) or the configured one."""
    chosen: dict[int, float] = {}

    def margin(p: dict[str, np.ndarray]) -> float:
        if objective is None:
            return float(p["margin"]) if "margin" in p else cfg.evaluation.margin
        key = id(p)
        if key not in chosen:
            if "val_probs" not in p:
                raise ConfigError(
                    "--objective re-chooses each fold's decision rule on its validation period, which this "
                    "study's fold files do not hold (written by an older candleflow); rerun it under another --name"
                )
            score = None
            if objective != "balanced_accuracy":
                ends_v = p["val_ends"]
                score = lambda d: trade_score(prep.candles, ends_v, d, cfg, objective, funding)  # noqa: E731
            chosen[key] = choose_margin(p["val_y"], p["val_probs"], score=score)[0]
        return chosen[key]

    return margin


@dataclass
class _Stitched:
    """One family's folds, per seed: the fold files, the stitched test period, per-fold scores."""

    parts: dict[int, list[dict[str, np.ndarray]]]
    runs: dict[int, dict[str, np.ndarray]]
    per_fold: dict[int, list[dict[str, Any]]]
    seconds: float


def _stitch_family(
    folder: Path, family: str, seeds: list[int], n_folds: int, margin: Callable[[dict[str, np.ndarray]], float]
) -> _Stitched:
    out = _Stitched({}, {}, {}, 0.0)
    for seed in seeds:
        parts = [load_fold(folder / "folds" / f"{family}-s{seed}-f{k}.npz") for k in range(n_folds)]
        out.parts[seed] = parts
        out.seconds += sum(float(p["fit_seconds"]) for p in parts)
        decided = [decide(p["probs"], margin(p)) for p in parts]
        out.runs[seed] = {
            "ends": np.concatenate([p["ends"] for p in parts]),
            "y": np.concatenate([p["y"] for p in parts]),
            "probs": np.concatenate([p["probs"] for p in parts]),
            "pred": np.concatenate(decided),
        }
        out.per_fold[seed] = [
            {"fold": k + 1, "windows": int(p["y"].size)}
            | {m: classification_metrics(p["y"], d)[m] for m in ("balanced_accuracy", "macro_f1")}
            for k, (p, d) in enumerate(zip(parts, decided, strict=True))
        ]
    return out


def _family_entry(
    cfg: RunConfig,
    prep: PreparedData,
    st: _Stitched,
    y: np.ndarray,
    ends: np.ndarray,
    idx: np.ndarray,
    best_base: np.ndarray,
    base_point: dict[str, float],
    margin: Callable[[dict[str, np.ndarray]], float],
    funding: np.ndarray | None,
) -> tuple[dict[str, Any], np.ndarray]:
    """One family's row of the study table, and its resampled balanced accuracy."""
    scores = [classification_metrics(y, r["pred"]) for r in st.runs.values()]
    ba = np.array([s["balanced_accuracy"] for s in scores])
    f1 = np.array([s["macro_f1"] for s in scores])
    resampled = np.mean([balanced_accuracy_resampled(y, r["pred"], idx) for r in st.runs.values()], axis=0)
    trading = [_stitched_backtest(cfg, prep, ends, r["pred"], funding) for r in st.runs.values()]
    return {
        "balanced_accuracy_mean": float(ba.mean()),
        "balanced_accuracy_std": float(ba.std(ddof=1)) if ba.size > 1 else 0.0,
        "macro_f1_mean": float(f1.mean()),
        "edge_over_baseline": float(ba.mean() - max(base_point.values())),
        "edge_over_baseline_ci95": ci95(resampled - best_base),
        "sharpe_mean": float(np.mean([t["sharpe"] for t in trading])),
        "total_return_mean": float(np.mean([t["total_return"] for t in trading])),
        "trades_mean": float(np.mean([t["trades"] for t in trading])),
        **{
            f"{k}_mean": _mean_or_none([t[k] for t in trading])
            for k in ("hit_rate", "average_win", "average_loss", "turnover", "cost_share", "costs", "gross_move")
        },
        "margins": {str(seed): [margin(p) for p in st.parts[seed]] for seed in st.runs},
        "training_seconds": round(st.seconds, 1),
        "seeds": {
            str(seed): {"balanced_accuracy": float(b), "macro_f1": float(m)} for seed, b, m in zip(st.runs, ba, f1)
        },
        "folds": {str(seed): st.per_fold[seed] for seed in st.runs},
    }, resampled


def summarise(
    cfg: RunConfig,
    prep: PreparedData,
    splits: list[Split],
    folder: Path,
    families: list[str],
    seeds: list[int],
    resamples: int = 1000,
    objective: str | None = None,
) -> dict[str, Any]:
    """Per family: per fold and stitched metrics per seed, mean and std over seeds, the stitched
    backtest, and block-bootstrap CIs of the edge over the best baseline and over LightGBM. With
    `objective` (balanced_accuracy, sharpe, return) every fold's decision margin is chosen again on
    its own validation period to maximise it (never on test)."""
    funding = funding_for(cfg, prep.candles)[0]  # read once for the study's every backtest
    margin = _margin_rule(cfg, prep, objective, funding)
    stitched = {f: _stitch_family(folder, f, seeds, len(splits), margin) for f in families}
    first = stitched[families[0]].runs[seeds[0]]
    y, ends = first["y"], first["ends"]
    baselines = _stitched_baselines(folder, families[0], seeds[0], len(splits), cfg.training.seed)
    block = max(2 * cfg.labels.horizon, 24)
    idx = block_indices(y.size, block, resamples, np.random.default_rng(cfg.training.seed))
    base_ba = {b: balanced_accuracy_resampled(y, p, idx) for b, p in baselines.items()}
    best_base = np.max(np.stack(list(base_ba.values())), axis=0)  # the best baseline in each resample
    base_point = {b: classification_metrics(y, p)["balanced_accuracy"] for b, p in baselines.items()}
    table: dict[str, Any] = {}
    resampled: dict[str, np.ndarray] = {}
    for family in families:
        table[family], resampled[family] = _family_entry(
            cfg, prep, stitched[family], y, ends, idx, best_base, base_point, margin, funding
        )
    if "lightgbm" in stitched:
        gbm_ba = _balanced_accuracy_resampled_mean(y, stitched["lightgbm"], idx)
        gbm_point = np.mean(
            [classification_metrics(y, r["pred"])["balanced_accuracy"] for r in stitched["lightgbm"].runs.values()]
        )
        for family in families:
            if family != "lightgbm":
                table[family]["edge_over_lightgbm"] = float(table[family]["balanced_accuracy_mean"] - gbm_point)
                table[family]["edge_over_lightgbm_ci95"] = ci95(resampled[family] - gbm_ba)
    span = _span(cfg, prep, ends)
    buy_hold = performance(
        buy_and_hold(prep.candles, span, cfg.backtest.fee, cfg.backtest.slippage, funding, cfg.backtest.capital),
        prep.candles.interval,
        _per_year(prep.candles),
    )
    return {
        **study_header(prep.candles, splits, seeds, ends, resamples, block),
        "baselines": base_point,
        "buy_and_hold": {"sharpe": buy_hold["sharpe"], "total_return": buy_hold["total_return"]},
        "table": table,
    }


def _balanced_accuracy_resampled_mean(y: np.ndarray, st: _Stitched, idx: np.ndarray) -> np.ndarray:
    return np.mean([balanced_accuracy_resampled(y, r["pred"], idx) for r in st.runs.values()], axis=0)


def _stitched_baselines(folder: Path, family: str, seed: int, n_folds: int, rng_seed: int) -> dict[str, np.ndarray]:
    """Each baseline's predictions per fold (from that fold's training class counts), stitched."""
    out: dict[str, list[np.ndarray]] = {b: [] for b in BASELINES}
    for k in range(n_folds):
        p = load_fold(folder / "folds" / f"{family}-s{seed}-f{k}.npz")
        y_train = np.repeat(np.arange(3), p["class_counts"])
        for b, pred in baseline_predictions(y_train, p["y"].size, rng_seed + k).items():
            out[b].append(pred)
    return {b: np.concatenate(v) for b, v in out.items()}


def _per_year(candles: Candles) -> float:
    from candleflow.data.calendar import bars_per_year

    return bars_per_year(candles.calendar, candles.interval, int(candles.open_time[-1]))


def _span(cfg: RunConfig, prep: PreparedData, ends: np.ndarray) -> tuple[int, int]:
    return int(ends[0]), min(len(prep.candles), int(ends[-1]) + cfg.labels.horizon + 1)


def _mean_or_none(values: list[Any]) -> float | None:
    kept = [float(v) for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def _stitched_backtest(
    cfg: RunConfig, prep: PreparedData, ends: np.ndarray, pred: np.ndarray, funding: np.ndarray | None
) -> dict[str, Any]:
    span = _span(cfg, prep, ends)
    res = configured_backtest(prep.candles, ends, sides_of(pred), cfg, span, funding=funding)
    return performance(res, prep.candles.interval, _per_year(prep.candles))


def equity_curves(cfg: RunConfig, prep: PreparedData, folder: Path, families: list[str], seed: int) -> dict[str, Any]:
    """Stitched equity curves of each family (one seed) and buy and hold, for the report."""
    curves: dict[str, np.ndarray] = {}
    ends_all = None
    funding = funding_for(cfg, prep.candles)[0]
    for family in families:
        parts = sorted((folder / "folds").glob(f"{family}-s{seed}-f*.npz"), key=lambda p: int(p.stem.rsplit("f", 1)[1]))
        loaded = [load_fold(p) for p in parts]
        ends_all = np.concatenate([p["ends"] for p in loaded])
        pred = np.concatenate(
            [decide(p["probs"], float(p["margin"]) if "margin" in p else cfg.evaluation.margin) for p in loaded]
        )
        span_all = _span(cfg, prep, ends_all)
        res = configured_backtest(prep.candles, ends_all, sides_of(pred), cfg, span_all, funding=funding)
        curves[family] = res.equity
    assert ends_all is not None  # families is never empty
    span = _span(cfg, prep, ends_all)
    curves["buy_and_hold"] = buy_and_hold(
        prep.candles, span, cfg.backtest.fee, cfg.backtest.slippage, funding, cfg.backtest.capital
    ).equity
    return {"times": prep.candles.open_time[span[0] : span[1]], "curves": curves}
