"""The run configuration: YAML validated by pydantic; the defaults are the embedded default run."""

from __future__ import annotations

import os
import re
import types
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from candleflow.config.feature_names import BUILTIN as _BUILTIN_FEATURES
from candleflow.config.feature_names import DEFAULT_FEATURES
from candleflow.config.feature_names import parse as parse_feature
from candleflow.config.intervals import interval_ns
from candleflow.config.target_names import task_of
from candleflow.errors import ConfigError

BINANCE_BASE_URL = "https://data.binance.vision"
# the features `features.names` may list; dataset/features.py computes exactly these (a test checks)
FEATURE_NAMES = tuple(_BUILTIN_FEATURES)  # the built-in features (the first DEFAULT_FEATURES are the default set)


def _check_interval(v: str) -> str:
    try:
        interval_ns(v)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return v


Interval = Annotated[str, AfterValidator(_check_interval)]


def _check_safe_name(v: str) -> str:
    from candleflow.errors import DataError
    from candleflow.fs.guard import check_name

    try:
        return check_name(v, "name")
    except DataError as exc:
        raise ValueError(str(exc).removeprefix("name ")) from None


# symbols and run names become path components (cache folders, run folders, store entries)
SafeName = Annotated[str, AfterValidator(_check_safe_name)]


def _one_is_a_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Paths = Annotated[list[str], BeforeValidator(_one_is_a_list)]  # files or globs; one path is a list of one


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _takes_bool(annotation: Any) -> bool:
    """Whether a field's type admits a boolean (bool, Any, a union or Literal holding one)."""
    import typing

    if annotation is bool or annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        return any(isinstance(a, bool) for a in args)
    if origin is Annotated:
        return _takes_bool(args[0])
    if origin in (typing.Union, types.UnionType):
        return any(_takes_bool(a) for a in args)
    return origin is None and annotation is object


class SyntheticSource(_Section):
    """A seeded synthetic market (GARCH volatility, Student-t shocks, daily volume cycle)."""

    kind: Literal["synthetic"] = "synthetic"
    symbol: SafeName = Field("SYNTH", description="name the series carries (run folders, reports)")
    interval: Interval = Field("1h", description="bar interval, e.g. 1m, 1h, 1d")
    n_bars: int = Field(24_000, ge=100, le=50_000_000, description="bars to generate")
    start: str = Field("2021-01-01", description="open time of the first bar (UTC)")
    seed: int = Field(7, description="random seed: one seed, one market")
    start_price: float = Field(30_000.0, gt=0, description="close of the bar before the first")
    annual_vol: float = Field(0.6, gt=0, description="long-run annualised volatility")
    garch_alpha: float = Field(0.08, ge=0, lt=1, description="GARCH(1,1) weight of the last squared shock")
    garch_beta: float = Field(0.90, ge=0, lt=1, description="GARCH(1,1) weight of the last variance (alpha + beta < 1)")
    tail_dof: float = Field(5.0, gt=2, description="Student-t degrees of freedom of the shocks")
    signal_strength: float = Field(
        0.25,
        ge=0,
        le=1,
        description="predictable drift per bar, in units of the bar's volatility, times a "
        "bounded trend state seen in past returns; 0 = no predictable component",
    )
    signal_span: int = Field(24, ge=2, description="bars of past returns the trend state averages")
    substeps: int = Field(16, ge=2, description="intrabar path steps that give high and low")
    market_factor: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="share of each shock's variance that is a market-wide shock (the same for every "
        "symbol with the same market_seed): a synthetic universe whose series move together",
    )
    market_seed: int = Field(0, description="seed of the market-wide shocks")

    @model_validator(mode="after")
    def _stationary(self) -> SyntheticSource:
        if self.garch_alpha + self.garch_beta >= 1:
            raise ValueError("garch_alpha + garch_beta must be < 1 (stationary volatility)")
        return self


