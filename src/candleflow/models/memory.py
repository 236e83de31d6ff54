"""Training memory: a prediction for a built model and batch size (weights, optimizer state,
activations kept for backpropagation, runtime overhead), and the batch size that fits.

The coefficients were calibrated against measured peak resident memory with
`benchmarks/bench_memory.py` on Keras 3 / JAX on CPU (XLA), and that script prints predicted
against measured for every model family: re-run it to check them on another backend."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import psutil

from candleflow.models.backend import keras
from candleflow.models.networks import CausalSelfAttention

MB = 2**20
# Least-squares fit to 20 measured peaks (4 families, 2-3 sizes each, batch 32-4096); every one of
# them is predicted within 0.84-1.11x. Floats kept per activation value (XLA fuses some away):
GENERIC_FLOATS = 1.35
# per LSTM unit and time step (4 gates, cell, hidden state, tanh(cell), with their gradients):
LSTM_FLOATS = 13.3
# per attention score (head x query x key: scores, softmax output, gradients):
ATTENTION_FLOATS = 5.3
# per float of the largest convolution's unfolded patches (a transient workspace):
CONV_WORKSPACE_FLOATS = 1.55
# the runtime's own working memory while training: compiled programs, XLA buffers, Python objects
RUNTIME_MB = 108.0
RUNTIME_MB_PER_SEQUENCE_LAYER = 48.0  # a scanned recurrence or an attention block compiles to more code


def activation_floats(model) -> dict[str, float]:
    """Per-sample float counts by kind: 'input', 'generic' (layer outputs), 'lstm' (units x steps),
    'attention' (heads x queries x keys), 'conv_workspace' (the largest convolution's unfolded
    patches), plus the number of LSTM/attention layers."""
    k = keras
    out = {"input": 0.0, "generic": 0.0, "lstm": 0.0, "attention": 0.0, "conv_workspace": 0.0, "sequence_layers": 0}
    for layer in model.layers:
        if isinstance(layer, k.layers.InputLayer):
            out["input"] += _size(layer.output.shape)
            continue
        shapes = [t.shape for t in (layer.output if isinstance(layer.output, (list, tuple)) else [layer.output])]
        out["generic"] += sum(_size(s) for s in shapes)
        if isinstance(layer, k.layers.LSTM):
            steps = layer.input.shape[1]
            out["lstm"] += steps * layer.units
            out["sequence_layers"] += 1
        elif isinstance(layer, k.layers.Conv2D):  # the largest unfolded-patch buffer of one convolution
            kh, kw = layer.kernel_size
            patches = kh * kw * layer.input.shape[-1] * _size(shapes[0]) / layer.filters
            out["conv_workspace"] = max(out["conv_workspace"], patches)
        elif isinstance(layer, (k.layers.MultiHeadAttention, CausalSelfAttention)):
            # the blockwise CPU attention keeps fewer scores than this (the calibration's layer kept them all)
            q_len = layer.input[0].shape[1] if isinstance(layer.input, (list, tuple)) else layer.input.shape[1]
            out["attention"] += layer.num_heads * q_len * q_len
            out["generic"] += 4 * q_len * layer.num_heads * layer.key_dim  # query, key, value, heads joined
            out["sequence_layers"] += 1
    return out


def estimate_training_memory(model, batch_size: int) -> dict[str, Any]:
    """Predicted peak memory of training `model` at `batch_size`, in MB by component."""
    f = activation_floats(model)
    params = int(model.count_params())
    per_sample = 4 * (
        2 * f["input"]
        + GENERIC_FLOATS * f["generic"]
        + LSTM_FLOATS * f["lstm"]
        + ATTENTION_FLOATS * f["attention"]
        + CONV_WORKSPACE_FLOATS * f["conv_workspace"]
    )
    weights = 4 * params * 4  # weights, gradients, Adam's two moments
    runtime = RUNTIME_MB + RUNTIME_MB_PER_SEQUENCE_LAYER * f["sequence_layers"]
    out = {
        "parameters": params,
        "batch_size": int(batch_size),
        "runtime_mb": runtime,
        "weights_optimizer_mb": weights / MB,
        "batch_mb": 2 * 4 * f["input"] * batch_size / MB,
        "activations_mb": (per_sample - 8 * f["input"]) * batch_size / MB,
        "per_sample_mb": per_sample / MB,
    }
    out["total_mb"] = out["runtime_mb"] + out["weights_optimizer_mb"] + out["batch_mb"] + out["activations_mb"]
    return out


def suggest_batch_size(
    model, available_mb: float | None = None, fraction: float = 0.5, max_batch_size: int = 8192
) -> int:
    """The largest power of two whose predicted training memory fits in `fraction` of
    `available_mb` (default: the memory the OS reports available now); at least 1."""
    if available_mb is None:
        available_mb = psutil.virtual_memory().available / MB
    budget = available_mb * fraction
    fixed = estimate_training_memory(model, 0)["total_mb"]
    per_sample = estimate_training_memory(model, 1)["total_mb"] - fixed
    if budget <= fixed + per_sample:
        return 1
    largest = int((budget - fixed) // per_sample)
    return int(min(max_batch_size, 2 ** int(math.log2(max(largest, 1)))))


def _size(shape) -> float:
    return float(math.prod(d for d in shape[1:] if d is not None))


def available_memory_mb() -> tuple[float, str]:
    """Memory free for training now, and where: the first GPU's (JAX's allocator limit less what it
    holds) when JAX trains on one, else the machine's available RAM."""
    if keras.backend.backend() == "jax":
        import jax

        dev = jax.devices()[0]
        if dev.platform == "gpu":
            stats = dev.memory_stats() or {}
            if "bytes_limit" in stats:
                return (stats["bytes_limit"] - stats.get("bytes_in_use", 0)) / MB, f"{dev.device_kind} memory"
    return psutil.virtual_memory().available / MB, "available RAM"


