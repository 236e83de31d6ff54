"""How a run is judged (`evaluation:`): the decision rule, the reference models."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    field_validator,
)

from candleflow.config.base import (
    Section,
)
from candleflow.errors import ConfigError

ReferenceKind = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
REFERENCE_KINDS: tuple[str, ...] = ("lightgbm", "linear")


class EvaluationConfig(Section):
    """How probabilities become decisions for the metrics and the backtest."""

    decision_margin: float | Literal["auto"] = Field(
        0.05,
        description="predict LONG or SHORT only when its probability beats the runner-up by this "
        "margin, else HOLD (stay out); 0 = plain argmax; auto: the margin of 0, 0.01, 0.02, 0.05, 0.1 whose "
        "decisions score the best balanced accuracy on the validation period (never test; ties: the larger), "
        "written into the run's config.yaml",
    )

    permutation_seconds: float = Field(
        0.0,
        ge=0,
        le=3600,
        description="permutation importance on validation for any family (each input shuffled across at most 2,000 "
        "validation windows, the score's drop): at most this many seconds; 0: off",
    )
    margin_objective: Literal["balanced_accuracy", "sharpe", "return"] = Field(
        "balanced_accuracy",
        description="what decision_margin auto maximises on the validation period: the decisions' balanced "
        "accuracy, or the Sharpe ratio or total return of trading them (the backtest: costs included)",
    )

    @field_validator("decision_margin", mode="before")
    @classmethod
    def _margin_word(cls, v: Any) -> Any:
        if isinstance(v, str):
            if v.strip().lower() == "auto":
                return "auto"
            try:
                return float(v)
            except ValueError:
                raise ValueError(f"expected a margin 0 <= x < 1 or 'auto'; got {v[:40]!r}") from None
        return v

    @field_validator("decision_margin")
    @classmethod
    def _margin(cls, v: float | str) -> float | str:
        if not isinstance(v, str) and not 0 <= v < 1:
            raise ValueError("expected a margin 0 <= x < 1 or 'auto'")
        return v

    @property
    def margin(self) -> float:
        """The decision margin as a number (`auto` is resolved by a run on its validation period
        and written into the run's config.yaml)."""
        if self.decision_margin == "auto":
            raise ConfigError(
                "evaluation.decision_margin is auto: a run chooses it on its validation period; apply a run's own "
                "config (its config.yaml holds the chosen margin) or set a number"
            )
        return float(self.decision_margin)

    reference_models: list[ReferenceKind] = Field(
        default_factory=lambda: list(REFERENCE_KINDS),
        description="tabular families (lightgbm, linear, or one registered in Python) trained on the same "
        "training windows in every run (seconds) and shown next to the model and the baselines; [] to skip",
    )
