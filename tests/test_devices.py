"""Device set-up and the training-memory prediction."""

import functools
import logging

import numpy as np
import pytest

from candleflow.config import ModelConfig
from candleflow.models.backend import configure_devices, describe_devices, device_memory_mb, gpu_devices, keras
from candleflow.models.memory import activation_floats, estimate_training_memory, suggest_batch_size
from candleflow.models.networks import build_cnn, build_gpt, build_lstm, build_mlp
from conftest import TINY

NO_GPU = not gpu_devices()[0]


def test_describe_devices_names_backend_and_platform():
    line = describe_devices()
    assert line.startswith(f"{keras.backend.backend()} on ")


@pytest.mark.skipif(not NO_GPU, reason="checks the CPU fallback")
def test_gpu_request_falls_back_to_cpu_with_one_line(caplog):
    with caplog.at_level(logging.INFO, logger="candleflow"):
        out = configure_devices("gpu", "bfloat16")
    assert out["device"] == "cpu" and out["dtype_policy"] == "float32"
    assert keras.config.dtype_policy().name == "float32"
    lines = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("no usable GPU (") and m.endswith("training on CPU") for m in lines)
    assert any("bfloat16 needs a GPU" in m for m in lines)
    assert device_memory_mb() is None


@pytest.mark.skipif(NO_GPU, reason="needs a GPU")
def test_bfloat16_on_gpu_keeps_float32_outputs():
    out = configure_devices("gpu", "bfloat16")
    try:
        assert out["device"] == "gpu" and out["dtype_policy"] == "mixed_bfloat16"
        m = build_lstm(ModelConfig(lstm_units=[8], dense_units=[8]), 16, 8, np.zeros(8), np.ones(8))
        p = np.asarray(m.predict(np.zeros((2, 16, 8), "float32"), verbose=0))
        assert p.dtype == np.float32 and m.get_layer("lstm_1_8").compute_dtype == "float32"  # cuDNN: no bf16
        assert m.get_layer("dense_1_8").compute_dtype == "bfloat16"
        assert device_memory_mb() > 0
    finally:
        keras.config.set_dtype_policy("float32")


@functools.cache
def _models():
    """The four families' networks, built once per worker (the tests below only read them)."""
    cfg = ModelConfig(
        lstm_units=[32, 16], dense_units=[16], gpt_d_model=32, gpt_heads=4, gpt_layers=2, cnn_filters=[8, 16]
    )
    z, o = np.zeros(8), np.ones(8)
    return {
        "lstm": build_lstm(cfg, 60, 8, z, o),
        "gpt": build_gpt(cfg, 60, 8, z, o),
        "mlp": build_mlp(cfg, 60, 8, z, o),
        "cnn": build_cnn(cfg, (32, 15)),
    }


def test_activation_counts_follow_the_architecture():
    m = _models()
    f = activation_floats(m["lstm"])
    assert f["lstm"] == 60 * (32 + 16) and f["sequence_layers"] == 2 and f["input"] == 60 * 8
    g = activation_floats(m["gpt"])
    assert g["attention"] == 2 * 4 * 60 * 60 and g["sequence_layers"] == 2
    c = activation_floats(m["cnn"])
    assert c["conv_workspace"] == 5 * 3 * 8 * 16 * 15  # the second convolution: 5x3 patches of 8 channels
    assert activation_floats(m["mlp"])["sequence_layers"] == 0


def test_estimate_is_linear_in_batch_and_suggestion_fits_the_budget():
    for model in _models().values():
        e0, e1, e64 = (estimate_training_memory(model, b)["total_mb"] for b in (0, 1, 64))
        assert e64 - e0 == pytest.approx(64 * (e1 - e0), rel=1e-9)
        est = estimate_training_memory(model, 64)
        assert est["weights_optimizer_mb"] == pytest.approx(16 * model.count_params() / 2**20)
        budget = 2000.0
        b = suggest_batch_size(model, available_mb=budget, fraction=0.5)
        assert b & (b - 1) == 0  # a power of two
        assert estimate_training_memory(model, b)["total_mb"] <= budget * 0.5 or b == 1
        assert b == 8192 or estimate_training_memory(model, 2 * b)["total_mb"] > budget * 0.5
    assert suggest_batch_size(_models()["gpt"], available_mb=10.0) == 1  # the same networks: built once


