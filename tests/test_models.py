"""Model families: shapes, the transformer's causality, save/load round trips, and learning."""

import numpy as np
import pytest

from candleflow.config import ModelConfig, load_config
from candleflow.models.networks import build_gpt, build_lstm, build_mlp
from candleflow.pipeline import run
from candleflow.runs.registry import load_model

W, F = 16, 8
MEAN, VAR = np.zeros(F), np.ones(F)


@pytest.mark.parametrize("builder", [build_lstm, build_gpt, build_mlp])
def test_shapes_and_probabilities(builder):
    cfg = ModelConfig(lstm_units=[8], dense_units=[8], gpt_d_model=16, gpt_heads=2, gpt_layers=1)
    m = builder(cfg, W, F, MEAN, VAR)
    p = np.asarray(m.predict(np.random.default_rng(0).normal(size=(5, W, F)).astype("float32"), verbose=0))
    assert p.shape == (5, 3) and np.allclose(p.sum(1), 1, atol=1e-5)
    assert m.count_params() > 0


def test_gpt_attention_is_causal():
    from candleflow.models.backend import keras

    k = keras
    cfg = ModelConfig(gpt_d_model=16, gpt_heads=2, gpt_layers=2)
    m = build_gpt(cfg, W, F, MEAN, VAR)
    seq = k.Model(m.input, m.get_layer("final_norm").output)
    x = np.random.default_rng(1).normal(size=(2, W, F)).astype("float32")
    t = 9
    y = x.copy()
    y[:, t + 1 :] += 5.0  # change every later timestep
    a, b = np.asarray(seq(x)), np.asarray(seq(y))
    np.testing.assert_allclose(a[:, : t + 1], b[:, : t + 1], atol=1e-5)
    assert not np.allclose(a[:, t + 1 :], b[:, t + 1 :], atol=1e-3)


# the family's own edge over the naive baselines is what is checked: no reference models, no page
QUIET = ["evaluation.reference_models=[]", "output.report=false"]
SMALL = {
    "gpt": [
        "model.kind=gpt",
        "model.gpt_d_model=32",
        "model.gpt_heads=2",
        "model.gpt_layers=1",
        "dataset.window=48",
        "training.epochs=3",
        *QUIET,
    ],
    "mlp": ["model.kind=mlp", "model.dense_units=[64, 16]", "dataset.window=48", "training.epochs=3", *QUIET],
}


@pytest.mark.extended
def test_fused_causal_attention_equals_multi_head_attention_with_a_causal_mask():
    """The GPT's attention (blockwise on the CPU, the backend's fused kernel elsewhere) with
    MultiHeadAttention's weights gives MultiHeadAttention's outputs; its per-step dense layers
    (2-D products) give Dense's."""
    from candleflow.models.backend import keras
    from candleflow.models.networks import ATTENTION_BLOCK, CausalSelfAttention, _blockwise_causal

    x = np.random.default_rng(0).normal(size=(3, 2 * ATTENTION_BLOCK + 6, 16)).astype("float32")  # 3 blocks
    mha = keras.layers.MultiHeadAttention(4, 4)
    want = np.asarray(mha(x, x, use_causal_mask=True))
    fused = CausalSelfAttention(4, 4)
    fused.build(x.shape)
    fused.set_weights(mha.get_weights())
    np.testing.assert_allclose(np.asarray(fused(x)), want, rtol=1e-5, atol=1e-5)
    changed = x.copy()
    changed[:, 40:] += 1.0  # the future cannot move the past
    np.testing.assert_allclose(np.asarray(fused(changed))[:, :40], np.asarray(fused(x))[:, :40], rtol=1e-6)
    # the CPU's blockwise attention and the backend's fused kernel agree, for any block size
    q, k, v = (np.random.default_rng(s).normal(size=(2, 50, 4, 8)).astype("float32") for s in (1, 2, 3))
    fused_kernel = np.asarray(keras.ops.dot_product_attention(q, k, v, is_causal=True))
    # (causal: the first n outputs depend on the first n steps only, so a prefix checks the tiny blocks)
    for block, n in ((1, 6), (7, 50), (16, 50), (50, 50), (64, 50)):
        got = _blockwise_causal(q[:, :n], k[:, :n], v[:, :n], block)
        np.testing.assert_allclose(np.asarray(got), fused_kernel[:, :n], rtol=1e-5, atol=1e-6)
    from candleflow.models.networks import TimeDense

    dense = keras.layers.Dense(7, activation="gelu")
    want = np.asarray(dense(x))
    rows = TimeDense(7, "gelu")
    rows.build(x.shape)
    rows.set_weights(dense.get_weights())
    np.testing.assert_allclose(np.asarray(rows(x)), want, rtol=1e-6, atol=1e-6)


