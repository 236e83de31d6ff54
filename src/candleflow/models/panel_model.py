"""The panel model: the GPT family over time with all tickers' features (and presence flags) per
step, one softmax over (SHORT, HOLD, LONG) per ticker, and a loss that skips tickers without a
label (-1)."""

from __future__ import annotations

from typing import Any

import numpy as np

from candleflow.config import ModelConfig
from candleflow.models.backend import keras
from candleflow.models.networks import CausalSelfAttention, PositionEmbedding, TimeDense


@keras.saving.register_keras_serializable(package="candleflow")
class MaskedSparseCrossEntropy(keras.losses.Loss):
    """Per sample, the mean cross-entropy over tickers that have a label (y >= 0), each class
    weighted by `class_weights`; a sample without any label adds 0. With `return_weighted`, y_true
    is (batch, tickers, 2): the label and the ticker's forward return R, and each ticker's term is
    also weighted by |R| over the batch's mean |R| (large moves count more; dataset.returns)."""

    def __init__(
        self,
        class_weights: list[float] | None = None,
        return_weighted: bool = False,
        name: str = "masked_sparse_ce",
        **kwargs: Any,
    ):
        super().__init__(name=name, **kwargs)
        self.class_weights = list(class_weights) if class_weights is not None else [1.0, 1.0, 1.0]
        self.return_weighted = return_weighted

    def call(self, y_true, y_pred):
        ops = keras.ops
        y_true = ops.cast(y_true, "float32")
        labels = y_true[..., 0] if self.return_weighted else y_true
        y = ops.cast(labels, "int32")
        valid = ops.cast(y >= 0, "float32")
        y0 = ops.maximum(y, 0)
        ce = keras.losses.sparse_categorical_crossentropy(y0, ops.cast(y_pred, "float32"))  # (B, N)
        w = ops.take(ops.convert_to_tensor(self.class_weights, dtype="float32"), y0) * valid
        if self.return_weighted:
            size = ops.abs(y_true[..., 1]) * valid
            w = w * size / ops.maximum(ops.sum(size) / ops.maximum(ops.sum(valid), 1.0), 1e-12)
        return ops.sum(ce * w, axis=-1) / ops.maximum(ops.sum(valid, axis=-1), 1.0)

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {"class_weights": self.class_weights, "return_weighted": self.return_weighted}


@keras.saving.register_keras_serializable(package="candleflow")
class MaskedRegressionLoss(keras.losses.Loss):
    """Per sample, the mean squared (or Huber) error over the tickers that have a target (y
    finite); a sample without any adds 0. The panel GPT regressing one output per ticker."""

    def __init__(self, kind: str = "mse", delta: float = 1.0, name: str = "masked_regression", **kwargs: Any):
        super().__init__(name=name, **kwargs)
        self.kind, self.delta = kind, delta

    def call(self, y_true, y_pred):
        ops = keras.ops
        y = ops.cast(y_true, "float32")
        valid = ops.logical_not(ops.isnan(y))
        err = ops.where(valid, ops.cast(y_pred, "float32") - ops.where(valid, y, 0.0), 0.0)
        if self.kind == "huber":
            a = ops.abs(err)
            loss = ops.where(a <= self.delta, 0.5 * err * err, self.delta * (a - 0.5 * self.delta))
        else:
            loss = err * err
        w = ops.cast(valid, "float32")
        return ops.sum(loss * w, axis=-1) / ops.maximum(ops.sum(w, axis=-1), 1.0)

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {"kind": self.kind, "delta": self.delta}


