"""Gradient boosting (LightGBM) and multinomial logistic regression over lagged rows of the same
windows the deep models see: the models a quant would otherwise reach for, trained on the same
split with the same class weights, and saved without pickle (LightGBM's text model; the linear
model's coefficients as a plain .npz). No Keras here."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from candleflow.dataset.windows import Windows
from candleflow.errors import RegistryError
from candleflow.fs.atomic import atomic_path
from candleflow.models import files
from candleflow.models.progress import PROGRESS_SECONDS

log = logging.getLogger("candleflow")

DEFAULT_LAGS = (0, 1, 2, 4, 8, 16, 32, 64, 119)
GBM_FILE = files.GBM_MODEL
LINEAR_FILE = files.LINEAR_MODEL


def window_lags(lags: tuple[int, ...] | list[int], window: int) -> list[int]:
    """`lags` (bars before a window's last bar) that fit in `window` bars; longer ones are clipped
    to the window's first bar, duplicates dropped."""
    return sorted({min(int(lag), window - 1) for lag in lags})


def lag_features(ds: Windows, lags: list[int], batch: int = 4096) -> np.ndarray:
    """(windows, features x lags) float32: each window's rows `lags` bars before its last bar,
    gathered batch by batch (never the whole windowed array)."""
    window, n_feat = ds.shape[1:]
    rows = np.array([window - 1 - lag for lag in lags])
    out = np.empty((len(ds), len(lags) * n_feat), np.float32)
    for lo in range(0, len(ds), batch):
        idx = np.arange(lo, min(lo + batch, len(ds)))
        out[idx] = ds.gather(idx)[:, rows, :].reshape(idx.size, -1)
    return out


def lag_feature_names(feature_names: list[str], lags: list[int]) -> list[str]:
    """Column names of `lag_features`: name@lag, lag-major."""
    return [f"{name}@{lag}" for lag in lags for name in feature_names]


@dataclass
class GBMParams:
    trees: int = 500
    learning_rate: float = 0.05
    leaves: int = 15
    min_leaf: int = 100
    early_stopping: int = 50
    seed: int = 42


class GBMModel:
    """A LightGBM multiclass booster: predict_proba gives (n, 3) probabilities."""

    kind = "lightgbm"

    def __init__(self, booster: Any, lags: list[int]):
        self.booster = booster
        self.lags = lags

    @property
    def rounds(self) -> int:
        """Boosting rounds used: the early-stopping best, or all of a loaded model's."""
        best = self.booster.best_iteration
        return int(best) if best and best > 0 else int(self.booster.current_iteration())

    @property
    def regression(self) -> bool:
        return self.booster.num_model_per_iteration() == 1

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """(n, 3) class probabilities, or (n, 1) forecasts for a regression booster."""
        out = np.asarray(self.booster.predict(x, num_iteration=self.rounds), np.float32)
        return out.reshape(-1, 1) if out.ndim == 1 else out

    def gain_by_feature(self, names: list[str]) -> dict[str, float]:
        """Each input feature's share of the total split gain, summed over its lags (the columns
        are lag-major: `lag_feature_names`), largest first."""
        gain = np.asarray(self.booster.feature_importance(importance_type="gain", iteration=self.rounds), np.float64)
        per = gain.reshape(len(self.lags), len(names)).sum(axis=0)
        total = per.sum()
        shares = per / total if total > 0 else per
        return dict(sorted(((n, round(float(v), 6)) for n, v in zip(names, shares)), key=lambda kv: -kv[1]))

    def count_params(self) -> int:
        """Leaves over all trees: the number of fitted values."""
        dump = self.booster.dump_model(num_iteration=self.rounds)
        return int(sum(t["num_leaves"] for t in dump["tree_info"]))

    def summary(self) -> str:
        what = "regression: {} boosting rounds" if self.regression else "multiclass: {} boosting rounds x 3 classes"
        return f"LightGBM {what.format(self.rounds)}, {self.count_params():,} leaves; lags {self.lags}"

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / GBM_FILE
        with atomic_path(path) as tmp:
            self.booster.save_model(str(tmp), num_iteration=self.rounds)
        return path

    @classmethod
    def load(cls, path: str | Path, lags: list[int]) -> GBMModel:
        import lightgbm as lgb

        try:
            return cls(lgb.Booster(model_file=str(path)), lags)
        except lgb.basic.LightGBMError as exc:
            raise RegistryError(f"{path}: not a LightGBM model file ({str(exc)[:120]})") from None


class LinearModel:
    """Multinomial logistic regression on standardised inputs: softmax(((x - mean) / scale) W' + b)."""

    kind = "linear"

    def __init__(self, coef: np.ndarray, intercept: np.ndarray, mean: np.ndarray, scale: np.ndarray, lags: list[int]):
        self.coef, self.intercept, self.mean, self.scale, self.lags = coef, intercept, mean, scale, lags

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """(n, 3) class probabilities, or (n, 1) forecasts for a ridge regression (one row of
        coefficients)."""
        z = ((x - self.mean) / self.scale) @ self.coef.T + self.intercept
        if self.coef.shape[0] == 1:
            return z.astype(np.float32)
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)

    def count_params(self) -> int:
        return int(self.coef.size + self.intercept.size)

    def summary(self) -> str:
        if self.coef.shape[0] == 1:
            return f"ridge regression: {self.coef.shape[1]} standardised inputs; lags {self.lags}"
        return f"multinomial logistic regression: {self.coef.shape[1]} inputs x 3 classes; lags {self.lags}"

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / LINEAR_FILE
        with atomic_path(path, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, coef=self.coef, intercept=self.intercept, mean=self.mean, scale=self.scale, lags=self.lags)
        return path

    @classmethod
    def load(cls, path: str | Path) -> LinearModel:
        try:
            with np.load(path, allow_pickle=False) as z:
                model = cls(z["coef"], z["intercept"], z["mean"], z["scale"], [int(v) for v in z["lags"]])
        except (OSError, ValueError, KeyError) as exc:
            raise RegistryError(f"{path}: not a linear model file ({str(exc)[:120]})") from None
        if model.coef.ndim != 2 or model.coef.shape[0] not in (1, 3) or model.mean.shape != (model.coef.shape[1],):
            raise RegistryError(
                f"{path}: coefficients of shape {model.coef.shape}; expected (3, inputs) or (1, inputs) for ridge"
            )
        return model


