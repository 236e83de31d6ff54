"""Keras backend and device set-up: JAX unless the user set KERAS_BACKEND, GPU memory taken as
needed rather than all at once, a one-line fallback to CPU, bfloat16 mixed precision on GPU.
Import keras only through here: `from candleflow.models.backend import keras`."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

# KERAS_BACKEND defaults to 'jax' (see docs/design); set before keras is first imported
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# JAX's "memory growth": allocate GPU memory as needed instead of 75% of it up front
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import keras  # noqa: E402
import numpy as np  # noqa: E402

log = logging.getLogger("candleflow")


def probe_gpu(device: Any) -> None:
    """Run a small matrix product on `device` and check its result: a GPU that the backend lists
    but cannot use (driver or plugin mismatch) fails here, not later inside fit."""
    name = keras.backend.backend()
    a = np.arange(64, dtype=np.float32).reshape(8, 8) / 64
    want = a @ a
    if name == "jax":
        import jax

        got = np.asarray(jax.device_put(a, device) @ jax.device_put(a, device))
    elif name == "torch":
        import torch

        t = torch.as_tensor(a, device=device)
        got = (t @ t).cpu().numpy()
    elif name == "tensorflow":
        import tensorflow as tf

        with tf.device(device.name.replace("physical_device:", "")):
            got = tf.linalg.matmul(a, a).numpy()
    else:
        return
    if not np.allclose(got, want, rtol=1e-2, atol=1e-3):
        raise RuntimeError("a test matrix product gave wrong numbers")


def usable_gpus(gpus: list, probe: Callable[[Any], None] = probe_gpu) -> tuple[list, str]:
    """`gpus` if a small computation on the first one works, else ([], why)."""
    if not gpus:
        return [], "no GPU listed"
    try:
        probe(gpus[0])
    except Exception as exc:  # any failure of a broken driver or plugin means: do not train there
        first = (str(exc).splitlines() or [""])[0][:160]
        return [], f"a GPU is listed but a test computation on it failed: {type(exc).__name__}: {first}"
    return gpus, ""


def gpu_devices() -> tuple[list, str]:
    """The backend's usable GPUs (listed and passing a test computation) and, when there are
    none, why (one phrase)."""
    found, why = _listed_gpus()
    return usable_gpus(found) if found else (found, why)


def _listed_gpus() -> tuple[list, str]:
    name = keras.backend.backend()
    try:
        if name == "jax":
            import jax

            return jax.devices("gpu"), ""
        if name == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            for gpu in gpus:
                tf.config.experimental.set_memory_growth(gpu, True)
            return gpus, "" if gpus else "TensorFlow lists no GPU"
        if name == "torch":
            import torch

            n = torch.cuda.device_count() if torch.cuda.is_available() else 0
            return [f"cuda:{i}" for i in range(n)], "" if n else "torch.cuda.is_available() is False"
    except RuntimeError as exc:  # jax: "Unknown backend gpu" / no CUDA plugin
        return [], str(exc).splitlines()[0]
    return [], f"backend {name} has no GPU support here"


def configure_devices(
    device: str = "auto", precision: str = "float32", find_gpus: Callable[[], tuple[list, str]] = gpu_devices
) -> dict[str, str]:
    """Choose where and in which precision to train. device 'auto' or 'gpu' uses a GPU when one
    works, else logs one line and uses the CPU; 'cpu' never looks. bfloat16 mixed precision
    applies on GPU only (on CPU it is emulated and slower; one line says so)."""
    k = keras
    gpus, why = ([], "") if device == "cpu" else find_gpus()
    on_gpu = bool(gpus)
    if device == "gpu" and not on_gpu:
        log.warning("no usable GPU (%s): training on CPU", why)
    elif device == "auto" and not on_gpu:
        # a machine without a GPU hears nothing (DEBUG); a GPU that is listed but fails its test is said
        listed = why.startswith("a GPU is listed")
        log.log(logging.INFO if listed else logging.DEBUG, "no usable GPU (%s): training on CPU", why)
    policy = "float32"
    if precision == "bfloat16":
        if on_gpu:
            policy = "mixed_bfloat16"
        else:
            log.warning("precision bfloat16 needs a GPU: training on CPU in float32")
    k.config.set_dtype_policy(policy)
    broken = not on_gpu and why.startswith("a GPU is listed")
    if (device == "cpu" or broken) and k.backend.backend() == "jax":  # keep JAX off a GPU that failed
        import jax

        jax.config.update("jax_default_device", jax.devices("cpu")[0])
    return {"device": "gpu" if on_gpu else "cpu", "dtype_policy": policy, "devices": describe_devices(on_gpu)}


def data_parallel(mode: str = "auto", on_gpu: bool = False) -> int:
    """With mode 'auto' and the JAX backend seeing several devices of the kind training uses, set
    Keras' data-parallel distribution over all of them (each batch split across the devices,
    weights replicated); returns the number of replicas (1: one device, nothing set)."""
    k = keras
    if mode == "off" or k.backend.backend() != "jax":
        return 1
    devices = k.distribution.list_devices("gpu" if on_gpu else "cpu")
    if len(devices) < 2:
        return 1
    k.distribution.set_distribution(k.distribution.DataParallel(devices=devices))
    log.info(
        "data parallel over %d devices: each batch is split %d ways, weights are replicated", len(devices), len(devices)
    )
    return len(devices)


def describe_devices(prefer_gpu: bool = True) -> str:
    """Backend and devices in one line, e.g. 'jax on cpu (1 device)'."""
    k = keras
    name = k.backend.backend()
    if name == "jax":
        import jax

        devs = jax.devices()
        if not prefer_gpu:
            devs = jax.devices("cpu")
        kinds = sorted({d.device_kind for d in devs})
        return f"jax on {devs[0].platform} ({len(devs)} device{'s' if len(devs) > 1 else ''}: {', '.join(kinds)})"
    if name == "torch":
        import torch

        return f"torch on {'cuda' if torch.cuda.is_available() and prefer_gpu else 'cpu'}"
    return name


def device_memory_mb() -> float | None:
    """Memory in use on the first accelerator in MB, where the backend reports it (JAX on GPU)."""
    if keras.backend.backend() != "jax":
        return None
    import jax

    stats = jax.devices()[0].memory_stats()
    return None if not stats else stats.get("bytes_in_use", 0) / 2**20


def gpu_utilisation() -> dict[str, float] | None:
    """The first NVIDIA GPU's utilisation (%) and memory in use (MB) from NVML, through the
    optional `nvidia-ml-py` package (the `gpu` extra); None on a machine without either, so a CPU
    run simply has no GPU figures."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(0)
            util = pynvml.nvmlDeviceGetUtilizationRates(handle)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            return {"gpu_util": float(util.gpu), "gpu_mem_mb": float(mem.used) / 2**20}
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - no driver, no device: no figures, never a failed epoch
        return None