@pytest.mark.integration
@pytest.mark.parametrize("kind", [pytest.param("gpt", marks=pytest.mark.extended), "mlp"])
def test_family_trains_through_run_beats_baselines_and_round_trips(tmp_path, kind):
    cfg = load_config(None, SMALL[kind] + [f"output.runs_dir={tmp_path}", f"output.name={kind}", "training.verbose=0"])
    result = run(cfg)
    assert result.metrics["val"]["edge_balanced_accuracy"] * 100 >= 5.0
    assert result.metadata["model_kind"] == kind
    assert load_model(kind, tmp_path).input_shape[1:] == (48, 8)


@pytest.mark.parametrize("builder", [build_lstm, build_gpt, build_mlp])
def test_save_load_round_trip_in_safe_mode(tmp_path, builder):
    from candleflow.models.backend import keras

    cfg = ModelConfig(lstm_units=[8], dense_units=[8], gpt_d_model=16, gpt_heads=2, gpt_layers=1)
    m = builder(cfg, W, F, np.arange(F) / 10, VAR * 2)
    x = np.random.default_rng(3).normal(size=(4, W, F)).astype("float32")
    m.save(tmp_path / "m.keras")
    back = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(np.asarray(back.predict(x, verbose=0)), np.asarray(m.predict(x, verbose=0)), rtol=1e-6)


@pytest.mark.slow
def test_cnn_trains_through_run_on_chart_images_and_beats_baselines(tmp_path):
    """The image CNN on the default market's 20-bar charts (about 90 s on 2 cores: slow)."""
    cfg = load_config(
        None,
        [
            "model.kind=cnn",
            "model.cnn_filters=[8, 16]",
            "dataset.window=20",
            "training.epochs=3",
            f"output.runs_dir={tmp_path}",
            "output.name=cnn",
            "training.verbose=0",
        ],
    )
    result = run(cfg)
    assert result.metadata["input_shape"] == [64, 60, 1]
    assert result.metrics["val"]["edge_balanced_accuracy"] * 100 >= 5.0


@pytest.mark.extended
def test_every_family_builds_without_compiling(tiny_config):
    """The public builder returns the network as built with compile=False (and compiled by default),
    for every network family and the panel GPT."""
    import numpy as np

    from candleflow.config import ModelConfig
    from candleflow.dataset.prepare import prepare
    from candleflow.models.families import build_model
    from candleflow.models.panel_model import build_panel_gpt

    cfg = tiny_config("source.n_bars=600", "images.height=32", "model.cnn_filters=[4]")
    prep = prepare(cfg)
    train = prep.dataset.subset(prep.split.parts["train"])
    for kind in ("lstm", "gpt", "mlp", "cnn"):
        kcfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"kind": kind})})
        bare = build_model(kcfg, train, prep, compile=False)
        assert not bare.compiled and getattr(bare, "optimizer", None) is None, kind
    assert build_model(cfg, train, prep).compiled  # compiled by default
    panel = build_panel_gpt(
        ModelConfig(gpt_d_model=8, gpt_heads=2, gpt_layers=1), 8, 9, 3, np.zeros(9), np.ones(9), compile=False
    )
    assert not panel.compiled


