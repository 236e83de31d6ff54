"""Trading the decisions (`backtest:`) and reward samples (`reward:`)."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from candleflow.config.base import (
    Paths,
    Section,
)


class BacktestConfig(Section):
    """Trading the decisions: costs per side and how positions are held."""

    fee: float = Field(0.001, ge=0, lt=0.1, description="fraction of notional per side (0.001 = 10 bps)")
    slippage: float = Field(0.0005, ge=0, lt=0.1, description="fraction of notional per side")
    mode: Literal["single", "every"] = Field(
        "single",
        description="single: one position at a time; every: each signal its own trade with 1/horizon of capital",
    )
    fill: Literal["next_open", "close"] = Field(
        "next_open",
        description="where a signal at a bar's close enters: the next bar's open (what a trader acting on a closed "
        "bar gets) or that bar's close (the labels' idealisation)",
    )
    sizing: Literal["fixed", "volatility"] = Field(
        "fixed",
        description="a position's share of equity: fixed (backtest.fraction) or volatility (target_vol over the "
        "realised volatility of the last vol_lookback bars, capped at max_leverage, times fraction)",
    )
    fraction: float = Field(
        1.0, gt=0, le=10, description="share of equity per position (mode every: divided by labels.horizon)"
    )
    target_vol: float = Field(0.2, gt=0, le=5, description="sizing volatility: the annualised volatility aimed at")
    vol_lookback: int = Field(24, ge=2, le=10_000, description="sizing volatility: bars of realised volatility")
    max_leverage: float = Field(1.0, gt=0, le=100, description="sizing volatility: the largest share of equity")
    capital: float = Field(10_000.0, gt=0, description="starting capital in the quote currency (e.g. USDT)")
    min_order: float = Field(
        0.0, ge=0, description="smallest order the exchange takes, in the quote currency; smaller trades are skipped"
    )
    funding: Literal["auto", "off"] = Field(
        "auto",
        description="futures funding: auto charges Binance's public funding rates (downloaded and verified like "
        "klines) for source.kind binance with market um or cm, or the files in funding_paths; off: none",
    )
    funding_paths: Paths = Field(
        default_factory=list,
        description="funding-rate files (Binance's fundingRate ZIPs or their CSVs) for a files source of futures",
    )

    seed: int = Field(0, description="seed of the random-signals baseline")
    top_k: int = Field(
        1, ge=1, description="panel runs: the cross-sectional backtest is long the top k and short the bottom k tickers"
    )

    @model_validator(mode="after")
    def _capital_can_place_an_order(self) -> BacktestConfig:
        if self.min_order > self.capital:
            raise ValueError(
                f"backtest.min_order {self.min_order:g} is above backtest.capital {self.capital:g}: no order could "
                "ever be placed (every backtest would trade nothing); lower min_order or raise capital"
            )
        return self


Range = tuple[float, float]


class RewardConfig(Section):
    """Reward samples: how synthetic states and actions are drawn and what trading costs."""

    n: int = Field(200_000, ge=1, description="samples per run (split chronologically like windows)")
    lookback: int = Field(64, ge=2, description="bars of OHLCV before the decision")
    forward: int = Field(32, ge=1, description="bars the reward is simulated over")
    equity_range: Range = Field((1e4, 1e5), description="account equity in dollars, drawn uniformly")
    balance_offset_range: Range = Field((-5e3, 5e3), description="balance = equity - offset")
    position_probs: list[float] = Field(
        default_factory=lambda: [0.5, 0.25, 0.25], description="probabilities of flat, long, short"
    )
    action_probs: list[float] = Field(
        default_factory=lambda: [1 / 3, 1 / 3, 1 / 3], description="probabilities of hold, long, short"
    )
    dollars_range: Range = Field((1e3, 5e4), description="size of a position or action in dollars")
    sl_range: Range = Field((0.001, 0.05), description="stop-loss distance, fraction of the entry price")
    tp_range: Range = Field((0.001, 0.10), description="take-profit distance, fraction of the entry price")
    fee: float = Field(0.001, ge=0, lt=0.1, description="fraction of notional per side")
    slippage: float = Field(0.0005, ge=0, lt=0.1, description="fraction of notional per side")
    same_bar: Literal["stop", "target"] = Field(
        "stop", description="a bar touching both stop and target: stop (pessimistic) or target"
    )

    @field_validator("equity_range", "balance_offset_range", "dollars_range", "sl_range", "tp_range")
    @classmethod
    def _ordered(cls, v: Range) -> Range:
        if v[0] > v[1]:
            raise ValueError(f"range [{v[0]}, {v[1]}] has its low above its high")
        return v

    @field_validator("position_probs", "action_probs")
    @classmethod
    def _probs(cls, v: list[float]) -> list[float]:
        if len(v) != 3 or any(p < 0 for p in v) or abs(sum(v) - 1) > 1e-6:
            raise ValueError("expected 3 non-negative probabilities that sum to 1")
        return v

    @model_validator(mode="after")
    def _positive_equity(self) -> RewardConfig:
        if self.equity_range[0] <= 0:
            raise ValueError("equity_range must be positive (rewards are fractions of equity)")
        return self