def auto_batch_size(model, n_train: int, share: float, min_steps: int = 8) -> tuple[int, str]:
    """`dataset.batch_size: auto`: the largest power of two that fits `share` of the free memory,
    lowered until an epoch has `min_steps` steps; and the reason, for the log."""
    free, where = available_memory_mb()
    fits = suggest_batch_size(model, free, share)
    steps_cap = 2 ** max(int(math.log2(max(n_train // min_steps, 1))), 0)
    bs = max(1, min(fits, steps_cap))
    why = (
        f"batch size {bs}: the largest power of two whose predicted training memory fits {share:.0%} of "
        f"{free:,.0f} MB {where} is {fits}"
        + (f"; lowered to {bs} so an epoch of {n_train:,} windows has at least {min_steps} steps" if bs < fits else "")
    )
    return bs, why


def is_out_of_memory(exc: BaseException) -> bool:
    """True for the errors an allocation failure raises (MemoryError, XLA's RESOURCE_EXHAUSTED)."""
    text = f"{type(exc).__name__}: {exc}"
    return isinstance(exc, MemoryError) or "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower()


def memory_usage(
    dataset: Any = None,
    model: Any = None,
    cache_dir: str | os.PathLike | None = None,
    features: Any = None,
) -> dict[str, float]:
    """One memory account (`get_memory_usage` in the stock predictor's design), in MB: the
    prepared-data cache on disk, the dataset's arrays (features, labels; windows are views and
    cost nothing), the model's weights and its optimizer's state (the slots it holds, or Adam's
    two per weight before the first step), their total, and the process's resident memory.
    `total_mb` is the sum of the parts; resident memory also holds the runtime and is reported
    beside it, not in it."""
    parts = {"cache_mb": 0.0, "dataset_mb": 0.0, "model_mb": 0.0, "optimizer_mb": 0.0}
    if cache_dir is not None:
        from candleflow.fs.caches import summarize

        parts["cache_mb"] = summarize("prepared", cache_dir).bytes / MB
    if dataset is not None:
        arrays = [getattr(dataset, "features", None), getattr(dataset, "labels", None)]
        if features is not None:
            arrays = [features, *arrays[1:]]
        parts["dataset_mb"] = sum(int(getattr(a, "nbytes", 0)) for a in arrays if a is not None) / MB
    if model is not None:
        weights = sum(int(np.prod(w.shape)) * np.dtype(getattr(w, "dtype", "float32")).itemsize for w in model.weights)
        parts["model_mb"] = weights / MB
        opt = getattr(model, "optimizer", None)
        variables = list(getattr(opt, "variables", [])) if opt is not None else []
        slots = sum(int(np.prod(v.shape)) * 4 for v in variables if len(v.shape) > 0)
        if opt is not None and slots == 0:  # not built yet: Adam keeps two moments per trainable weight
            slots = 2 * sum(int(np.prod(w.shape)) * 4 for w in model.trainable_weights)
        parts["optimizer_mb"] = slots / MB
    out = {k: round(v, 3) for k, v in parts.items()}
    out["total_mb"] = round(sum(parts.values()), 3)
    out["resident_mb"] = round(psutil.Process().memory_info().rss / MB, 1)
    return out


def choose_batch_size(
    candidates: list[int], seconds_per_sample: Any, tolerance: float = 0.05
) -> tuple[int, list[dict[str, float]]]:
    """The batch size among `candidates` (ascending, each fitting memory) that trains fastest per
    sample: larger batches are tried while the time per sample falls by more than `tolerance`
    against the best so far; the first that does not stops the search. `seconds_per_sample(bs)`
    measures one candidate. Returns the choice and every trial's figures (for the log)."""
    trials: list[dict[str, float]] = []
    best, best_t = candidates[0], float("inf")
    for bs in candidates:
        t = float(seconds_per_sample(bs))
        trials.append({"batch_size": bs, "ms_per_sample": round(1000 * t, 4)})
        if t < best_t * (1 - tolerance):
            best, best_t = bs, t
        else:
            break
    return best, trials