class FilesSource(_Section):
    """Local Binance kline CSV/ZIP files or generic CSV/Parquet/Feather with OHLCV columns."""

    kind: Literal["files"] = "files"
    paths: Paths = Field(min_length=1, description="files or glob patterns, read in sorted order")

    symbol: SafeName | None = Field(
        None, description="series name; default: from Binance file names, else the first file's stem"
    )
    interval: Interval | None = Field(None, description="bar interval; inferred from the data when unset")
    format: Literal["auto", "binance", "csv", "parquet", "feather"] = Field(
        "auto", description="auto: from the file name and content"
    )
    adjust: Literal["auto", "none"] = Field(
        "auto",
        description="auto: a file with an adjusted-close column (Adj Close, adj_close, ...) has its open, high, "
        "low and close back-adjusted by adjusted / close and its volume by the inverse (splits and dividends "
        "removed, real moves kept), said in the report; none: prices as written",
    )
    timezone: str | None = Field(
        None,
        description="IANA zone (e.g. America/New_York) of times written without a UTC offset; "
        "unset: UTC. Times with an offset (2025-06-26 10:30:00-04:00) are converted as written",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str | None) -> str | None:
        if v is not None:
            import zoneinfo

            try:
                zoneinfo.ZoneInfo(v)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {v!r}; expected an IANA name such as America/New_York") from None
        return v


class BinanceSource(_Section):
    """Klines from Binance's public bulk data, downloaded, verified and cached."""

    kind: Literal["binance"] = "binance"
    market: Literal["spot", "um", "cm"] = Field("spot", description="spot, um (USD-M futures) or cm (COIN-M futures)")
    symbol: SafeName = Field("BTCUSDT", description="exchange symbol, e.g. BTCUSDT")
    interval: Interval = Field("1h", description="any interval Binance publishes except 1mo (1s: spot only)")
    start: str = Field("2024-01", description="YYYY-MM (whole month) or YYYY-MM-DD")
    end: str = Field("2024-06", description="YYYY-MM (whole month) or YYYY-MM-DD, inclusive")
    base_url: str = Field(BINANCE_BASE_URL, description="https://..., http://127.0.0.1:... or file://... mirror")
    cache_dir: str = Field(
        "~/.cache/candleflow/binance",
        description="raw ZIPs and checksums in the remote layout, parsed candles under candles/",
    )
    concurrency: int = Field(8, ge=1, le=64, description="parallel downloads")
    verify: bool = Field(True, description="check every ZIP against its .CHECKSUM (sha256)")
    retries: int = Field(
        4, ge=0, le=20, description="retries per file on timeouts, resets, truncated bodies and 5xx (not on 404)"
    )
    timeout: float = Field(30.0, gt=0, description="seconds without data before a request is retried")
    deadline: float = Field(
        600.0,
        gt=0,
        description="seconds one attempt at one file may take in all (a server that drips bytes is cut off)",
    )

    @field_validator("start", "end", mode="before")
    @classmethod
    def _date_text(cls, v: Any) -> Any:
        return v.isoformat() if hasattr(v, "isoformat") else v  # YAML reads 2024-01-15 as a date

    @field_validator("base_url")
    @classmethod
    def _mirror_url(cls, v: str) -> str:
        if not v.startswith(("https://", "http://", "file://")):
            raise ValueError("expected an https://, http:// or file:/// URL")
        if v.startswith("file://") and not v.startswith("file:///"):
            host = v[len("file://") :].split("/", 1)[0]
            raise ValueError(
                f"a file:// URL takes an absolute path (file:///path/to/mirror); here {host!r} would be read as "
                "a host name and the path after it as absolute"
            )
        return v

    @model_validator(mode="after")
    def _published(self) -> BinanceSource:
        from candleflow.config.markets import check_market_interval, parse_date

        try:
            check_market_interval(self.market, self.interval)
            parse_date(self.start), parse_date(self.end)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        if parse_date(self.end, end=True) < parse_date(self.start):
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


YAHOO_INTERVALS = ("1m", "2m", "5m", "15m", "30m", "1h", "1d")


