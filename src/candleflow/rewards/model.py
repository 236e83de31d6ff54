"""Reward models: a Keras dataset of (window, state, action) -> reward, a small network over the
three inputs, and the metrics that say whether it ranks actions better than a constant."""

from __future__ import annotations

from typing import Any

import numpy as np

from candleflow.models.backend import keras
from candleflow.models.loaders import batch_loader
from candleflow.rewards.samples import RewardSamples


def reward_loader(samples: RewardSamples, batch_size: int = 512, shuffle: bool = False, seed: int = 0, **kwargs):
    """({'window', 'state', 'action'}, reward) batches, reshuffled each epoch from (seed, epoch)."""

    def make(idx: np.ndarray):
        idx = np.sort(idx)
        return (
            {"window": samples.windows[idx], "state": samples.state[idx], "action": samples.action[idx]},
            samples.reward[idx, None],
        )

    return batch_loader(len(samples), make, batch_size, shuffle, seed, **kwargs)


def build_reward_model(
    train: RewardSamples, filters: int = 32, dense_units: tuple[int, ...] = (64, 32), learning_rate: float = 1e-3
):
    """Conv1D over the scaled window, concatenated with the normalised state and action, then dense
    layers to one output; input statistics and the reward scale (fitted on `train`) live in the model."""
    k = keras
    L = k.layers
    lookback, f = train.windows.shape[1:]
    window = k.Input((lookback, f), name="window")
    state = k.Input((train.state.shape[1],), name="state")
    action = k.Input((train.action.shape[1],), name="action")
    w = L.Normalization(
        mean=train.windows.reshape(-1, f).mean(0).tolist(),
        variance=np.maximum(train.windows.reshape(-1, f).var(0), 1e-12).tolist(),
        name="norm_window",
    )(window)
    w = L.Conv1D(filters, 5, activation="relu", name="conv_1")(w)
    w = L.Conv1D(filters, 5, activation="relu", name="conv_2")(w)
    w = L.GlobalMaxPooling1D(name="pool")(w)
    s = L.Normalization(
        mean=train.state.mean(0).tolist(), variance=np.maximum(train.state.var(0), 1e-12).tolist(), name="norm_state"
    )(state)
    a = L.Normalization(
        mean=train.action.mean(0).tolist(), variance=np.maximum(train.action.var(0), 1e-12).tolist(), name="norm_action"
    )(action)
    x = L.Concatenate(name="joined")([w, s, a])
    for i, u in enumerate(dense_units):
        x = L.Dense(u, activation="relu", name=f"dense_{i + 1}_{u}")(x)
    x = L.Dense(1, dtype="float32", name="standardised_reward")(x)
    mean, std = float(train.reward.mean()), float(train.reward.std()) or 1.0
    out = L.Rescaling(scale=std, offset=mean, name="reward")(x)
    model = k.Model({"window": window, "state": state, "action": action}, out, name="candleflow_reward")
    model.compile(optimizer=k.optimizers.Adam(learning_rate), loss="mse")
    return model


def rank(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    _, first, counts = np.unique(sorted_x, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks = np.empty(x.shape[0])
    ranks[order] = np.repeat(avg, counts)
    return ranks


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """R^2 (1 - SSE/SST), Spearman rank correlation (0 for a constant prediction) and MSE."""
    y = np.asarray(y, np.float64)
    pred = np.asarray(pred, np.float64)
    sse = float(((y - pred) ** 2).sum())
    sst = float(((y - y.mean()) ** 2).sum())
    if np.ptp(pred) == 0 or np.ptp(y) == 0:
        rho = 0.0
    else:
        rho = float(np.corrcoef(rank(y), rank(pred))[0, 1])
    return {"r2": 1.0 - sse / sst if sst > 0 else 0.0, "spearman": rho, "mse": sse / max(y.size, 1)}


def evaluate_rewards(y: np.ndarray, pred: np.ndarray, train_mean: float) -> dict[str, Any]:
    """The model against predicting zero and predicting the training mean."""
    table = {
        "model": regression_metrics(y, pred),
        "zero": regression_metrics(y, np.zeros_like(y)),
        "mean": regression_metrics(y, np.full_like(y, train_mean)),
    }
    return {
        "n": int(y.size),
        "table": table,
        "edge_r2": table["model"]["r2"] - max(table["zero"]["r2"], table["mean"]["r2"]),
    }
