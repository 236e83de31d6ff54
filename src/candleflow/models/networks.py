"""The default classifier: LSTM 128 -> 64 -> 32, Dense 32 -> 16 (ReLU, dropout), softmax over
(SHORT, HOLD, LONG); normalisation statistics fitted on training rows live inside the model.
Every builder also takes a `RegressionHead`: one linear output rescaled to the target's units
(forward returns, log volatility) and trained with MSE or Huber."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from candleflow.config import ModelConfig
from candleflow.models.backend import keras


@dataclass(frozen=True)
class RegressionHead:
    """A real-valued output: the network predicts a standardised value that a fixed
    Rescaling layer turns into the target's units (mean and std of the training targets), so the
    saved model predicts in those units; loss `mse` or `huber` (delta 1.345 training stds)."""

    mean: float
    std: float
    loss: str = "mse"

    @classmethod
    def of(cls, y_train: np.ndarray, loss: str) -> RegressionHead:
        y = np.asarray(y_train, np.float64)
        std = float(y.std()) if y.size else 1.0
        return cls(float(y.mean()) if y.size else 0.0, std if std > 1e-12 else 1.0, loss)


def _output(k, x, n_classes: int, regression: RegressionHead | None):
    """The softmax over the classes, or the rescaled real-valued target."""
    if regression is None:
        return k.layers.Dense(n_classes, activation="softmax", dtype="float32", name="classes")(x)
    z = k.layers.Dense(1, dtype="float32", name="target_standardised")(x)
    return k.layers.Rescaling(scale=regression.std, offset=regression.mean, dtype="float32", name="target")(z)


def _cudnn_allowed() -> str | bool:
    """False when JAX places work on the CPU although a GPU exists (training.device=cpu, or a GPU
    that failed its probe): Keras would pick the cuDNN kernel, which has no CPU lowering (seen on
    an H100 machine). Otherwise Keras decides ('auto')."""
    if keras.backend.backend() == "jax":
        import jax

        device = getattr(jax.config, "jax_default_device", None)
        if device is not None and getattr(device, "platform", "") == "cpu":
            return False
    return "auto"


def build_lstm(
    cfg: ModelConfig,
    window: int,
    n_features: int,
    mean: np.ndarray,
    variance: np.ndarray,
    learning_rate: float = 1e-3,
    n_classes: int = 3,
    compile: bool = True,
    regression: RegressionHead | None = None,
):
    """A Keras model taking raw (window, n_features) float32 windows, compiled unless `compile=False`."""
    k = keras
    layers = k.layers
    inputs = k.Input(shape=(window, n_features), name="window")
    x = layers.Normalization(
        mean=np.asarray(mean, dtype=np.float32).tolist(),
        variance=np.asarray(variance, dtype=np.float32).tolist(),
        name="normalise",
    )(inputs)
    for i, units in enumerate(cfg.lstm_units):
        x = layers.LSTM(
            units,
            return_sequences=i < len(cfg.lstm_units) - 1,
            dropout=cfg.lstm_dropout,
            recurrent_dropout=cfg.recurrent_dropout,
            # float32 under mixed bfloat16 too: JAX's cuDNN RNN kernel has no bfloat16 (seen on an H100)
            dtype="float32",
            use_cudnn=_cudnn_allowed(),
            name=f"lstm_{i + 1}_{units}",
        )(x)
    for i, units in enumerate(cfg.dense_units):
        x = layers.Dense(units, activation="relu", name=f"dense_{i + 1}_{units}")(x)
        x = layers.Dropout(cfg.dropout, name=f"dropout_{i + 1}")(x)
    outputs = _output(k, x, n_classes, regression)
    model = k.Model(inputs, outputs, name="candleflow_lstm")
    return _compiled(k, model, learning_rate, compile, regression)


def _compiled(k, model, learning_rate: float, compile: bool, regression: RegressionHead | None = None):
    """The model compiled for the classes (Adam, cross-entropy, accuracy) or a regression target
    (Adam, MSE or Huber), or as built with `compile=False` (for a custom training loop, another
    optimiser, or a look at the graph)."""
    if compile and regression is not None:
        loss: Any = "mse" if regression.loss == "mse" else k.losses.Huber(delta=1.345 * regression.std)
        model.compile(optimizer=k.optimizers.Adam(learning_rate=learning_rate), loss=loss)
    elif compile:
        model.compile(
            optimizer=k.optimizers.Adam(learning_rate=learning_rate),
            loss="categorical_crossentropy",
            metrics=["accuracy"],
        )
    return model


def _normalised_input(k, window: int, n_features: int, mean: np.ndarray, variance: np.ndarray):
    inputs = k.Input(shape=(window, n_features), name="window")
    x = k.layers.Normalization(
        mean=np.asarray(mean, dtype=np.float32).tolist(),
        variance=np.asarray(variance, dtype=np.float32).tolist(),
        name="normalise",
    )(inputs)
    return inputs, x


def _head(
    k,
    x,
    cfg: ModelConfig,
    n_classes: int,
    name: str,
    inputs,
    learning_rate: float,
    compile: bool = True,
    regression: RegressionHead | None = None,
):
    for i, units in enumerate(cfg.dense_units):
        x = k.layers.Dense(units, activation="relu", name=f"dense_{i + 1}_{units}")(x)
        x = k.layers.Dropout(cfg.dropout, name=f"dropout_{i + 1}")(x)
    outputs = _output(k, x, n_classes, regression)
    model = k.Model(inputs, outputs, name=name)
    return _compiled(k, model, learning_rate, compile, regression)


def build_mlp(
    cfg: ModelConfig,
    window: int,
    n_features: int,
    mean: np.ndarray,
    variance: np.ndarray,
    learning_rate: float = 1e-3,
    n_classes: int = 3,
    compile: bool = True,
    regression: RegressionHead | None = None,
):
    """The baseline: the flattened window through the dense layers of `dense_units`."""
    k = keras
    inputs, x = _normalised_input(k, window, n_features, mean, variance)
    x = k.layers.Flatten(name="flatten")(x)
    return _head(k, x, cfg, n_classes, "candleflow_mlp", inputs, learning_rate, compile, regression)


def build_gpt(
    cfg: ModelConfig,
    window: int,
    n_features: int,
    mean: np.ndarray,
    variance: np.ndarray,
    learning_rate: float = 1e-3,
    n_classes: int = 3,
    attention: str = "fused",
    compile: bool = True,
    regression: RegressionHead | None = None,
):
    """A small GPT-style causal transformer: a per-timestep linear embedding plus learned positions,
    pre-norm blocks (causal self-attention, then an MLP, each added back), a final norm, and the
    classes read from the last position. `attention`: `fused` (the backend's fused kernel, no
    mask built, and per-step dense layers as 2-D products) or `mha` (keras.layers.MultiHeadAttention
    with a causal mask and keras Dense layers, as before)."""
    k = keras
    L = k.layers
    d = cfg.gpt_d_model
    inputs, x = _normalised_input(k, window, n_features, mean, variance)
    dense = L.Dense if attention == "mha" else TimeDense  # the former layers, or their 2-D form
    x = dense(d, name="embed")(x)
    x = PositionEmbedding(window, d, name="positions")(x)
    for i in range(cfg.gpt_layers):
        h = L.LayerNormalization(epsilon=1e-5, name=f"block_{i + 1}_norm_attn")(x)
        heads, key_dim, name = cfg.gpt_heads, max(d // cfg.gpt_heads, 1), f"block_{i + 1}_attn"
        if attention == "mha":
            h = L.MultiHeadAttention(heads, key_dim, dropout=cfg.gpt_dropout, name=name)(h, h, use_causal_mask=True)
        else:
            h = CausalSelfAttention(heads, key_dim, dropout=cfg.gpt_dropout, name=name)(h)
        x = L.Add(name=f"block_{i + 1}_add_attn")([x, h])
        h = L.LayerNormalization(epsilon=1e-5, name=f"block_{i + 1}_norm_mlp")(x)
        h = dense(4 * d, activation="gelu", name=f"block_{i + 1}_mlp_in")(h)
        h = dense(d, name=f"block_{i + 1}_mlp_out")(h)
        x = L.Add(name=f"block_{i + 1}_add_mlp")([x, h])
    x = L.LayerNormalization(epsilon=1e-5, name="final_norm")(x)
    x = L.Cropping1D((window - 1, 0), name="last_position")(x)
    x = L.Flatten(name="last")(x)
    return _head(k, x, cfg, n_classes, "candleflow_gpt", inputs, learning_rate, compile, regression)


@keras.saving.register_keras_serializable(package="candleflow")
class TimeDense(keras.layers.Layer):
    """`Dense` applied at every time step, computed as one 2-D matrix product over (batch x time)
    rows. The same numbers as `keras.layers.Dense` on a 3-D input, but XLA's CPU backend runs the
    2-D form's backward pass about 2.5x faster (benchmarks/profile_gpt_cpu.py)."""

    def __init__(self, units: int, activation: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units, self.activation_name = units, activation
        self.activation = keras.activations.get(activation)

    def build(self, input_shape) -> None:
        self.kernel = self.add_weight(
            shape=(int(input_shape[-1]), self.units), initializer="glorot_uniform", name="kernel"
        )
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")

    def call(self, x):
        ops = keras.ops
        y = ops.matmul(ops.reshape(x, (-1, x.shape[-1])), self.kernel) + self.bias
        return ops.reshape(self.activation(y), (-1, *x.shape[1:-1], self.units))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {"units": self.units, "activation": self.activation_name}


def _rows(x, kernel, bias):
    """x (B, T, D) times a (D, H, K) kernel plus a (H, K) bias, as one 2-D product: (B, T, H, K)."""
    ops = keras.ops
    d, h, k = kernel.shape
    y = ops.matmul(ops.reshape(x, (-1, d)), ops.reshape(kernel, (d, h * k))) + ops.reshape(bias, (h * k,))
    return ops.reshape(y, (-1, x.shape[1], h, k))


ATTENTION_BLOCK = 32  # query rows per block of the CPU attention (16..60 measured within noise of each other)


def _on_cpu() -> bool:
    """True when JAX computes on the CPU (where blockwise attention beats XLA's fused kernel)."""
    if keras.backend.backend() != "jax":
        return False
    import jax

    device = getattr(jax.config, "jax_default_device", None)
    return (getattr(device, "platform", None) or jax.default_backend()) == "cpu"


def _blockwise_causal(q, k, v, block: int = ATTENTION_BLOCK):
    """Causal attention over (B, T, H, K) in blocks of query rows, each against the keys up to its
    last row only: the masked-out upper triangle is mostly never computed. On XLA's CPU backend
    this runs forward and backward about 1.7x faster than its fused kernel (which computes the
    whole T x T score matrix); the same numbers within float rounding."""
    ops = keras.ops
    t, scale = q.shape[1], 1.0 / float(np.sqrt(q.shape[-1]))
    outs = []
    for lo in range(0, t, block):
        hi = min(t, lo + block)
        s = ops.einsum("bqhd,bkhd->bhqk", q[:, lo:hi], k[:, :hi]) * scale
        allowed = np.arange(hi)[None, :] <= (lo + np.arange(hi - lo))[:, None]
        s = ops.where(allowed, s, ops.full_like(s, -1e30))
        outs.append(ops.einsum("bhqk,bkhd->bqhd", ops.softmax(s, axis=-1), v[:, :hi]))
    return ops.concatenate(outs, axis=1)


@keras.saving.register_keras_serializable(package="candleflow")
class CausalSelfAttention(keras.layers.Layer):
    """Multi-head causal self-attention: on a GPU (or another backend) the backend's fused kernel
    (`keras.ops.dot_product_attention(..., is_causal=True)`, no mask built); on JAX's CPU backend
    blockwise attention that skips most of the masked triangle (`_blockwise_causal`).
    Weights are laid out as in `keras.layers.MultiHeadAttention` (query/key/value kernels
    (dim, heads, key_dim), output kernel (heads, key_dim, dim)), and with the same weights the
    outputs match it with `use_causal_mask=True`. Dropout applies to the attention output (a fused
    kernel has no attention probabilities to drop)."""

    def __init__(self, num_heads: int, key_dim: int, dropout: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_heads, self.key_dim, self.dropout = num_heads, key_dim, dropout
        self.drop = keras.layers.Dropout(dropout)

    def build(self, input_shape) -> None:
        dim = int(input_shape[-1])
        h, k = self.num_heads, self.key_dim
        for name in ("query", "key", "value"):
            setattr(
                self,
                f"{name}_kernel",
                self.add_weight(shape=(dim, h, k), initializer="glorot_uniform", name=f"{name}_kernel"),
            )
            setattr(self, f"{name}_bias", self.add_weight(shape=(h, k), initializer="zeros", name=f"{name}_bias"))
        self.output_kernel = self.add_weight(shape=(h, k, dim), initializer="glorot_uniform", name="output_kernel")
        self.output_bias = self.add_weight(shape=(dim,), initializer="zeros", name="output_bias")

    def call(self, x, training=None):
        ops = keras.ops
        q = _rows(x, self.query_kernel, self.query_bias)
        k = _rows(x, self.key_kernel, self.key_bias)
        v = _rows(x, self.value_kernel, self.value_bias)
        o = _blockwise_causal(q, k, v) if _on_cpu() else ops.dot_product_attention(q, k, v, is_causal=True)
        h, kd, d = self.output_kernel.shape
        out = ops.matmul(ops.reshape(o, (-1, h * kd)), ops.reshape(self.output_kernel, (h * kd, d))) + self.output_bias
        return self.drop(ops.reshape(out, (-1, x.shape[1], d)), training=training)

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {"num_heads": self.num_heads, "key_dim": self.key_dim, "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="candleflow")
class PositionEmbedding(keras.layers.Layer):
    """The learned position table of the GPT model: adds a vector per position (0 .. length-1)
    to a (batch, length, dim) input. Registered, so safe_mode loading finds it."""

    def __init__(self, length: int, dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.length, self.dim = length, dim
        self.table = self.add_weight(shape=(length, dim), initializer="random_normal", name="table")

    def call(self, x):
        return x + self.table[None, :, :]

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {"length": self.length, "dim": self.dim}


def build_cnn(
    cfg: ModelConfig,
    image_shape: tuple[int, int],
    learning_rate: float = 1e-3,
    n_classes: int = 3,
    compile: bool = True,
    regression: RegressionHead | None = None,
):
    """The Jiang-Kelly-Xiu image CNN: per block a 5x3 convolution, batch norm, leaky ReLU and 2x1
    max-pooling; then dropout 0.5 and a softmax over (SHORT, HOLD, LONG)."""
    k = keras
    layers = k.layers
    inputs = k.Input(shape=(*image_shape, 1), name="image")
    x = inputs
    for i, f in enumerate(cfg.cnn_filters):
        x = layers.Conv2D(f, (5, 3), padding="same", name=f"conv_{i + 1}_{f}")(x)
        x = layers.BatchNormalization(name=f"bn_{i + 1}")(x)
        x = layers.LeakyReLU(negative_slope=0.01, name=f"lrelu_{i + 1}")(x)
        x = layers.MaxPooling2D((2, 1), name=f"pool_{i + 1}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.5, name="dropout")(x)
    outputs = _output(k, x, n_classes, regression)
    model = k.Model(inputs, outputs, name="candleflow_cnn")
    return _compiled(k, model, learning_rate, compile, regression)