class YFinanceSource(_Section):
    """Stocks, ETFs and indices from Yahoo Finance through the yfinance package, cached as Parquet;
    each ticker's exchange gives its calendar (validation.calendar: auto)."""

    kind: Literal["yfinance"] = "yfinance"
    tickers: list[SafeName] = Field(
        min_length=1,
        max_length=5000,
        description="Yahoo symbols, e.g. [SPY] (one source is one series; several tickers become one "
        "universe entry each)",
    )
    interval: Literal["1m", "2m", "5m", "15m", "30m", "1h", "1d"] = Field(
        "1d", description="bar interval (Yahoo keeps 1m bars 30 days, intraday bars 730 days)"
    )
    start: str = Field("2020-01-01", description="first day, YYYY-MM-DD")
    end: str | None = Field(None, description="last day, YYYY-MM-DD, inclusive; unset: up to now")
    auto_adjust: bool = Field(True, description="prices adjusted for splits and dividends (Yahoo's adjustment)")
    prepost: bool = Field(
        False, description="also fetch pre- and post-market bars (validation.extended_hours keeps or drops them)"
    )
    cache_dir: str = Field("~/.cache/candleflow/yfinance", description="downloaded bars as Parquet, one file per query")
    base_url: str | None = Field(
        None, description="send Yahoo's requests to this mirror or proxy instead (e.g. http://127.0.0.1:8080)"
    )

    @field_validator("start", "end", mode="before")
    @classmethod
    def _date_text(cls, v: Any) -> Any:
        return v.isoformat() if hasattr(v, "isoformat") else v

    @field_validator("start", "end")
    @classmethod
    def _iso_day(cls, v: str | None) -> str | None:
        import datetime as dt

        if v is not None:
            try:
                dt.date.fromisoformat(v)
            except ValueError:
                raise ValueError(f"date {v!r}: expected YYYY-MM-DD") from None
        return v

    @property
    def symbol(self) -> str:
        return self.tickers[0]


SourceConfig = Annotated[SyntheticSource | FilesSource | BinanceSource | YFinanceSource, Field(discriminator="kind")]


class ValidationPolicy(_Section):
    """What to do with each defect: 'error' stops with the row named, 'drop' removes rows,
    'repair' fixes them; every drop and repair is counted in the report."""

    nonfinite: Literal["error", "drop"] = Field("error", description="NaN or inf in OHLCV")
    ohlc: Literal["error", "drop", "repair"] = Field(
        "error",
        description="high/low not covering open/close; repair widens high/low, but clips a bad print (a high "
        "or low 3x or more from its bar and neighbours) to the body and drops a bar whose open or close is one",
    )
    nonpositive: Literal["error", "drop"] = Field("error", description="a price <= 0 or a volume < 0")
    out_of_order: Literal["error", "drop", "repair"] = Field(
        "repair", description="time going backwards; repair sorts (stable)"
    )
    duplicates: Literal["error", "drop"] = Field(
        "drop", description="repeated open time; drop keeps the first (conflicting copies are counted)"
    )
    misaligned: Literal["error", "drop"] = Field("error", description="open time off the interval grid")
    zero_volume: Literal["allow", "drop", "error"] = Field(
        "allow", description="bars with zero volume; drop splits the segment there"
    )
    gaps: Literal["error", "split", "repair"] = Field(
        "repair",
        description="missing bars: repair fills short gaps (gap_tolerance), split starts a new segment at every gap",
    )
    gap_tolerance: int = Field(
        3,
        ge=0,
        description="with gaps=repair, gaps of up to this many missing bars are filled "
        "with flat zero-volume bars; longer gaps split segments",
    )
    calendar: str = Field(
        "auto",
        pattern=r"^(auto|24/7|[A-Za-z0-9_-]{2,40})$",
        description="where bars are expected: 24/7 (every interval), an exchange calendar of the "
        "exchange_calendars package (XNYS, XNAS, XLON, XETR, XTKS, ...): only inside its sessions, so "
        "weekends, holidays, nights, lunch breaks and early closes are neither gaps nor filled; auto: "
        "the exchange a yfinance source reports; for files, inferred from the bars (24/7 where they fall "
        "on weekends, else the exchange whose sessions match 95% of the days, else an error); 24/7 for "
        "Binance and the synthetic market",
    )
    session_breaks: Literal["continue", "segment"] = Field(
        "continue",
        description="with a calendar: continue lets windows and labels run from one session into the next "
        "(bars count trading bars); segment starts a new segment at every session",
    )
    extended_hours: Literal["drop", "keep"] = Field(
        "drop",
        description="with an intraday calendar: bars outside the regular session (pre- and post-market) "
        "are dropped (counted) or kept as bars of their session",
    )
    spikes: Literal["allow", "repair", "drop", "error"] = Field(
        "repair",
        description="price spikes that pass the OHLC check (a wick or a one-bar close jump that reverts, "
        "beyond spike_threshold x the bars' typical move): allow keeps them (counted), repair "
        "clips a wick to the bar's body and drops a bar whose close jumps and reverts, drop removes the bars",
    )
    splits: Literal["warn", "adjust", "error", "allow"] = Field(
        "warn",
        description="unadjusted prices: a bar that opens at a split ratio (1:2, 2:3, 2, 3, ... within 2.5%) of the "
        "previous close and stays there is a suspected split: warn reports it with its date, adjust "
        "back-adjusts the bars before it, error stops naming the row, allow only counts it",
    )
    spike_threshold: float = Field(
        30.0,
        gt=1,
        description="a spike is larger than this many times the bars' typical move before it (an EWMA of "
        "max(|close-to-close log return|, log(high / low)))",
    )