def fit_gbm(
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None,
    x_val: np.ndarray,
    y_val: np.ndarray,
    lags: list[int],
    params: GBMParams | None = None,
) -> GBMModel:
    """LightGBM multiclass on (x, y) with per-sample `weights`, early-stopped on the validation
    part's log loss (as the deep models' checkpoints are chosen on it)."""
    import lightgbm as lgb

    p = params or GBMParams()
    regression = bool(np.issubdtype(np.asarray(y).dtype, np.floating))
    settings = {
        **({"objective": "regression"} if regression else {"objective": "multiclass", "num_class": 3}),
        "learning_rate": p.learning_rate,
        "num_leaves": p.leaves,
        "min_data_in_leaf": p.min_leaf,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "seed": p.seed,
        "deterministic": True,
        "num_threads": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1),
        "verbosity": -1,
    }
    train = lgb.Dataset(x, y, weight=weights, free_raw_data=True)
    val = lgb.Dataset(x_val, y_val, reference=train)
    log.info("LightGBM: fitting up to %d rounds on %s rows x %s inputs", p.trees, f"{x.shape[0]:,}", f"{x.shape[1]:,}")
    t0 = time.perf_counter()
    booster = lgb.train(
        settings,
        train,
        num_boost_round=p.trees,
        valid_sets=[val],
        callbacks=[lgb.early_stopping(p.early_stopping, verbose=False), _rounds_progress(p.trees)],
    )
    log.info(
        "LightGBM: %d rounds kept (best on validation) in %.1f s",
        booster.best_iteration or booster.current_iteration(),
        time.perf_counter() - t0,
    )
    return GBMModel(booster, lags)


