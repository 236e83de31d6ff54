"""training.backend: which Keras backend trains, chosen before Keras loads, and the same numbers
from each backend (Keras fixes its backend per process, so each side runs in its own process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from candleflow.errors import ConfigError
from candleflow.models.backend_choice import MEASURED, apply_backend, choose_backend

# One process per backend: the same architecture, the weights the first process saved (plain
# .weights.h5, no pickle), a forward pass, then one SGD step on one batch and a forward pass again.
SIDE = r"""
import json, sys
import numpy as np
from candleflow.config import RunConfig
from candleflow.models.backend import keras
from candleflow.models.networks import build_gpt, build_lstm, build_mlp

folder = sys.argv[1]
cfg = RunConfig().model.model_copy(update={"dropout": 0.0})
window, feats = 12, 5
rng = np.random.default_rng(0)
x = rng.standard_normal((16, window, feats)).astype("float32")
y = np.eye(3, dtype="float32")[rng.integers(0, 3, 16)]
mean, var = np.full(feats, 0.1, "float32"), np.full(feats, 2.0, "float32")
out = {"backend": keras.backend.backend()}
for name, build in (("lstm", build_lstm), ("gpt", build_gpt), ("mlp", build_mlp)):
    keras.utils.set_random_seed(0)
    model = build(cfg, window, feats, mean, var, compile=False)
    weights = f"{folder}/{name}.weights.h5"
    try:
        model.load_weights(weights)
    except FileNotFoundError:
        model.save_weights(weights)
    before = model.predict(x, verbose=0)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05), loss="categorical_crossentropy")
    loss = model.train_on_batch(x, y)
    after = model.predict(x, verbose=0)
    np.savez(f"{folder}/{name}-{out['backend']}.npz", before=before, after=after, loss=np.float64(loss))
print(json.dumps(out))
"""


def _side(backend: str, folder: Path) -> str:
    env = {**os.environ, "KERAS_BACKEND": backend}
    done = subprocess.run(
        [sys.executable, "-c", SIDE, str(folder)], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])["backend"]


@pytest.mark.integration
@pytest.mark.extended
def test_jax_and_torch_give_the_same_forecasts_and_the_same_training_step(tmp_path):
    pytest.importorskip("torch")  # the test extra installs it; a bare install may lack it
    assert _side("jax", tmp_path) == "jax"
    assert _side("torch", tmp_path) == "torch"
    for name in ("lstm", "gpt", "mlp"):
        a, b = np.load(tmp_path / f"{name}-jax.npz"), np.load(tmp_path / f"{name}-torch.npz")
        np.testing.assert_allclose(a["before"], b["before"], rtol=1e-4, atol=1e-5, err_msg=name)
        assert float(a["loss"]) == pytest.approx(float(b["loss"]), rel=1e-4), name
        np.testing.assert_allclose(a["after"], b["after"], rtol=1e-4, atol=1e-5, err_msg=name)
        assert not np.allclose(a["before"], a["after"])  # the step moved the weights: a real comparison


def test_auto_keeps_the_users_backend_else_the_fastest_measured():
    assert choose_backend("auto", "lstm", "cpu", env={"KERAS_BACKEND": "torch"}) == "torch"
    fastest = max(MEASURED["cpu"]["lstm"], key=MEASURED["cpu"]["lstm"].get)
    assert choose_backend("auto", "lstm", "cpu", env={}) == fastest == "jax"
    assert choose_backend("auto", "lightgbm", "gpu", env={}) == "jax"  # nothing measured: JAX
    gpt = MEASURED["cpu"]["gpt"]
    assert choose_backend("auto", "gpt", "cpu", env={}) == max(gpt, key=gpt.get) == "torch"  # fused attention
    assert choose_backend("torch", "lstm", "cpu", env={"KERAS_BACKEND": "jax"}) == "torch"  # asked for: given
    with pytest.raises(ConfigError, match="training.backend 'mxnet': expected auto, jax, torch, tensorflow"):
        choose_backend("mxnet", "lstm")


def test_a_backend_other_than_the_loaded_one_is_a_one_line_error():
    import keras

    loaded = keras.backend.backend()
    other = "torch" if loaded != "torch" else "jax"
    assert apply_backend("auto", "lstm") == loaded  # auto keeps what this process loaded
    assert apply_backend(loaded, "lstm") == loaded
    with pytest.raises(ConfigError, match=f"training.backend {other}: Keras already runs on {loaded}") as err:
        apply_backend(other, "lstm")
    assert "\n" not in str(err.value)


@pytest.mark.extended
def test_the_cli_trains_on_the_backend_the_config_names(tmp_path):
    """`candleflow run --set training.backend=torch` in a fresh process: the run's metadata says torch."""
    pytest.importorskip("torch")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    args = [
        "training.backend=torch",
        "training.epochs=1",
        "source.n_bars=1500",
        "dataset.window=16",
        "model.kind=mlp",
        f"output.runs_dir={tmp_path}",
        "output.name=torch-run",
    ]
    cmd = [sys.executable, "-m", "candleflow.cli", "run", *[a for s in args for a in ("--set", s)]]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    meta = json.loads((tmp_path / "torch-run" / "metadata.json").read_text())
    assert meta["versions"]["backend"] == "torch" and "torch" in meta["versions"]