def _feature_names(v: list[str]) -> list[str]:
    """Every name known (a one-line error listing what exists) and none repeated."""
    for name in v:
        parse_feature(name)
    if len(set(v)) != len(v):
        raise ValueError("feature names repeat")
    return v


class AssetFeatures(_Section):
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


class FeatureConfig(_Section):
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
            _check_interval(tf)
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

    @property
    def columns(self) -> list[str]:
        """Every feature column in order: the names, each name on each timeframe (NAME@TF), then
        each other asset's features (ASSET:NAME)."""
        return [
            *self.names,
            *(f"{n}@{tf}" for tf in self.timeframes for n in self.names),
            *(f"{a.name}:{n}" for a in self.assets for n in a.names),
        ]


class LabelConfig(_Section):
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
    def regression(self) -> bool:
        """A real-valued target (forward_return, volatility, a registered regression), not classes."""
        return task_of(self.kind) == "regress"

    @property
    def floor(self) -> float:
        """The take-profit floor as a fraction of the entry price (`costs` resolved)."""
        return self._round_trip if self.min_barrier == "costs" else float(self.min_barrier)


class DatasetConfig(_Section):
    """Sliding windows over the features and the purged chronological split into train/val/test."""

    window: int = Field(120, ge=2, description="bars per window (120 in the original design)")
    val_fraction: float = Field(0.2, gt=0, lt=1, description="share of windows (by end time) in the validation period")
    test_fraction: float = Field(0.0, ge=0, lt=1, description="share of windows in a final test period (0: none)")
    embargo: int = Field(0, ge=0, description="extra bars dropped before each later split")
    train_stride: int = Field(2, ge=1, description="keep every k-th training window (neighbours overlap almost fully)")
    stride: int = Field(1, ge=1, description="windows end every k-th valid bar (all parts)")
    sample_rate: int = Field(1, ge=1, description="a window takes every r-th bar: it spans (window - 1) * r + 1 bars")
    batch_size: int | Literal["auto"] = Field(
        256,
        description="windows per training batch; auto: the largest power of two whose predicted training memory "
        "fits training.memory_share of the memory available (the GPU's on a GPU), at least 8 steps an epoch, "
        "halved once if the first step still runs out of memory",
    )

    batch_probe: bool = Field(
        True,
        description="with batch_size auto: time training steps at the memory-based batch and smaller powers of two, "
        "and keep the one whose time per sample stopped falling (logged)",
    )

    @field_validator("batch_size")
    @classmethod
    def _batch(cls, v: int | str) -> int | str:
        if not isinstance(v, str) and v < 1:
            raise ValueError("expected a batch size >= 1 or 'auto'")
        return v

    balanced: bool = Field(
        False, description="training batches drawn with equal class odds each epoch (instead of training.class_weight)"
    )
    prefetch: int = Field(
        2,
        ge=0,
        le=64,
        description="batches a background thread makes ahead while the model trains (the same batches in the same "
        "order; 0: made on demand)",
    )
    layout: Literal["series", "panel"] = Field(
        "series",
        description="series: windows of one series at a time; panel (a universe): windows over all tickers side "
        "by side on one time axis, (window, tickers x features + tickers presence flags), one label per ticker",
    )
    panel_calendar: Literal["same", "union", "intersection"] = Field(
        "same",
        description="panel rows: same (every ticker must follow one calendar; rows are their bar times), "
        "union (tickers on different calendars; rows where any trades), intersection (rows where all trade)",
    )
    returns: bool = Field(
        False,
        description="panel runs: batches carry each ticker's forward return R beside its label, and the loss "
        "weights each ticker's cross-entropy by |R| over the batch mean (large moves count more)",
    )
    cache_dir: str | None = Field(
        None,
        description="prepared-data cache (features, labels as memory-mapped .npy), "
        "e.g. ~/.cache/candleflow/prepared; off when unset",
    )

    @model_validator(mode="after")
    def _fractions(self) -> DatasetConfig:
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("val_fraction + test_fraction must be < 1")
        return self


