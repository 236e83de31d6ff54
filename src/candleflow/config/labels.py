"""The labels and targets (`labels:`): classes from TP/SL trades, or a regression target."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    PrivateAttr,
    field_validator,
)

from candleflow.config.base import (
    Section,
)
from candleflow.config.sources import (
    BinanceSource,
    FilesSource,
)
from candleflow.config.target_names import Task, TaskRules, rules_of, task_of


class LabelConfig(Section):
    """competitive: LONG if only the long hits its take-profit first, SHORT if only the short
    does, HOLD otherwise; triple_barrier: upper (tp) / lower (sl) / vertical (horizon) barrier of
    one long trade; fixed_horizon: the close `horizon` bars later against +-tp."""

    kind: str = Field(
        "competitive",
        pattern=r"^[a-z][a-z0-9_]{0,39}$",
        description="the target (candleflow.dataset.targets): competitive: LONG and SHORT trades race; "
        "triple_barrier: one long trade; fixed_horizon: the close horizon bars later (these three are classes); "
        "forward_return: the log return from the window's last close to the close horizon bars later; volatility: "
        "the log realised volatility of the next horizon bars (these two are regression targets); or a target "
        "registered in Python (candleflow.register_target)",
    )
    estimator: Literal["close", "parkinson", "garman_klass"] = Field(
        "close",
        description="volatility: each bar's variance from its close-to-close log return (squared), its high-low range "
        "(Parkinson) or its open-high-low-close (Garman-Klass); with labels.fine, close sums the finer bars' squared returns",
    )
    shuffle_blocks: int = Field(
        0,
        ge=0,
        description="control experiment: the labels (targets) of the whole series permuted in blocks of this many "
        "bars, so no feature can predict them and every score must come out null; a length that shares a factor "
        "with the week's bars (168 for 1h) is raised to the next one that does not, so no block keeps its hour of "
        "the week and a seasonal forecast keeps no skill under the null; 0: off",
    )
    shuffle_seed: int = Field(
        0, ge=0, description="the seed of the shuffle_blocks permutation (a control over many seeds)"
    )
    cross_section: Literal["raw", "demean", "rank"] = Field(
        "raw",
        description="regression targets over a universe: what the pooled model learns at each time: raw, the target "
        "minus its mean across the assets then (demean), or its rank among them scaled to unit variance (rank, "
        "Qlib's CSRankNorm); scores always read the raw target",
    )
    loss: Literal["auto", "mse", "huber"] = Field(
        "auto",
        description="regression targets: the training loss; auto: huber for forward_return (fat tails), mse for "
        "volatility (on log volatility); Huber's delta is 1.345 training standard deviations",
    )
    tp: float = Field(0.5, gt=0, description="take-profit distance (see barrier)")
    sl: float = Field(
        1.0,
        gt=0,
        description="stop-loss distance (see barrier); tp < sl makes 'both won' "
        "(HOLD) depend on the path's shape, not on the volatility level",
    )
    horizon: int = Field(24, ge=1, description="bars after the entry bar the trades may run")
    barrier: Literal["volatility", "percent"] = Field(
        "volatility",
        description="percent: tp/sl are percent of the entry close; volatility: "
        "multiples of the EWMA volatility of a horizon-bar return",
    )
    volatility_span: int = Field(24, ge=2, description="EWMA span (bars) of the volatility that scales the barriers")
    same_bar: Literal["stop", "target"] = Field(
        "stop",
        description="a bar touching both TP and SL: stop first (pessimistic) or target first, "
        "unless finer candles (dataset.fine_candles) tell the order",
    )
    vertical: Literal["hold", "sign"] = Field(
        "hold", description="triple_barrier: at the vertical barrier HOLD, or the sign of the return"
    )
    min_barrier: float | Literal["costs"] = Field(
        0.0,
        description="floor on the take-profit distance as a fraction of the entry price (0 <= x < 0.5), or `costs`: "
        "the round trip 2 x (backtest.fee + backtest.slippage), so LONG and SHORT mean trades that can pay; 0: none",
    )
    fine: FilesSource | BinanceSource | None = Field(
        None,
        discriminator="kind",
        description="finer candles of the same market (e.g. 1m under 1h bars): a bar touching TP and SL "
        "together is resolved by which the finer candles reach first",
    )
    # the backtest's round trip, set by RunConfig; `costs` resolves to it
    _round_trip: float = PrivateAttr(2 * (0.001 + 0.0005))

    @field_validator("min_barrier")
    @classmethod
    def _floor_range(cls, v: float | str) -> float | str:
        if not isinstance(v, str) and not 0 <= v < 0.5:
            raise ValueError("expected a fraction 0 <= x < 0.5 or 'costs'")
        return v

    @field_validator("kind")
    @classmethod
    def _known_target(cls, v: str) -> str:
        task_of(v)
        return v

    @property
    def task(self) -> Task:
        """classify or regress: the target's task (`candleflow.config.target_names`)."""
        return task_of(self.kind)

    @property
    def regression(self) -> bool:
        """A real-valued target (forward_return, volatility, a registered regression), not classes."""
        return task_of(self.kind) == "regress"

    @property
    def rules(self) -> TaskRules:
        """What the target's task decides (objectives, monitors, class weights): `TaskRules`."""
        return rules_of(self.kind)

    @property
    def floor(self) -> float:
        """The take-profit floor as a fraction of the entry price (`costs` resolved)."""
        return self._round_trip if self.min_barrier == "costs" else float(self.min_barrier)
