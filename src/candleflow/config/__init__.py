"""The run configuration: YAML validated by pydantic; the defaults are the embedded default run.

One module per section, re-exported here: `sources` (source:, validation:), `features`,
`labels` (labels and targets), `dataset` (dataset:, images:), `model`, `training`,
`evaluation`, `backtest` (backtest:, reward:), `output` (output:, cache:, universe:, cluster:),
`run` (RunConfig, tune:) and `loading` (load_config, overrides, errors)."""

from __future__ import annotations

from candleflow.config.backtest import BacktestConfig, Range, RewardConfig
from candleflow.config.base import BINANCE_BASE_URL, FEATURE_NAMES, Interval, Paths, SafeName, Section
from candleflow.config.dataset import DatasetConfig, ImagesConfig
from candleflow.config.evaluation import REFERENCE_KINDS, EvaluationConfig, ReferenceKind
from candleflow.config.features import AssetFeatures, FeatureConfig
from candleflow.config.labels import LabelConfig
from candleflow.config.layouts import LAYOUT_RULES, LAYOUTS, Layout, LayoutRules, layout_rules
from candleflow.config.loading import (
    apply_override,
    flatten_keys,
    load_config,
    quote_value,
    set_key,
    validate_config,
    validate_options,
)
from candleflow.config.model import BUILTIN_OPTIONS, ModelConfig
from candleflow.config.output import TRACKING_URI, CacheConfig, ClusterConfig, OutputConfig, UniverseConfig
from candleflow.config.run import RunConfig, SearchParam, TuneConfig
from candleflow.config.sources import (
    YAHOO_INTERVALS,
    BinanceSource,
    FilesSource,
    SourceConfig,
    SyntheticSource,
    ValidationPolicy,
    YFinanceSource,
)
from candleflow.config.training import TrainingConfig

__all__ = [
    "AssetFeatures",
    "BINANCE_BASE_URL",
    "BUILTIN_OPTIONS",
    "BacktestConfig",
    "BinanceSource",
    "CacheConfig",
    "ClusterConfig",
    "DatasetConfig",
    "EvaluationConfig",
    "FEATURE_NAMES",
    "FeatureConfig",
    "FilesSource",
    "ImagesConfig",
    "Interval",
    "LabelConfig",
    "LAYOUTS",
    "LAYOUT_RULES",
    "Layout",
    "LayoutRules",
    "ModelConfig",
    "OutputConfig",
    "Paths",
    "REFERENCE_KINDS",
    "Range",
    "ReferenceKind",
    "RewardConfig",
    "RunConfig",
    "SafeName",
    "SearchParam",
    "Section",
    "SourceConfig",
    "SyntheticSource",
    "TRACKING_URI",
    "TrainingConfig",
    "layout_rules",
    "TuneConfig",
    "UniverseConfig",
    "ValidationPolicy",
    "YAHOO_INTERVALS",
    "YFinanceSource",
    "apply_override",
    "flatten_keys",
    "load_config",
    "quote_value",
    "set_key",
    "validate_config",
    "validate_options",
]