class ImagesConfig(_Section):
    """Chart images rendered from windows (for `model.kind: cnn` and `candleflow images`)."""

    layout: Literal["bar4", "jkx"] = Field(
        "jkx",
        description="bar4: 4 pixels per bar, black on white; jkx: Jiang, Kelly & Xiu's 3 pixels per bar with volume",
    )
    bars: int = Field(20, ge=2, le=4096, description="bars per image (jkx sizes: 5, 20, 60); at most 4,096")
    height: int | None = Field(
        None, ge=4, le=8192, description="rows; default 500 for bar4, the paper's size for jkx; at most 8,192"
    )
    volume: bool = Field(True, description="jkx: volume bars in the bottom fifth")
    moving_average: bool = Field(True, description="jkx: moving average of close over `bars` bars")
    dtype: Literal["uint8", "float32"] = Field("uint8", description="uint8 0..255, or float32 0..1")
    device: Literal["auto", "cpu", "gpu"] = Field(
        "auto", description="auto: the GPU through CuPy when present, else the CPU"
    )
    format: Literal["hdf5", "npz", "zarr", "png", "jpeg"] = Field(
        "hdf5", description="`candleflow images` storage: hdf5, npz, zarr (arrays), png or jpeg (one file per image)"
    )
    mode: Literal["single", "batch"] = Field(
        "single", description="single: one file or store for all images; batch: files of images_per_file images"
    )
    images_per_file: int = Field(50_000, ge=1, le=10_000_000, description="images per file in mode 'batch'")
    compression: Literal["gzip", "lz4"] = Field(
        "gzip",
        description="hdf5: gzip (deflate level 1, which plain h5py, HDFView and every HDF5 reader open) or lz4 "
        "(faster to write, needs the hdf5plugin filter outside candleflow)",
    )
    out: str = Field(
        "images",
        min_length=1,
        description="where `candleflow images` writes: a file (hdf5/npz) or folder; --out overrides",
    )


# the built-in families' options (model.options) and the flat keys they set; a family registered
# in Python declares its own schema (Family.options) and checks its options where it is looked up
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


class ModelConfig(_Section):
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


class TrainingConfig(_Section):
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


ReferenceKind = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
REFERENCE_KINDS: tuple[str, ...] = ("lightgbm", "linear")


class EvaluationConfig(_Section):
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


class BacktestConfig(_Section):
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


class RewardConfig(_Section):
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


TRACKING_URI = re.compile(
    r"(sqlite:///\S+|https?://[A-Za-z0-9.\-\[\]:]+(/\S*)?|(postgresql|mysql|mssql)(\+\w+)?://\S+|databricks(://\S*)?"
    r"|file:\S+)"
)


