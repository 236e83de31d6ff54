"""Which Keras backend trains a run (`training.backend: auto|jax|torch|tensorflow`), decided before
Keras is first imported: Keras fixes its backend for the life of a process at that moment.

`auto` keeps the backend the user chose with KERAS_BACKEND; otherwise it takes the fastest
backend measured for the family on this kind of device (`MEASURED`, from
`benchmarks/bench_training.py`). A device kind or family with no measurement gets JAX, the
backend every family was first measured on. This module imports neither Keras nor a framework,
so the CLI can call it before anything else loads."""

from __future__ import annotations

import importlib.util
import os
import sys

from candleflow.errors import ConfigError

BACKENDS = ("jax", "torch", "tensorflow")
# samples/s of training steps over 256 x 120 x 8 batches on the project's 2-core CPU, from one
# quiet run of `python benchmarks/bench_training.py --steps 30` (Keras 3.15, JAX 0.10, torch
# 2.13 CPU; docs/benchmarks.md has the table). Keras runs the LSTM on torch as a Python loop over
# time steps on a CPU; its GPT on torch uses torch's fused attention and beats JAX there.
MEASURED: dict[str, dict[str, dict[str, float]]] = {
    "cpu": {
        "lstm": {"jax": 498.0, "torch": 73.0},
        "gpt": {"jax": 409.0, "torch": 716.0},
    },
}
_PACKAGE = {"jax": "jax", "torch": "torch", "tensorflow": "tensorflow"}
_EXTRA = {
    "jax": "candleflow (jax is a dependency)",
    "torch": "'candleflow[torch]'",
    "tensorflow": "'candleflow[tensorflow]'",
}


def device_kind(requested: str) -> str:
    """'gpu' or 'cpu' for `training.device`, without importing a framework: auto means a GPU
    where the NVIDIA driver's control device exists."""
    if requested in ("cpu", "gpu"):
        return requested
    return "gpu" if os.path.exists("/dev/nvidiactl") else "cpu"


def choose_backend(requested: str, family: str, device: str = "cpu", env: dict[str, str] | None = None) -> str:
    """The backend `requested` means for `family` on `device` ('cpu' or 'gpu'): itself, or for
    `auto` the user's KERAS_BACKEND when set, else the fastest measured among the installed
    backends (on this CPU: JAX for the LSTM, torch for the GPT), else JAX."""
    if requested not in (*BACKENDS, "auto"):
        raise ConfigError(f"training.backend {requested!r}: expected auto, {', '.join(BACKENDS)}")
    if requested != "auto":
        return requested
    user = (os.environ if env is None else env).get("KERAS_BACKEND", "")
    if user in BACKENDS:
        return user
    rates = {b: r for b, r in MEASURED.get(device, {}).get(family, {}).items() if _installed(b)}
    return max(rates, key=lambda b: rates[b]) if rates else "jax"


def _installed(backend: str) -> bool:
    return importlib.util.find_spec(_PACKAGE[backend]) is not None


def apply_backend(requested: str, family: str, device: str = "cpu") -> str:
    """Make the chosen backend the one Keras loads, and return it.

    Before Keras is imported this sets KERAS_BACKEND (after checking the framework is
    installed). Once Keras runs on another backend in this process, an explicit request is a
    one-line error saying how to get it; `auto` keeps what is loaded."""
    chosen = choose_backend(requested, family, device)
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "backend"):
        current = str(keras.backend.backend())
        if current == chosen:
            return current
        if requested == "auto":
            return current
        raise ConfigError(
            f"training.backend {chosen}: Keras already runs on {current} in this process (it fixes its backend "
            f"when first imported); start a new process with KERAS_BACKEND={chosen}, or use the candleflow CLI"
        )
    if importlib.util.find_spec(_PACKAGE[chosen]) is None:
        raise ConfigError(
            f"training.backend {chosen}: {_PACKAGE[chosen]} is not installed (pip install {_EXTRA[chosen]})"
        )
    os.environ["KERAS_BACKEND"] = chosen
    return chosen


__all__ = ["BACKENDS", "MEASURED", "apply_backend", "choose_backend", "device_kind"]
