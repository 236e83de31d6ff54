"""The model (`model:`): the family and its options."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    Field,
    model_validator,
)

from candleflow.config.base import (
    Section,
)

BUILTIN_OPTIONS: dict[str, dict[str, str]] = {
    "lightgbm": {
        "trees": "gbm_trees",
        "learning_rate": "gbm_learning_rate",
        "leaves": "gbm_leaves",
        "min_leaf": "gbm_min_leaf",
    },
    "linear": {"c": "linear_c"},
    "lstm": {
        "units": "lstm_units",
        "lstm_dropout": "lstm_dropout",
        "recurrent_dropout": "recurrent_dropout",
        "dense_units": "dense_units",
        "dropout": "dropout",
    },
    "gpt": {
        "d_model": "gpt_d_model",
        "heads": "gpt_heads",
        "layers": "gpt_layers",
        "attention_dropout": "gpt_dropout",
        "dense_units": "dense_units",
        "dropout": "dropout",
    },
    "mlp": {"dense_units": "dense_units", "dropout": "dropout"},
    "cnn": {"filters": "cnn_filters", "dense_units": "dense_units", "dropout": "dropout"},
}


class ModelConfig(Section):
    """The model: `kind` picks the family, `options` (or the older flat keys) size it."""

    @model_validator(mode="before")
    @classmethod
    def _builtin_options(cls, data: Any) -> Any:
        """A built-in family's `options` set its flat keys (gbm_trees, lstm_units, ...), which the
        family reads and the reference lists; an option it does not take is a one-line error."""
        if not isinstance(data, dict) or not data.get("options"):
            return data
        kind = data.get("kind", "lstm")
        names = BUILTIN_OPTIONS.get(kind)
        options = data["options"]
        if names is None or not isinstance(options, dict):
            return data  # a registered family's options: its own schema checks them (Family.options)
        unknown = sorted(set(options) - set(names))
        if unknown:
            raise ValueError(f"model.options.{unknown[0]}: {kind} takes {', '.join(names)}")
        return {**data, **{names[k]: v for k, v in options.items()}}

    kind: str = Field(
        "lstm",
        pattern=r"^[a-z][a-z0-9_]{0,39}$",
        description="the model family (candleflow.models.families): lstm, gpt (causal transformer) or mlp "
        "over feature windows; cnn over chart images; lightgbm or linear (multinomial logistic regression) "
        "over the windows' rows at `lags`; or a family registered in Python",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="the family's own hyperparameters, checked by its schema: lightgbm {trees, learning_rate, "
        "leaves, min_leaf}, linear {c}, lstm {units, lstm_dropout, recurrent_dropout, dense_units, dropout}, gpt "
        "{d_model, heads, layers, attention_dropout, dense_units, dropout}, mlp {dense_units, dropout}, cnn "
        "{filters, dense_units, dropout} (each sets the flat key below); a family registered in Python declares "
        "its own (Family.options)",
    )
    lags: list[Annotated[int, Field(ge=0)]] = Field(
        default_factory=lambda: [0, 1, 2, 4, 8, 16, 32, 64, 119],
        min_length=1,
        description="lightgbm/linear: bars before the window's last bar whose features are the inputs "
        "(clipped to the window)",
    )
    gbm_trees: int = Field(500, ge=1, le=100_000, description="lightgbm: most boosting rounds (early-stopped on val)")
    gbm_learning_rate: float = Field(0.05, gt=0, le=1, description="lightgbm: shrinkage per round")
    gbm_leaves: int = Field(15, ge=2, le=4096, description="lightgbm: leaves per tree")
    gbm_min_leaf: int = Field(100, ge=1, description="lightgbm: fewest training windows in a leaf")
    linear_c: float = Field(1.0, gt=0, description="linear: inverse L2 strength (scikit-learn's C)")
    gpt_d_model: int = Field(64, ge=4, description="gpt: width of the per-timestep embedding")
    gpt_heads: int = Field(4, ge=1, description="gpt: attention heads per block")
    gpt_layers: int = Field(2, ge=1, description="gpt: pre-norm blocks of causal self-attention and MLP")
    gpt_dropout: float = Field(0.0, ge=0, lt=1, description="gpt: attention dropout")
    cnn_filters: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: [64, 128, 256],
        description="cnn: filters per block (the paper: 64, 128, 256 for 20 bars)",
    )
    lstm_units: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: [128, 64, 32],
        min_length=1,
        description="lstm: units per stacked LSTM layer (the last returns its final state)",
    )
    dense_units: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: [32, 16], description="dense layers after the LSTM (and the mlp's layers)"
    )
    dropout: float = Field(0.3, ge=0, lt=1, description="after each dense layer")
    lstm_dropout: float = Field(0.0, ge=0, lt=1, description="lstm: dropout on each LSTM layer's inputs")
    recurrent_dropout: float = Field(
        0.0, ge=0, lt=1, description="> 0 disables cuDNN kernels on GPU (several times slower)"
    )