def test_padded_batch_gives_the_unpadded_loss():
    from candleflow.models.loaders import pad_batch

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 3)).astype(np.float32), np.eye(3, dtype=np.float32)[[0, 1, 2, 1, 0]]
    w = np.array([1.0, 2.0, 0.5, 1.0, 1.0], np.float32)
    px, py, pw = pad_batch((x, y, w), 4)
    assert px.shape == (8, 3) and py.shape == (8, 3) and pw[5:].tolist() == [0, 0, 0]
    np.testing.assert_allclose(pw[:5], w * 8 / 5)
    probs = keras.ops.softmax(x)
    loss = keras.losses.CategoricalCrossentropy()
    np.testing.assert_allclose(
        float(loss(py, keras.ops.softmax(px), sample_weight=pw)), float(loss(y, probs, sample_weight=w)), rtol=1e-6
    )
    _, _, full = pad_batch((x[:4], y[:4]), 4)  # already a multiple: weights of one
    assert full.tolist() == [1, 1, 1, 1]


# training.device=cpu: the simulated devices are CPU devices, also on a machine with a GPU
RUN = [*TINY, "model.lstm_units=[16]", "source.n_bars=2000", "training.epochs=2", "training.device=cpu"]


@pytest.mark.extended
@pytest.mark.integration
def test_two_simulated_devices_train_data_parallel_to_the_one_device_metrics(tmp_path):
    """Each run in a fresh process: XLA_FLAGS must be set before JAX starts."""
    import json
    import os
    import subprocess
    import sys

    out = {}
    for name, devices in (("one", 1), ("two", 2)):
        env = os.environ | {"XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", "KERAS_BACKEND": "jax"}
        args = [a for kv in RUN + [f"output.runs_dir={tmp_path}", f"output.name={name}"] for a in ("-s", kv)]
        proc = subprocess.run(
            [sys.executable, "-m", "candleflow.cli", "run", *args], env=env, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert ("data parallel over 2 devices" in proc.stderr) == (devices == 2)
        out[name] = json.loads((tmp_path / name / "metadata.json").read_text())
        out[name]["history"] = (tmp_path / name / "history.csv").read_text().splitlines()
    assert out["one"]["replicas"] == 1 and out["two"]["replicas"] == 2
    for key in ("balanced_accuracy", "accuracy", "macro_f1"):  # from predictions on every window
        assert out["two"]["metrics"]["val"][key] == pytest.approx(out["one"]["metrics"]["val"][key], abs=1e-6)
    cols = out["one"]["history"][0].split(",")
    for a, b in zip(out["one"]["history"][1:], out["two"]["history"][1:]):
        ra, rb = dict(zip(cols, map(float, a.split(",")))), dict(zip(cols, map(float, b.split(","))))
        assert rb["loss"] == pytest.approx(ra["loss"], rel=1e-4)
        assert rb["val_loss"] == pytest.approx(ra["val_loss"], rel=1e-4)


def test_a_listed_gpu_that_fails_a_computation_is_not_used(caplog):
    from candleflow.models.backend import usable_gpus

    def broken(device):
        raise RuntimeError("CUDA_ERROR_SYSTEM_DRIVER_MISMATCH: driver too old\nmore detail")

    gpus, why = usable_gpus(["gpu:0"], broken)
    assert gpus == [] and why == (
        "a GPU is listed but a test computation on it failed: RuntimeError: CUDA_ERROR_SYSTEM_DRIVER_MISMATCH: driver too old"
    )
    assert usable_gpus(["gpu:0"], lambda d: None) == (["gpu:0"], "")
    with caplog.at_level(logging.INFO, logger="candleflow"):
        out = configure_devices("auto", "float32", find_gpus=lambda: usable_gpus(["gpu:0"], broken))
    assert out["device"] == "cpu"
    lines = [r.getMessage() for r in caplog.records if "GPU" in r.getMessage()]
    assert lines == [f"no usable GPU ({why}): training on CPU"]
    import jax

    assert jax.config.jax_default_device == jax.devices("cpu")[0]
    jax.config.update("jax_default_device", None)


def test_the_probe_passes_on_a_working_device():
    import jax

    from candleflow.models.backend import probe_gpu

    probe_gpu(jax.devices()[0])  # the CPU here: the same computation must check out


def test_gpu_utilisation_from_nvml_and_nothing_without_it(monkeypatch):
    """NVML's figures where the optional package and a GPU are there; None on this CPU machine (a
    run then logs no GPU columns). NVML itself is stood in for by a module with its four calls."""
    import sys
    import types

    from candleflow.models.backend import gpu_utilisation

    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed
    assert gpu_utilisation() is None
    fake = types.SimpleNamespace(
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlDeviceGetHandleByIndex=lambda i: "gpu0",
        nvmlDeviceGetUtilizationRates=lambda h: types.SimpleNamespace(gpu=87),
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(used=3 * 2**30),
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert gpu_utilisation() == {"gpu_util": 87.0, "gpu_mem_mb": 3072.0}

    def no_driver() -> None:
        raise RuntimeError("NVML Shared Library Not Found")

    monkeypatch.setattr(fake, "nvmlInit", no_driver)
    assert gpu_utilisation() is None
