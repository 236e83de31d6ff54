"""Fitting a Keras network on a run's training set: the batch size chosen by memory (and by
timing where asked), the memory account logged, out-of-memory backed off, and the batch halved
while memory passes the limit. Only network families reach this module, so a tabular run never
imports Keras."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from candleflow.config import RunConfig
from candleflow.dataset.windows import Windows
from candleflow.models.backend import keras
from candleflow.models.memory import (
    auto_batch_size,
    choose_batch_size,
    estimate_training_memory,
    is_out_of_memory,
    memory_usage,
    suggest_batch_size,
)
from candleflow.models.resume import latest_resume_state
from candleflow.models.training import MemoryWatch, fit, memory_limit_mb
from candleflow.models.training_set import TrainingSet

log = logging.getLogger("candleflow")


def sized_model(
    cfg: RunConfig, make: Callable[[Any], tuple[Any, Callable[..., Any], tuple]], ts: TrainingSet, state: Any
) -> tuple[RunConfig, Any, Callable[..., Any], tuple, dict[str, Any]]:
    """The network built for the training windows, with `dataset.batch_size: auto` resolved (by
    memory, then by timing the candidates where `dataset.batch_probe`), and its memory estimate;
    the config carries the batch size chosen."""
    model, loader, input_shape = make(ts.train)
    if cfg.dataset.batch_size == "auto":
        bs, why = auto_batch_size(model, len(ts.train), cfg.training.memory_share)
        log.info("dataset.batch_size auto: %s", why)
        if state is None and bs >= 64 and cfg.dataset.batch_probe:
            bs = fastest_batch(model, loader, ts.train, ts.y, ts.weights, bs)
            keras.utils.set_random_seed(cfg.training.seed)  # the probe trained a copy's steps: start from the seed
            model, loader, input_shape = make(ts.train)
        cfg = with_batch(cfg, bs)
    estimate = estimate_training_memory(model, int(cfg.dataset.batch_size))
    log_memory(cfg, model, ts.train, estimate)
    return cfg, model, loader, input_shape, estimate


def with_batch(cfg: RunConfig, bs: int) -> RunConfig:
    return cfg.model_copy(update={"dataset": cfg.dataset.model_copy(update={"batch_size": bs})})


def log_memory(cfg: RunConfig, model: Any, train_ds: Windows, estimate: dict[str, Any]) -> None:
    """The memory account and the model's training estimate, in the log."""
    account = memory_usage(train_ds, model, cfg.dataset.cache_dir)
    log.info(
        "memory account: cache %.1f MB, dataset %.1f MB, model %.1f MB, optimizer %.1f MB (total %.1f MB); "
        "resident %.0f MB",
        account["cache_mb"],
        account["dataset_mb"],
        account["model_mb"],
        account["optimizer_mb"],
        account["total_mb"],
        account["resident_mb"],
    )
    log.info(
        "model %s: %s parameters; training memory estimate %.0f MB at batch %d (runtime %.0f, weights+Adam "
        "%.1f, activations %.0f, batch %.1f); batch size that fits half the available memory: %d",
        cfg.model.kind,
        f"{model.count_params():,}",
        estimate["total_mb"],
        cfg.dataset.batch_size,
        estimate["runtime_mb"],
        estimate["weights_optimizer_mb"],
        estimate["activations_mb"],
        estimate["batch_mb"],
        suggest_batch_size(model),
    )