class OutputConfig(_Section):
    """Where run folders and log files go."""

    runs_dir: str = Field("runs", description="folder that holds the run folders")
    name: SafeName | None = Field(None, description="run folder name (inside runs_dir); default: time and symbol")
    report: bool = Field(
        True,
        description="write report.html when the run finishes (its plots take a few seconds); false: skip it, e.g. "
        "in a sweep of many runs: `candleflow report RUN` writes it later from the figures the run stored",
    )
    log_dir: str | None = Field(
        None,
        description="log files of commands other than run/train (those log into their run folder); default "
        "$CANDLEFLOW_LOG_DIR, else $XDG_STATE_HOME/candleflow/logs (~/.local/state/candleflow/logs)",
    )
    tags: list[SafeName] = Field(
        default_factory=list,
        max_length=32,
        description="labels kept in the run's metadata.json, shown by `models list` and filtered by its --tag",
    )
    notes: str = Field("", max_length=2000, description="free text kept in the run's metadata.json and its report")
    equity_scale: Literal["auto", "log", "linear"] = Field(
        "auto",
        description="the report's equity curves: log, linear, or auto (log when a curve moves by more than a "
        "factor of 2, so a model's small moves stay visible beside a large buy and hold)",
    )
    tracking_uri: str | None = Field(
        None,
        description="MLflow tracking URI (e.g. sqlite:///mlflow.db or http://host:5000): log each run's params, "
        "metrics and files there as well (the tracking extra); file: stores only with MLFLOW_ALLOW_FILE_STORE=true "
        "(MLflow 3 wants a database); null: off",
    )
    tracking_experiment: str = Field("candleflow", description="MLflow experiment the runs are logged under")

    @field_validator("tracking_uri")
    @classmethod
    def _tracking_uri(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not TRACKING_URI.fullmatch(v):
            raise ValueError(
                "expected an MLflow tracking URI: sqlite:///PATH, http(s)://HOST[:PORT], postgresql:// or mysql:// "
                "URLs, databricks, or file:PATH"
            )
        if v.startswith("file:") and os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() not in ("1", "true"):
            raise ValueError(
                "MLflow 3 refuses its plain-file store; use sqlite:///mlflow.db (the tracking extra installs what it "
                "needs), or set MLFLOW_ALLOW_FILE_STORE=true to keep the file store"
            )
        return v


class CacheConfig(_Section):
    """Size caps of candleflow's caches (Binance files, yfinance bars, prepared data, store copies)."""

    max_gb: float | None = Field(
        50.0,
        gt=0,
        description="each cache folder is kept under this many GB (10^9 bytes): after a write, its least recently "
        "used entries are removed (never those the command is using); null: no cap. `candleflow cache` lists "
        "and prunes them",
    )
    stores_dir: str = Field(
        "~/.cache/candleflow/stores", description="local copies of remote stores' entries (so they can be mmapped)"
    )

    @property
    def max_bytes(self) -> int | None:
        """max_gb in bytes, or None (no cap)."""
        from candleflow.fs.caches import gb_to_bytes

        return gb_to_bytes(self.max_gb)


_ENTRY_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


class UniverseConfig(_Section):
    """Many symbols and intervals prepared into one store, one task per symbol x interval.

    `symbols` and `intervals` each replace the source's own (a files source may use {symbol} and
    {interval} in its paths; synthetic symbols get seed + their position); `sources` adds named
    sources of any kind (e.g. months of one market as separate series)."""

    symbols: list[SafeName] = Field(default_factory=list, description="e.g. [BTCUSDT, ETHUSDT]; empty: the source's")
    intervals: list[Interval] = Field(default_factory=list, description="e.g. [1m, 1h]; empty: the source's")
    sources: dict[Annotated[str, Field(pattern=_ENTRY_NAME)], SourceConfig] = Field(
        default_factory=dict, description="name -> source, each prepared as its own entry"
    )
    store: str = Field("prepared", description="path or fsspec URL (file://, s3://, gs://, memory://) of the store")

    @property
    def active(self) -> bool:
        """True when the universe names series: `run` and `prepare` then work over the store."""
        return bool(self.symbols or self.intervals or self.sources)


class ClusterConfig(_Section):
    """Where prepare tasks run: local worker processes, or a running Dask scheduler."""

    scheduler: str | None = Field(
        None,
        description="address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786; "
        "unset: a local cluster of `workers` processes",
    )
    workers: int = Field(2, ge=1, le=512, description="local worker processes (one task each at a time)")
    threads_per_worker: int = Field(1, ge=1, le=64, description="threads for numba and Arrow inside each task")
    memory_limit: str = Field("auto", description="per local worker, e.g. 4GiB; auto: the machine's share")
    retries: int = Field(
        2,
        ge=0,
        le=20,
        description="times a failed task is run again (a killed worker's tasks are rescheduled by Dask on top of this)",
    )
    connect_timeout: float = Field(20.0, gt=0, description="seconds to wait for the scheduler")


class SearchParam(_Section):
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


class TuneConfig(_Section):
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


# measured on the embedded market (docs/benchmarks.md): the LSTM at 1e-3 under-trains in 4 epochs
Layout = Literal["series", "universe", "panel", "reward"]


class RunConfig(_Section):
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

    @model_validator(mode="after")
    def _task(self) -> RunConfig:
        if self.task == "reward" and self.training.monitor != "val_loss":
            raise ValueError("task 'reward' trains a regression: training.monitor must be val_loss")
        if self.training.refit and self.layout != "series":
            raise ValueError("training.refit retrains a run on one series; a universe, panel or reward run has none")
        objective = self.tune.objective
        if self.labels.regression and objective in ("balanced_accuracy", "sharpe", "return"):
            raise ValueError(f"tune.objective {objective} scores decisions; a regression target tunes on ic or r2")
        if not self.labels.regression and objective in ("ic", "r2"):
            raise ValueError(
                f"tune.objective {objective} scores a regression target; classes tune on balanced_accuracy, sharpe or return"
            )
        ev = self.evaluation
        if ev.decision_margin == "auto" and ev.margin_objective != "balanced_accuracy":
            if self.layout in ("panel", "universe"):
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
            if self.layout in ("panel", "universe"):
                raise ValueError(
                    f"labels.kind {kind}: regression targets train on one series for now (no universe or panel)"
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


def load_config(
    path: str | Path | None = None, overrides: list[str] | dict[str, Any] | None = None, **settings: Any
) -> RunConfig:
    """Read a YAML config (or the embedded default), apply overrides, validate.

    Overrides are `key=value` strings as `--set` takes them (values read as YAML), or a mapping
    of dotted keys to Python values, or keyword arguments with `__` for the dots::

        load_config(overrides=["training.epochs=1"])
        load_config(overrides={"training.epochs": 1, "features.names": ["rsi", "macd(12, 26, 9)"]})
        load_config(training__epochs=1, model__kind="lightgbm")
    """
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if p.is_dir():
            raise ConfigError(f"config file {str(p)!r} is a folder; expected a YAML file")
        if not p.is_file():
            raise ConfigError(f"config file {str(p)!r} does not exist")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config file {str(p)!r}: not UTF-8 text (byte {exc.start}); expected YAML") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(
                f"config file {str(p)!r}{where}: not valid YAML ({getattr(exc, 'problem', exc)})"
            ) from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {str(p)!r}: expected a mapping of sections, got {type(loaded).__name__}")
        data = loaded
    if isinstance(overrides, dict):
        pairs = list(overrides.items())
    else:
        for item in overrides or []:
            apply_override(data, item)
        pairs = []
    for key, value in [*pairs, *((k.replace("__", "."), v) for k, v in settings.items())]:
        set_key(data, str(key), value)
    return validate_config(data)


def set_key(data: dict[str, Any], key: str, value: Any) -> None:
    """Set a dotted key to a Python value (no YAML parsing) in a nested dict, as `--set` would."""
    parts = key.strip().split(".")
    if not key.strip() or not all(parts):
        raise ConfigError(f"override {key!r}: expected a dotted key such as labels.horizon")
    node = data
    for part in parts[:-1]:
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"override {key!r}: {part!r} is not a section")
        node = nxt
    if parts[-1] == "kind" and _is_source_path(parts) and value != _implied_kind(node):
        node.clear()  # another kind of source replaces the source: its old keys mean nothing to the new one
    node[parts[-1]] = value


