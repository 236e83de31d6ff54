"""How the model is fitted (`training:`)."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    field_validator,
)

from candleflow.config.base import (
    Section,
)


class TrainingConfig(Section):
    """How the model is fitted: epochs, optimiser schedule, callbacks, devices."""

    epochs: int = Field(4, ge=1, description="most epochs (early stopping may end sooner)")
    memory_share: float = Field(
        0.5, gt=0, le=0.95, description="dataset.batch_size auto: the share of available memory a batch may take"
    )
    memory_limit_mb: float | None = Field(
        None,
        gt=0,
        description="dataset.batch_size auto: the memory (device, else resident) training may reach before the batch "
        "is halved at the next epoch; default: in use at the start plus memory_share of what is free",
    )
    learning_rate: float | Literal["auto"] = Field(
        "auto",
        description="Adam's initial learning rate; auto: 3e-3 for the LSTM (measured: 1e-3 under-trains it in "
        "the default 4 epochs), 1e-3 for the other families",
    )

    @field_validator("learning_rate")
    @classmethod
    def _positive_rate(cls, v: float | str) -> float | str:
        if not isinstance(v, str) and not 0 < v < 10:
            raise ValueError("expected a learning rate 0 < x < 10 or 'auto'")
        return v

    monitor: Literal["val_loss", "val_accuracy"] = Field(
        "val_loss", description="what checkpointing and early stopping watch"
    )
    histogram_freq: int = Field(
        0, ge=0, le=1000, description="TensorBoard: a histogram of every weight each N epochs (0: never)"
    )
    profile_batch: int = Field(
        0, ge=0, description="TensorBoard: a profiler trace of this training batch of the first epoch (0: off; JAX)"
    )
    lr_monitor: Literal["val_loss", "val_accuracy"] = Field(
        "val_loss", description="what the learning-rate reduction on a plateau watches (its own choice)"
    )
    patience: int = Field(3, ge=1, description="EarlyStopping patience (epochs)")
    reduce_lr_patience: int = Field(
        1, ge=1, description="epochs without improvement before the learning rate is reduced"
    )
    reduce_lr_factor: float = Field(
        0.5, gt=0, lt=1, description="factor the learning rate is multiplied by on a plateau"
    )
    min_lr: float = Field(1e-5, ge=0, description="the learning rate is never reduced below this")
    class_weight: Literal["balanced", "none"] = Field(
        "balanced", description="balanced: loss weights inverse to class frequency (ignored with dataset.balanced)"
    )
    shuffle_labels: bool = Field(False, description="control experiment: permute training labels")
    refit: bool = Field(
        False,
        description="after the run (one series), train the same family again on every labelled window, validation "
        "and test included, with the epochs (or boosting rounds), learning rates and decision margin the validated "
        "run chose; saved in the run folder's refit/ and used by predict unless told otherwise",
    )
    seed: int = Field(42, description="seeds weights, dropout and shuffling: one config, one result on CPU")
    verbose: Literal["auto", 0, 1, 2] = Field(
        "auto", description="Keras progress output; auto: a bar on a terminal, a line per epoch otherwise"
    )
    backend: Literal["auto", "jax", "torch", "tensorflow"] = Field(
        "auto",
        description="the Keras backend that trains (fixed when Keras is first imported in a process); auto: "
        "KERAS_BACKEND when set, else the fastest measured for the family on this device (JAX on a CPU); torch needs "
        "the torch extra",
    )
    device: Literal["auto", "cpu", "gpu"] = Field(
        "auto", description="auto/gpu: a GPU when one works, else the CPU (one log line says why); cpu: never look"
    )
    precision: Literal["float32", "bfloat16"] = Field(
        "float32", description="bfloat16: mixed precision on GPU (weights stay float32; ignored on CPU, with a warning)"
    )
    distribution: Literal["auto", "off"] = Field(
        "auto",
        description="auto: Keras data parallel over every device JAX sees when it sees several "
        "(batch size must be a multiple of their number)",
    )