def _rounds_progress(total: int, every: float = PROGRESS_SECONDS) -> Any:
    """A LightGBM callback: a log line every `every` seconds while the rounds run."""
    state = {"last": time.perf_counter()}

    def callback(env: Any) -> None:
        now = time.perf_counter()
        if now - state["last"] >= every:
            state["last"] = now
            log.info("LightGBM: round %d of at most %d", env.iteration + 1, total)

    callback.order = 30  # type: ignore[attr-defined]  # after early stopping's bookkeeping
    return callback


def fit_linear(
    x: np.ndarray, y: np.ndarray, weights: np.ndarray | None, lags: list[int], c: float = 1.0, seed: int = 42
) -> LinearModel:
    """Multinomial logistic regression (scikit-learn, L2 with strength 1/c) on standardised
    inputs; classes absent from training get a -inf intercept (probability 0)."""
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-12] = 1.0
    z = (x - mean) / scale
    clf = LogisticRegression(C=c, max_iter=1000, random_state=seed)
    log.info("logistic regression: fitting on %s rows x %s inputs", f"{x.shape[0]:,}", f"{x.shape[1]:,}")
    t0 = time.perf_counter()
    clf.fit(z, y, sample_weight=weights)
    log.info("logistic regression: fitted in %.1f s", time.perf_counter() - t0)
    coef = np.zeros((3, x.shape[1]))
    intercept = np.full(3, -1e9)
    for row, cls in enumerate(clf.classes_):
        if clf.coef_.shape[0] == 1:  # two classes: scikit-learn keeps one row for the second
            sign = 1.0 if row == 1 else -1.0
            coef[int(cls)] = sign * clf.coef_[0] / 2
            intercept[int(cls)] = sign * clf.intercept_[0] / 2
        else:
            coef[int(cls)] = clf.coef_[row]
            intercept[int(cls)] = clf.intercept_[row]
    return LinearModel(coef, intercept, mean.astype(np.float64), scale.astype(np.float64), lags)


def fit_ridge(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None, lags: list[int], c: float = 1.0) -> LinearModel:
    """Ridge regression (L2 strength 1/c) on standardised inputs, for real-valued targets."""
    from sklearn.linear_model import Ridge

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-12] = 1.0
    reg = Ridge(alpha=1.0 / c)
    reg.fit((x - mean) / scale, np.asarray(y, np.float64), sample_weight=weights)
    coef = np.asarray(reg.coef_, np.float64).reshape(1, -1)
    return LinearModel(coef, np.array([float(reg.intercept_)]), mean.astype(np.float64), scale.astype(np.float64), lags)


def fit_lightgbm(
    model_cfg: Any,
    seed: int,
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None,
    x_val: np.ndarray,
    y_val: np.ndarray,
    lags: list[int],
) -> GBMModel:
    """The lightgbm family: LightGBM sized by the `model:` config section."""
    params = GBMParams(
        model_cfg.gbm_trees, model_cfg.gbm_learning_rate, model_cfg.gbm_leaves, model_cfg.gbm_min_leaf, seed=seed
    )
    return fit_gbm(x, y, weights, x_val, y_val, lags, params)


def fit_logistic(
    model_cfg: Any,
    seed: int,
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None,
    x_val: np.ndarray,
    y_val: np.ndarray,
    lags: list[int],
) -> LinearModel:
    """The linear family: multinomial logistic regression with the `model:` section's C, or ridge
    regression for a real-valued target."""
    if np.issubdtype(np.asarray(y).dtype, np.floating):
        return fit_ridge(x, y, weights, lags, model_cfg.linear_c)
    return fit_linear(x, y, weights, lags, model_cfg.linear_c, seed)
