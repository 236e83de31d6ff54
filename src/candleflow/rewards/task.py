"""`run` for task 'reward': reward samples from the source, split in time, a reward model trained
and scored against constant predictions."""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from candleflow.config import RunConfig
from candleflow.data.load import load_candles
from candleflow.models.families import learning_rate
from candleflow.models.loading import model_from
from candleflow.models.training import fit
from candleflow.rewards.model import build_reward_model, evaluate_rewards, reward_loader
from candleflow.rewards.samples import RewardSamples, build_reward_samples, sample_ends
from candleflow.runs.folder import RunFolder
from candleflow.runs.record import write_run

log = logging.getLogger("candleflow")


def reward_split(
    ends: np.ndarray, forward: int, val_fraction: float, embargo: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Valid end bars for training and validation: validation is the last `val_fraction` of them;
    a training end whose forward window (+embargo) reaches the first validation bar is purged."""
    cut = int(ends[int(len(ends) * (1 - val_fraction))])
    return ends[ends + forward + embargo < cut], ends[ends >= cut]


def _reward_samples(cfg: RunConfig, candles: Any, t0: float) -> tuple[np.ndarray, RewardSamples, RewardSamples]:
    """(the bars a sample may end at, training samples, validation samples), split in time with
    the embargo; the training rewards permuted for a control run (training.shuffle_labels)."""
    rc, tc = cfg.rewards, cfg.training
    valid = sample_ends(candles, rc.lookback, rc.forward)
    train_ends, val_ends = reward_split(valid, rc.forward, cfg.dataset.val_fraction, cfg.dataset.embargo)
    n_val = max(1, int(round(rc.n * cfg.dataset.val_fraction)))
    train = build_reward_samples(candles, rc.n - n_val, rc.lookback, rc.forward, tc.seed, rc, valid_ends=train_ends)
    val = build_reward_samples(candles, n_val, rc.lookback, rc.forward, tc.seed + 1, rc, valid_ends=val_ends)
    if tc.shuffle_labels:
        shuffled = np.random.default_rng(tc.seed).permutation(train.reward)
        train = RewardSamples(train.windows, train.state, train.action, shuffled, train.ends, train.open_time)
        log.warning("training rewards permuted (training.shuffle_labels): a control run that must learn nothing")
    log.info(
        "reward samples: %d train (ends %s .. %s), %d validation (from %s); %.1fs",
        len(train),
        candles.time_str(int(train.ends.min())),
        candles.time_str(int(train.ends.max())),
        len(val),
        candles.time_str(int(val.ends.min())),
        time.perf_counter() - t0,
    )
    return valid, train, val


def run_reward_into(
    cfg: RunConfig,
    work: Path,
    name: str,
    started: dt.datetime,
    state: dict[str, Any] | None = None,
    callbacks: list | None = None,
):
    """Build samples, train, evaluate, save; returns (metrics, metadata)."""
    t0 = time.perf_counter()
    rc, tc = cfg.rewards, cfg.training
    candles, report = load_candles(cfg.source, cfg.validation, cfg.cache)
    log.info("candles: %s %s, %s", candles.symbol, candles.interval, report.summary())
    folder = RunFolder(work)
    folder.write_config(cfg)
    valid, train, val = _reward_samples(cfg, candles, t0)
    model = model_from(state, lambda: build_reward_model(train, learning_rate=learning_rate(cfg)))
    log.info("reward model: %s parameters", f"{model.count_params():,}")
    if cfg.dataset.batch_size == "auto":
        from candleflow.models.memory import auto_batch_size

        bs, why = auto_batch_size(model, len(train), tc.memory_share)
        log.info("dataset.batch_size auto: %s", why)
    else:
        bs = max(cfg.dataset.batch_size, 512)
    t_fit = time.perf_counter()
    fitted = fit(
        model,
        reward_loader(train, bs, shuffle=True, seed=tc.seed, prefetch=cfg.dataset.prefetch),
        reward_loader(val, bs, prefetch=cfg.dataset.prefetch),
        tc,
        work,
        state,
        callbacks,
    )
    fit_s = time.perf_counter() - t_fit
    pred = model.predict(reward_loader(val, 4096), verbose=0)[:, 0]
    metrics = {"val": evaluate_rewards(val.reward, pred, float(train.reward.mean()))}
    m = metrics["val"]
    metadata = write_run(
        work,
        cfg,
        name,
        started,
        t0,
        layout=cfg.layout,
        model=model,
        metrics=metrics,
        headline={
            "val": {
                "r2": m["table"]["model"]["r2"],
                "spearman": m["table"]["model"]["spearman"],
                "edge_r2": m["edge_r2"],
            }
        },
        data={
            "fingerprint": candles.fingerprint,
            "validation": report.to_dict(),
            "samples": {
                "train": len(train),
                "val": len(val),
                "lookback": rc.lookback,
                "forward": rc.forward,
                "valid_end_bars": int(valid.size),
            },
        },
        identity={"data_fingerprint": candles.fingerprint, "symbol": candles.symbol, "interval": candles.interval},
        training={
            "input_shape": [rc.lookback, 5],
            "state_columns": 6,
            "action_columns": 4,
            "fit_seconds": round(fit_s, 1),
            "peak_rss_mb": round(fitted["peak_rss_mb"], 1),
            "epochs_run": fitted["epochs_run"],
        },
    )
    return metrics, metadata