def apply_override(data: dict[str, Any], item: str) -> None:
    """Set a dotted key from 'a.b.c=value' (value parsed as YAML) in a nested dict."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r}: expected key=value, e.g. labels.horizon=48")
    try:
        value = yaml.safe_load(_quote_calls(raw)) if raw.strip() else raw
    except yaml.YAMLError as exc:
        if raw.strip().startswith(("[", "{")):  # meant as a list or mapping: say why it is not one
            raise ConfigError(
                f"--set {key.strip()}={raw}: not valid YAML ({getattr(exc, 'problem', exc)}); quote items "
                f"that hold brackets, braces or commas, e.g. {key.strip()}=['data/{{symbol}}-[0-9]*.csv']"
            ) from None
        value = raw  # a plain string that YAML cannot read stays as written
    try:
        set_key(data, key, value)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace(f"override {key.strip()!r}", f"override {item!r}", 1)) from None


def _quote_calls(raw: str) -> str:
    """A flow list whose items hold parentheses with commas, `[macd(12, 26, 9), rsi]` (feature
    names as the docs write them), with those items quoted so that YAML reads one item each:
    `['macd(12, 26, 9)', rsi]`. Anything else is returned as it is."""
    text = raw.strip()
    if not (text.startswith("[") and text.endswith("]") and "(" in text):
        return raw
    items, depth, current = [], 0, ""
    for ch in text[1:-1]:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            items.append(current.strip())
            current = ""
        else:
            current += ch
    items.append(current.strip())
    if depth != 0:
        return raw
    quoted = [f"'{i.replace(chr(39), chr(39) * 2)}'" if "(" in i and i[:1] not in "'\"" else i for i in items]
    return "[" + ", ".join(quoted) + "]"


def _is_source_path(parts: list[str]) -> bool:
    """`source.kind` or `universe.sources.NAME.kind`."""
    return parts == ["source", "kind"] or (len(parts) == 4 and parts[:2] == ["universe", "sources"])


def _implied_kind(source: dict[str, Any]) -> str | None:
    """The kind a source section has (as validate_config reads it), None for an empty section."""
    if not source:
        return None
    return source.get("kind") or ("files" if "paths" in source else "synthetic")


def validate_config(data: dict[str, Any]) -> RunConfig:
    """Validate a config mapping; the first problem becomes one line naming key and value."""
    universe: dict[str, Any] = data["universe"] if isinstance(data.get("universe"), dict) else {}
    named: dict[str, Any] = universe["sources"] if isinstance(universe.get("sources"), dict) else {}
    for source in [data.get("source"), *named.values()]:
        if isinstance(source, dict) and "kind" not in source:
            source["kind"] = "files" if "paths" in source else "synthetic"
    _refuse_booleans(RunConfig, data, "")
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, data)) from None


def _refuse_booleans(model: Any, data: Any, prefix: str) -> None:
    """`labels.tp: true` is not 1.0: a boolean is accepted only where a key takes one (pydantic's
    lax mode would read it as a number), refused in one line naming the key."""
    import typing

    if not isinstance(data, dict) or not hasattr(model, "model_fields"):
        return
    for name, value in data.items():
        field = model.model_fields.get(name)
        if field is None:
            continue
        key = f"{prefix}{name}"
        if isinstance(value, bool) and not _takes_bool(field.annotation):
            raise ConfigError(f"config key {key!r} = {str(value).lower()}: expected a number or a name, not a boolean")
        if not isinstance(value, dict):
            continue
        ann = field.annotation
        if typing.get_origin(ann) is dict:  # named sections (universe.sources): each one checked
            for sub_name, sub in value.items():
                _refuse_booleans_in(typing.get_args(ann)[1], sub, f"{key}.{sub_name}.")
        else:
            _refuse_booleans_in(ann, value, key + ".")


def _refuse_booleans_in(annotation: Any, data: Any, prefix: str) -> None:
    """_refuse_booleans on the section type `annotation` names: a section, or a union of them
    (the sources: the one the data's kind names, else the first)."""
    import typing

    if typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    options = typing.get_args(annotation) or (annotation,)
    sections = [a for a in options if isinstance(a, type) and hasattr(a, "model_fields")]
    kind = data.get("kind") if isinstance(data, dict) else None
    for sub in sections:
        if kind is None or sub.model_fields.get("kind") is None or sub.model_fields["kind"].default == kind:
            _refuse_booleans(sub, data, prefix)
            return


M = TypeVar("M", bound=BaseModel)


def validate_options(model: type[M], values: dict[str, Any]) -> M:
    """`model` from command-line options (None: the model's default); the first problem is one
    line naming the option, e.g. "--concurrency 99: Input should be less than or equal to 64"."""
    given = {k: v for k, v in values.items() if v is not None}
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else ""
        flag = "--" + name.replace("_", "-")
        msg = err["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{flag} {quote_value(given.get(name))}: {msg}" if name else msg) from None


def flatten_keys(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config mapping as {dotted key: value}, the form --set and error messages use."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten_keys(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def quote_value(value: Any, limit: int = 80) -> str:
    """repr(value) cut to `limit` characters, so an error line stays one line however big the
    value (a YAML alias bomb is billions of items: only the first few are ever looked at)."""
    import reprlib

    short = reprlib.Repr()
    short.maxlevel, short.maxlist, short.maxdict, short.maxtuple, short.maxstring, short.maxother = 3, 6, 6, 6, 60, 60
    text = short.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(exc: ValidationError, data: dict[str, Any]) -> str:
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"] if not (isinstance(p, str) and p in ("synthetic", "files", "binance"))]
    key = ".".join(loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1], data)
        return f"config key {key!r} is not known" + (f"; allowed here: {', '.join(allowed)}" if allowed else "")
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "missing":
        return f"config key {key!r} is required"
    if isinstance(err.get("input"), dict):  # a rule across a section's keys: the message names them
        return msg if re.match(r"^[a-z_]+\.[a-z_0-9.]+\b", msg) else f"config section {key!r}: {msg}"
    return f"config key {key!r} = {quote_value(err.get('input'))}: {msg}"


def _allowed_keys(loc: list[str], data: dict[str, Any]) -> list[str]:
    model: type[BaseModel] = RunConfig
    node: Any = data
    for part in loc:
        field = model.model_fields.get(part)
        node = node.get(part, {}) if isinstance(node, dict) else {}
        if field is None:
            return []
        ann = field.annotation
        if part == "source":
            kind = node.get("kind", "synthetic") if isinstance(node, dict) else "synthetic"
            ann = {"files": FilesSource, "binance": BinanceSource}.get(kind, SyntheticSource)
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return list(model.model_fields)