def fit_network(
    cfg: RunConfig,
    model: Any,
    loader: Callable[..., Any],
    ts: TrainingSet,
    work: Path,
    state: Any,
    callbacks: list | None,
    replicas: int,
    auto: bool,
) -> tuple[RunConfig, dict[str, Any]]:
    """Fit the network; where the batch size was chosen automatically (`auto`), back off once on
    out of memory and halve the batch for the next epochs wherever memory passes the limit. The
    config carries the batch the fit ended with."""
    tc = cfg.training
    extra: dict[str, Any] = {"balanced": True} if cfg.dataset.balanced else {}
    extra["prefetch"] = cfg.dataset.prefetch
    if replicas > 1:
        extra["multiple_of"] = replicas  # batches padded with zero-weight rows to split evenly

    def loaders(bs: int) -> tuple[Any, Any]:
        train = loader(ts.train, bs, shuffle=True, seed=tc.seed, labels=ts.y, weights=ts.weights, **extra)
        return train, loader(ts.val, bs, multiple_of=replicas, prefetch=cfg.dataset.prefetch)

    every = "every one" if cfg.dataset.train_stride == 1 else f"every {ordinal(cfg.dataset.train_stride)}"
    log.info("training on %d windows (%s of %d), validating on %d", len(ts.train), every, ts.train_windows, len(ts.val))
    watch = MemoryWatch(memory_limit_mb(tc)) if auto else None
    try:
        fitted = fit(model, *loaders(int(cfg.dataset.batch_size)), tc, work, state, callbacks, watch=watch)
    except Exception as exc:
        bs = int(cfg.dataset.batch_size)
        if not (auto and is_out_of_memory(exc) and bs > 1):
            raise
        log.warning(
            "dataset.batch_size auto: out of memory at batch %d (%s); backing off once to %d",
            bs,
            type(exc).__name__,
            bs // 2,
        )
        cfg = with_batch(cfg, bs // 2)
        fitted = fit(model, *loaders(bs // 2), tc, work, state, callbacks)
    cfg, fitted = shrink_while_tripped(cfg, model, loaders, fitted, work, callbacks, replicas)
    if fitted.get("batch_shrinks"):  # one fit, continued: its own resume point (or none) is the run's
        fitted["resumed_from_epoch"] = 0 if state is None else int(state["epochs_done"])
    fitted["batch_size"] = int(cfg.dataset.batch_size)
    return cfg, fitted


def shrink_while_tripped(
    cfg: RunConfig,
    model: Any,
    loaders: Callable[[int], tuple[Any, Any]],
    fitted: dict[str, Any],
    work: Path,
    callbacks: list | None,
    replicas: int,
) -> tuple[RunConfig, dict[str, Any]]:
    """While a fit stopped because memory passed the limit, continue it at half the batch."""
    shrinks = []
    while "memory_tripped" in fitted:
        seen, bs = fitted["memory_tripped"], int(cfg.dataset.batch_size)
        smaller = max(bs // 2, replicas)
        log.warning(
            "dataset.batch_size auto: %s reached %.0f MB in epoch %d, past the limit of %.0f MB "
            "(training.memory_limit_mb, or memory_share of the free memory); batch %d -> %d from epoch %d",
            seen["what"],
            seen["used_mb"],
            seen["epoch"],
            seen["limit_mb"],
            bs,
            smaller,
            seen["epoch"] + 1,
        )
        shrinks.append({**seen, "batch_from": bs, "batch_to": smaller})
        cfg = with_batch(cfg, smaller)
        watch = MemoryWatch(seen["limit_mb"]) if smaller > replicas else None  # at the floor: no further shrink
        fitted = fit(model, *loaders(smaller), cfg.training, work, latest_resume_state(work), callbacks, watch=watch)
    if shrinks:
        fitted["batch_shrinks"] = shrinks
    return cfg, fitted


def fastest_batch(model: Any, loader: Any, train_ds: Windows, y_train: np.ndarray, weights: Any, largest: int) -> int:
    """dataset.batch_size auto, after the memory-based choice: train steps timed at powers of two
    from largest / 8 up to `largest` (each compiled by a first untimed step, then the best of two
    timed ones), the batch chosen where the time per sample stops falling (choose_batch_size),
    logged with its figures. The model it probes on is discarded; training starts afresh."""
    import time

    def per_sample(bs: int) -> float:
        x, *rest = loader(train_ds, bs, shuffle=True, seed=0, labels=y_train, weights=weights)[0]
        y = rest[0]
        w = rest[1] if len(rest) > 1 else None
        model.train_on_batch(x, y, sample_weight=w)  # compiles for this shape: not timed
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            model.train_on_batch(x, y, sample_weight=w)
            times.append(time.perf_counter() - t0)
        return min(times) / bs

    candidates = [c for c in (largest // 8, largest // 4, largest // 2, largest) if c >= 32]
    bs, trials = choose_batch_size(sorted(set(candidates)), per_sample)
    log.info(
        "dataset.batch_size auto: step time per sample %s; batch %d (the fastest per sample, larger ones "
        "gained less than 5%%)",
        ", ".join(f"{t['batch_size']}: {t['ms_per_sample']:.3f} ms" for t in trials),
        bs,
    )
    return bs


def ordinal(n: int) -> str:
    """'2nd', '3rd', '11th', '21st'."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


__all__ = ["fit_network", "ordinal", "sized_model", "with_batch"]
