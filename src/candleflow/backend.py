"""Keras backend choice: JAX unless the user set KERAS_BACKEND; import keras only through here."""

from __future__ import annotations

import os


def keras():
    """Import and return keras with KERAS_BACKEND defaulting to 'jax' (see DESIGN.md)."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras as _keras

    return _keras


def describe_devices() -> str:
    """Backend and devices in one line, e.g. 'jax on cpu (1 device)'."""
    k = keras()
    name = k.backend.backend()
    if name == "jax":
        import jax

        devs = jax.devices()
        return f"jax on {devs[0].platform} ({len(devs)} device{'s' if len(devs) > 1 else ''})"
    if name == "torch":
        import torch

        return f"torch on {'cuda' if torch.cuda.is_available() else 'cpu'}"
    return name
