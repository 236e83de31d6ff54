"""The panel model: the GPT family over time with all tickers' features (and presence flags) per
step, one softmax over (SHORT, HOLD, LONG) per ticker, and a loss that skips tickers without a
label (-1)."""

from __future__ import annotations

from typing import Any

import numpy as np

from candleflow.config import ModelConfig
from candleflow.models.backend import keras
from candleflow.models.networks import CausalSelfAttention, PositionEmbedding


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
):
    """A causal transformer over (window, n_columns) panel windows; out: (n_tickers, n_classes)."""
    k = keras
    L = k.layers
    d = cfg.gpt_d_model
    inputs = k.Input(shape=(window, n_columns), name="panel_window")
    x = L.Normalization(
        mean=np.asarray(mean, np.float32).tolist(), variance=np.asarray(variance, np.float32).tolist(), name="normalise"
    )(inputs)
    x = L.Dense(d, name="embed")(x)
    x = PositionEmbedding(window, d, name="positions")(x)
    for i in range(cfg.gpt_layers):
        h = L.LayerNormalization(epsilon=1e-5, name=f"block_{i + 1}_norm_attn")(x)
        h = CausalSelfAttention(
            cfg.gpt_heads, max(d // cfg.gpt_heads, 1), dropout=cfg.gpt_dropout, name=f"block_{i + 1}_attn"
        )(h)
        x = L.Add(name=f"block_{i + 1}_add_attn")([x, h])
        h = L.LayerNormalization(epsilon=1e-5, name=f"block_{i + 1}_norm_mlp")(x)
        h = L.Dense(4 * d, activation="gelu", name=f"block_{i + 1}_mlp_in")(h)
        h = L.Dense(d, name=f"block_{i + 1}_mlp_out")(h)
        x = L.Add(name=f"block_{i + 1}_add_mlp")([x, h])
    x = L.LayerNormalization(epsilon=1e-5, name="final_norm")(x)
    x = L.Cropping1D((window - 1, 0), name="last_position")(x)
    x = L.Flatten(name="last")(x)
    for i, units in enumerate(cfg.dense_units):
        x = L.Dense(units, activation="relu", name=f"dense_{i + 1}_{units}")(x)
        x = L.Dropout(cfg.dropout, name=f"dropout_{i + 1}")(x)
    x = L.Dense(n_tickers * n_classes, dtype="float32", name="logits")(x)
    x = L.Reshape((n_tickers, n_classes), name="per_ticker")(x)
    outputs = L.Softmax(axis=-1, dtype="float32", name="classes")(x)
    model = k.Model(inputs, outputs, name="candleflow_panel_gpt")
    model.compile(
        optimizer=k.optimizers.Adam(learning_rate=learning_rate),
        loss=MaskedSparseCrossEntropy(class_weights, return_weighted),
    )
    return model
