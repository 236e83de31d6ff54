"""Where candles come from (`source:`: synthetic, files, binance, yfinance) and how they are validated (`validation:`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from candleflow.config.base import (
    BINANCE_BASE_URL,
    Interval,
    Paths,
    SafeName,
    Section,
)
from candleflow.errors import ConfigError


class SyntheticSource(Section):
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


class FilesSource(Section):
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


class BinanceSource(Section):
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


class YFinanceSource(Section):
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


class ValidationPolicy(Section):
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