def test_the_learning_rate_follows_its_own_monitor(tmp_path):
    """training.monitor: val_accuracy for the checkpoint, lr_monitor val_loss (the default) for the
    plateau: a val_loss that rises while val_accuracy improves halves the rate after its patience."""
    from candleflow.config import TrainingConfig
    from candleflow.models.backend import keras
    from candleflow.models.training import training_callbacks

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    cbs = training_callbacks(TrainingConfig(monitor="val_accuracy", reduce_lr_patience=1, min_lr=1e-5), tmp_path)
    assert cbs["checkpoint"].monitor == "val_accuracy" and cbs["reduce_lr"].monitor == "val_loss"
    plateau = cbs["reduce_lr"]
    plateau.set_model(model)
    plateau.on_train_begin()
    trace = []
    for epoch, (loss, acc) in enumerate([(1.0, 0.40), (1.1, 0.45), (1.2, 0.50), (1.3, 0.55)]):
        plateau.on_epoch_end(epoch, {"val_loss": loss, "val_accuracy": acc})
        trace.append(round(float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)), 6))
    assert trace == [0.01, 0.005, 0.0025, 0.00125]  # accuracy improving never stopped it
    same = training_callbacks(TrainingConfig(monitor="val_accuracy", lr_monitor="val_accuracy"), tmp_path)
    assert same["reduce_lr"].monitor == "val_accuracy" and same["reduce_lr"].mode == "max"


@pytest.mark.extended
def test_the_memory_account_adds_up(tiny_config, tmp_path):
    """memory_usage: the parts (cache, dataset, model, optimizer) sum to the total; the model's
    part is its weights' bytes, the optimizer's Adam's two moments per trainable weight."""
    from candleflow.dataset.prepare import prepare
    from candleflow.models.families import build_model
    from candleflow.models.memory import memory_usage

    cfg = tiny_config(f"dataset.cache_dir={tmp_path / 'cache'}")
    prep = prepare(cfg)  # writes one prepared-data cache entry
    model = build_model(cfg, prep.dataset.subset(prep.split.parts["train"]), prep)
    m = memory_usage(prep.dataset, model, cfg.dataset.cache_dir)
    parts = m["cache_mb"] + m["dataset_mb"] + m["model_mb"] + m["optimizer_mb"]
    assert abs(m["total_mb"] - parts) < 0.01 and m["cache_mb"] > 0 and m["resident_mb"] > m["total_mb"]
    weights = sum(int(np.prod(w.shape)) * 4 for w in model.weights) / 2**20
    trainable = sum(int(np.prod(w.shape)) * 4 for w in model.trainable_weights) / 2**20
    assert m["model_mb"] == pytest.approx(weights, abs=1e-3) and m["optimizer_mb"] == pytest.approx(
        2 * trainable, abs=1e-3
    )
    data = (prep.dataset.features.nbytes + prep.dataset.labels.nbytes) / 2**20
    assert m["dataset_mb"] == pytest.approx(data, abs=1e-3)


def test_off_a_terminal_an_epoch_says_its_progress(caplog):
    """Issue 41: with stdout not a terminal, nothing was printed between 'Epoch 1/4' and the
    epoch's end line. StepProgress (on whenever Keras prints one line per epoch) logs the step,
    its share, the loss and the time left at a steady interval (here every step)."""
    import logging

    from candleflow.models.backend import keras
    from candleflow.models.training import StepProgress

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(256, 4)).astype("float32"), rng.integers(0, 3, 256)
    with caplog.at_level(logging.INFO, logger="candleflow.progress"):
        model.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=[StepProgress(2, every=0.0)])
    lines = [r.getMessage() for r in caplog.records if r.name == "candleflow.progress"]
    assert len(lines) == 16 and lines[0].startswith("epoch 1/2: step 1/8 (12%), loss ")
    assert lines[-1].startswith("epoch 2/2: step 8/8 (100%)") and "s left" in lines[-1]
