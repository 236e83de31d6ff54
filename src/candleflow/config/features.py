"""The inputs (`features:`): the feature names, their spans, other assets' features."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from candleflow.config.base import (
    FEATURE_NAMES,
    SafeName,
    Section,
    check_interval,
)
from candleflow.config.feature_names import DEFAULT_FEATURES, parse_cross_section
from candleflow.config.feature_names import parse as parse_feature
from candleflow.config.sources import (
    SourceConfig,
)


def _feature_names(v: list[str]) -> list[str]:
    """Every name known (a one-line error listing what exists) and none repeated."""
    for name in v:
        parse_feature(name)
    if len(set(v)) != len(v):
        raise ValueError("feature names repeat")
    return v


class AssetFeatures(Section):
    """Features of another series as inputs (the BTC return for ETH, SPY for a stock): computed on
    that series' own validated candles and aligned on bar open time."""

    name: SafeName = Field(description="the columns' prefix: NAME:feature")
    source: SourceConfig = Field(description="the other series' source (the same bar interval as the main one)")
    names: list[str] = Field(
        default_factory=lambda: ["log_return"], min_length=1, description="its features (as features.names)"
    )
    missing: Literal["nan", "last"] = Field(
        "nan",
        description="a bar the other series lacks: nan (its windows are left out, counted in the log) or last "
        "(the other series' latest earlier bar, at most max_stale bars old, else nan)",
    )
    max_stale: int = Field(1, ge=1, le=10_000, description="missing last: how many bars old a value may be")

    @field_validator("names")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        return _feature_names(v)


class FeatureConfig(Section):
    """Causal, scale-free features computed per bar; `names` picks and orders them."""

    names: list[str] = Field(
        default_factory=lambda: list(FEATURE_NAMES[:DEFAULT_FEATURES]),
        min_length=1,
        description="features in column order, each a name with optional parameters (rsi(14), macd(12, 26, 9)); "
        "also: " + ", ".join(FEATURE_NAMES[DEFAULT_FEATURES:]) + "; or a feature registered in Python",
    )
    timeframes: list[str] = Field(
        default_factory=list,
        description="coarser intervals (e.g. [4h, 1d]) on which every feature is computed again from the candles "
        "resampled to them (UTC-aligned), each bar seeing only coarse bars closed by its own close: extra columns "
        "NAME@4h, ...",
    )
    assets: list[AssetFeatures] = Field(
        default_factory=list,
        max_length=16,
        description="other series' features as extra columns NAME:feature, aligned on bar time (see AssetFeatures)",
    )
    cross_section: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="a universe's cross-sectional columns cs_STAT(FEATURE) after the per-series ones: STAT one of "
        "mean, median (across the assets present at each time), rank, z (each asset among them), e.g. "
        "[rank(log_return), mean(volatility)]",
    )
    volatility_span: int = Field(24, ge=2, description="EWMA span (bars) of the volatility feature")
    momentum_span: int = Field(24, ge=2, description="bars of the momentum feature's return")
    volume_span: int = Field(48, ge=2, description="EMA span (bars) of the volume_ratio feature's reference")

    @field_validator("names")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        return _feature_names(v)

    @field_validator("timeframes")
    @classmethod
    def _timeframes(cls, v: list[str]) -> list[str]:
        for tf in v:
            check_interval(tf)
        if len(set(v)) != len(v):
            raise ValueError("timeframes repeat")
        return v

    @field_validator("assets")
    @classmethod
    def _assets(cls, v: list[AssetFeatures]) -> list[AssetFeatures]:
        names = [a.name for a in v]
        if len(set(names)) != len(names):
            raise ValueError("features.assets names repeat; each is its columns' prefix")
        return v

    @model_validator(mode="after")
    def _cross_section(self) -> FeatureConfig:
        for spec in self.cross_section:
            parse_cross_section(spec, self.columns)
        return self

    @property
    def columns(self) -> list[str]:
        """Every feature column in order: the names, each name on each timeframe (NAME@TF), then
        each other asset's features (ASSET:NAME)."""
        return [
            *self.names,
            *(f"{n}@{tf}" for tf in self.timeframes for n in self.names),
            *(f"{a.name}:{n}" for a in self.assets for n in a.names),
        ]