@keras.saving.register_keras_serializable(package="candleflow")
class TickerFold(keras.layers.Layer):
    """(batch, window, tickers x features + tickers) panel windows -> (batch x tickers, window,
    features + 1): each ticker's own features and presence flag as a window of its own, so one
    encoder with shared weights reads every ticker (the panel's (window, ticker) samples all
    train it, as a universe's series train one model)."""

    def __init__(self, n_tickers: int, n_features: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n_tickers, self.n_features = n_tickers, n_features

    def call(self, x):
        ops = keras.ops
        n, f = self.n_tickers, self.n_features
        w = ops.shape(x)[1]
        feats = ops.reshape(x[..., : n * f], (-1, w, n, f))
        present = ops.reshape(x[..., n * f : n * f + n], (-1, w, n, 1))
        both = ops.transpose(ops.concatenate([feats, present], axis=-1), (0, 2, 1, 3))  # (B, n, W, f+1)
        return ops.reshape(both, (-1, w, f + 1))

    def compute_output_shape(self, input_shape):
        return (None, input_shape[1], self.n_features + 1)

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {"n_tickers": self.n_tickers, "n_features": self.n_features}


@keras.saving.register_keras_serializable(package="candleflow")
class TickerContext(keras.layers.Layer):
    """(batch x tickers, d) encodings -> (batch, tickers, 2d): each ticker's own encoding beside
    the mean encoding of the tickers present at the window's last step (the market's state), so a
    ticker is read against the cross-section."""

    def __init__(self, n_tickers: int, n_features: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n_tickers, self.n_features = n_tickers, n_features

    def call(self, inputs):
        ops = keras.ops
        h, window = inputs
        n, f = self.n_tickers, self.n_features
        h = ops.reshape(h, (-1, n, ops.shape(h)[-1]))
        present = ops.expand_dims(ops.cast(window[:, -1, n * f : n * f + n] > 0.5, h.dtype), -1)  # (B, n, 1)
        market = ops.sum(h * present, axis=1, keepdims=True) / ops.maximum(ops.sum(present, axis=1, keepdims=True), 1.0)
        return ops.concatenate([h, ops.broadcast_to(market, ops.shape(h))], axis=-1)

    def compute_output_shape(self, input_shapes):
        return (None, self.n_tickers, 2 * input_shapes[0][-1])

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {"n_tickers": self.n_tickers, "n_features": self.n_features}


def build_panel_gpt(
    cfg: ModelConfig,
    window: int,
    n_columns: int,
    n_tickers: int,
    mean: np.ndarray,
    variance: np.ndarray,
    learning_rate: float = 1e-3,
    class_weights: list[float] | None = None,
    n_classes: int = 3,
    return_weighted: bool = False,
    compile: bool = True,
    regression_loss: str | None = None,
):
    """The panel GPT: each ticker's window (its features, normalised with that ticker's own
    moments, and its presence flag) through one causal transformer with shared weights; each
    ticker's encoding beside the mean encoding of the tickers present; one shared head gives every
    ticker's (SHORT, HOLD, LONG). Out: (n_tickers, n_classes); with `regression_loss` (mse or
    huber: a regression target) one linear output per ticker, (n_tickers,), trained on the tickers
    that have a target.

    Sharing the encoder across tickers is what lets the panel learn: the former model mixed all
    tickers' columns into one embedding with its own output per ticker, so each ticker's signal
    had to be learned from that ticker's windows alone (it learned nothing in four epochs on a
    planted per-ticker signal that the single-series models find)."""
    k = keras
    L = k.layers
    d = cfg.gpt_d_model
    n_features = (n_columns - n_tickers) // n_tickers
    inputs = k.Input(shape=(window, n_columns), name="panel_window")
    x = L.Normalization(
        mean=np.asarray(mean, np.float32).tolist(), variance=np.asarray(variance, np.float32).tolist(), name="normalise"
    )(inputs)
    x = TickerFold(n_tickers, n_features, name="per_ticker_windows")(x)
    x = TimeDense(d, name="embed")(x)
    x = PositionEmbedding(window, d, name="positions")(x)
    for i in range(cfg.gpt_layers):
        h = L.LayerNormalization(epsilon=1e-5, name=f"block_{i + 1}_norm_attn")(x)
        h = CausalSelfAttention(
            cfg.gpt_heads, max(d // cfg.gpt_heads, 1), dropout=cfg.gpt_dropout, name=f"block_{i + 1}_attn"
        )(h)
        x = L.Add(name=f"block_{i + 1}_add_attn")([x, h])
        h = L.LayerNormalization(epsilon=1e-5, name=f"block_{i + 1}_norm_mlp")(x)
        h = TimeDense(4 * d, activation="gelu", name=f"block_{i + 1}_mlp_in")(h)
        h = TimeDense(d, name=f"block_{i + 1}_mlp_out")(h)
        x = L.Add(name=f"block_{i + 1}_add_mlp")([x, h])
    x = L.LayerNormalization(epsilon=1e-5, name="final_norm")(x)
    x = L.Cropping1D((window - 1, 0), name="last_position")(x)
    x = L.Flatten(name="last")(x)
    x = TickerContext(n_tickers, n_features, name="with_market")([x, inputs])
    for i, units in enumerate(cfg.dense_units):
        x = L.Dense(units, activation="relu", name=f"dense_{i + 1}_{units}")(x)
        x = L.Dropout(cfg.dropout, name=f"dropout_{i + 1}")(x)
    if regression_loss is not None:
        x = L.Dense(1, dtype="float32", name="forecast")(x)
        outputs = L.Reshape((n_tickers,), name="per_ticker")(x)
        loss: Any = MaskedRegressionLoss(regression_loss)
    else:
        x = L.Dense(n_classes, dtype="float32", name="logits")(x)
        outputs = L.Softmax(axis=-1, dtype="float32", name="classes")(x)
        loss = MaskedSparseCrossEntropy(class_weights, return_weighted)
    model = k.Model(inputs, outputs, name="candleflow_panel_gpt")
    if compile:
        model.compile(optimizer=k.optimizers.Adam(learning_rate=learning_rate), loss=loss)
    return model
