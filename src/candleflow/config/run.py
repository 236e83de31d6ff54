"""The whole run (`RunConfig`) and the tuning study's search space (`tune:`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    Field,
    model_validator,
)

from candleflow.config.backtest import BacktestConfig, RewardConfig
from candleflow.config.base import (
    Section,
)
from candleflow.config.dataset import DatasetConfig, ImagesConfig
from candleflow.config.evaluation import EvaluationConfig
from candleflow.config.features import FeatureConfig
from candleflow.config.labels import LabelConfig
from candleflow.config.layouts import Layout, LayoutRules, layout_rules
from candleflow.config.model import ModelConfig
from candleflow.config.output import CacheConfig, ClusterConfig, OutputConfig, UniverseConfig
from candleflow.config.sources import (
    BinanceSource,
    SourceConfig,
    SyntheticSource,
    ValidationPolicy,
    YFinanceSource,
)
from candleflow.config.target_names import TASK_RULES
from candleflow.config.training import TrainingConfig


class SearchParam(Section):
    """One searched config key: a range (low, high; log scale; step for integers) or choices."""

    low: int | float | None = Field(None, description="integers (e.g. 2) search integers, floats (2.0) floats")
    high: int | float | None = Field(None, description="upper end of the range (inclusive)")
    log: bool = Field(False, description="sample the range on a log scale")
    step: int | float | None = Field(None, gt=0, description="grid step (integer ranges: 1 when omitted)")
    choices: list[Any] | None = Field(None, min_length=1, description="any YAML values, e.g. [[64, 32], [128, 64, 32]]")

    @model_validator(mode="after")
    def _range_or_choices(self) -> SearchParam:
        if self.choices is None and (self.low is None or self.high is None or self.low > self.high):
            raise ValueError("give choices, or low <= high")
        if self.log and self.low is not None and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self


class TuneConfig(Section):
    """`candleflow tune`: Optuna over config keys, each trial scored by walk-forward validation."""

    trials: int = Field(20, ge=1, description="total trials in the study (a continued study runs the rest)")
    folds: int = Field(3, ge=1, description="walk-forward folds over the periods before the test period")
    prune: bool = Field(True, description="stop trials whose running fold mean is below the median (Optuna)")
    objective: Literal["auto", "balanced_accuracy", "sharpe", "return", "ic", "r2"] = Field(
        "auto",
        description="what a trial maximises on each fold's validation part: the decisions' balanced accuracy, the "
        "Sharpe ratio or total return of trading them (after costs), or a regression target's IC or "
        "out-of-sample R^2; auto: balanced_accuracy for classes, r2 for regression targets",
    )
    space: dict[str, SearchParam] = Field(
        default_factory=lambda: {
            "training.learning_rate": SearchParam(low=1e-4, high=3e-3, log=True),
            "model.dropout": SearchParam(low=0.0, high=0.5),
        },
        description="dotted config key -> range or choices",
    )


class RunConfig(Section):
    """Everything `candleflow run` needs; every field has the embedded default."""

    task: Literal["classify", "reward"] = Field(
        "classify", description="classify: LONG/HOLD/SHORT from windows; reward: a reward model on reward samples"
    )
    source: SourceConfig = Field(default_factory=SyntheticSource)
    validation: ValidationPolicy = Field(default_factory=ValidationPolicy)
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    labels: LabelConfig = Field(default_factory=LabelConfig)
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    images: ImagesConfig = Field(default_factory=ImagesConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    backtest: BacktestConfig = Field(default_factory=BacktestConfig)
    rewards: RewardConfig = Field(default_factory=RewardConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    tune: TuneConfig = Field(default_factory=TuneConfig)
    universe: UniverseConfig = Field(default_factory=UniverseConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)

    @property
    def layout(self) -> Layout:
        """How the run's windows are laid out, decided here and nowhere else: reward (reward
        samples), panel (many tickers side by side), universe (many series, stacked) or series."""
        if self.task == "reward":
            return "reward"
        if self.dataset.layout == "panel":
            return "panel"
        return "universe" if self.universe.active else "series"

    @property
    def layout_rules(self) -> LayoutRules:
        """What the layout is (`candleflow.config.layouts`): whether it trades one series, learns
        across assets, trains a registered family."""
        return layout_rules(self.layout)

    @model_validator(mode="after")
    def _task(self) -> RunConfig:
        if self.task == "reward" and self.training.monitor != "val_loss":
            raise ValueError("task 'reward' trains a regression: training.monitor must be val_loss")
        if self.training.refit and not self.layout_rules.trades:
            raise ValueError("training.refit retrains a run on one series; a universe, panel or reward run has none")
        objective, rules = self.tune.objective, self.labels.rules
        if objective != "auto" and objective not in rules.objectives:
            other = next(r for r in TASK_RULES.values() if objective in r.objectives)
            raise ValueError(
                f"tune.objective {objective} {other.what}; labels.kind {self.labels.kind} tunes on "
                f"{', '.join(rules.objectives)}"
            )
        if self.tune.objective in ("sharpe", "return") and not self.layout_rules.trades:
            raise ValueError(
                f"tune.objective {self.tune.objective} trades one series' decisions; a universe or panel tunes on "
                "balanced_accuracy (classes), ic or r2 (regression targets)"
            )
        ev = self.evaluation
        if ev.decision_margin == "auto" and ev.margin_objective != "balanced_accuracy":
            if not self.layout_rules.trades:
                raise ValueError(
                    f"evaluation.margin_objective {ev.margin_objective} backtests one series' decisions; a universe or "
                    "panel chooses its margin on balanced_accuracy"
                )
        if self.labels.regression:
            kind = self.labels.kind
            if "val_accuracy" in (self.training.monitor, self.training.lr_monitor):
                raise ValueError(
                    f"labels.kind {kind} is a regression target: training.monitor and training.lr_monitor must be val_loss"
                )
            if self.dataset.balanced:
                raise ValueError(
                    f"labels.kind {kind} is a regression target: dataset.balanced (equal class odds) does not apply"
                )
            if self.layout == "panel" and self.model.kind != "gpt":
                raise ValueError(
                    f"labels.kind {kind} on a panel: the panel GPT (model.kind gpt) regresses, one output per ticker; "
                    f"model.kind {self.model.kind} learns across the assets as a pooled universe (dataset.layout series)"
                )
        if self.dataset.asset_embedding and self.layout != "universe":
            raise ValueError(
                "dataset.asset_embedding: an asset's identity is an input where one model learns many assets "
                "(universe.symbols, dataset.layout series)"
            )
        if self.features.cross_section and self.layout != "universe":
            raise ValueError(
                "features.cross_section: cross-sectional columns are computed across a universe's assets "
                "(universe.symbols, dataset.layout series); here there is one series or a panel"
            )
        if self.labels.cross_section != "raw" and not (self.labels.regression and self.layout_rules.across_assets):
            raise ValueError(
                f"labels.cross_section {self.labels.cross_section}: a regression target over a universe's assets "
                "(universe.symbols or universe.sources) transforms across them; here there is one series or classes"
            )
        self.labels._round_trip = 2 * (self.backtest.fee + self.backtest.slippage)
        return self

    def cache_folders(self) -> dict[str, Path | None]:
        """Each cache's folder, by kind (binance, yfinance, prepared, stores): the configured
        source's own, the other sources' defaults; prepared is None when dataset.cache_dir is unset."""
        src = self.source
        binance = src.cache_dir if isinstance(src, BinanceSource) else BinanceSource.model_fields["cache_dir"].default
        yahoo = src.cache_dir if isinstance(src, YFinanceSource) else YFinanceSource.model_fields["cache_dir"].default
        return {
            "binance": Path(binance).expanduser(),
            "yfinance": Path(yahoo).expanduser(),
            "prepared": Path(self.dataset.cache_dir).expanduser() if self.dataset.cache_dir else None,
            "stores": Path(self.cache.stores_dir).expanduser(),
        }

    def to_yaml(self) -> str:
        """The resolved config as YAML."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)
