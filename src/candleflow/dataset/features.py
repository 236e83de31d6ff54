"""Causal, scale-free features: a registry of named columns computed per segment as float32 (N, F).

Every feature at bar t uses bars <= t of the same segment only; the first `warmup` bars of each
segment are NaN and no window may include them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from candleflow.config import FeatureConfig
from candleflow.data.candles import Candles
from candleflow.dataset.interleave import ColumnWriter
from candleflow.errors import CandleflowError, ConfigError

log = logging.getLogger("candleflow")


@numba.njit(cache=True)
def ema(x: np.ndarray, span: int) -> np.ndarray:
    """Exponentially weighted mean with alpha = 2 / (span + 1), seeded with the first value."""
    a = 2.0 / (span + 1.0)
    out = np.empty(x.shape[0])
    acc = x[0] if x.shape[0] else 0.0
    for i in range(x.shape[0]):
        acc = (1.0 - a) * acc + a * x[i]
        out[i] = acc
    return out


def _log_return(s: dict, cfg: FeatureConfig) -> np.ndarray:
    c = s["close"]
    out = np.full(c.shape, np.nan)
    out[1:] = np.log(c[1:] / c[:-1])
    return out


def ewm_volatility(close: np.ndarray, span: int) -> np.ndarray:
    """EWMA standard deviation of log returns; NaN for the first `span` bars (too little history)."""
    r = np.zeros(close.shape[0])
    r[1:] = np.log(close[1:] / close[:-1])
    v = np.sqrt(ema(r * r, span))
    v[: min(span, v.shape[0])] = np.nan
    return v


def _volatility(s: dict, cfg: FeatureConfig) -> np.ndarray:
    return ewm_volatility(s["close"], cfg.volatility_span)


def _momentum(s: dict, cfg: FeatureConfig) -> np.ndarray:
    k = cfg.momentum_span
    c = s["close"]
    out = np.full(c.shape, np.nan)
    vol = ewm_volatility(c, cfg.volatility_span)
    out[k:] = np.log(c[k:] / c[:-k]) / (vol[k:] * np.sqrt(k) + 1e-12)
    return out


def _volume_ratio(s: dict, cfg: FeatureConfig) -> np.ndarray:
    lv = np.log1p(s["volume"])
    return lv - ema(lv, cfg.volume_span)


def _rsi(s: dict, cfg: FeatureConfig, n: float = 14) -> np.ndarray:
    r = np.nan_to_num(_log_return(s, cfg))
    up = ema(np.maximum(r, 0), int(n))
    down = ema(np.maximum(-r, 0), int(n))
    out = (up - down) / (up + down + 1e-12)
    out[:1] = np.nan
    return out


def _close_ema_gap(s: dict, cfg: FeatureConfig) -> np.ndarray:
    c = s["close"]
    return np.log(c / ema(c, cfg.momentum_span))


def _hour(s: dict, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    hours = (s["open_time"] % 86_400_000_000_000) / 3_600_000_000_000
    return fn(2 * np.pi * hours / 24)


def _weekday(s: dict, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    # 1970-01-01 was a Thursday: shift so that Monday 00:00 UTC is 0
    days = ((s["open_time"] / 86_400_000_000_000) + 3) % 7
    return fn(2 * np.pi * days / 7)


def _session(s: dict, which: int) -> np.ndarray:
    """Hours since the exchange session opened (which 0) or until it closes (1), at each bar's
    close, from the candles' exchange calendar (validation.calendar)."""
    calendar = s.get("__calendar__", "24/7")
    if calendar == "24/7":
        raise ConfigError(
            "features.names session_elapsed / session_remaining: the candles trade 24/7; they need an exchange "
            "calendar (validation.calendar, e.g. XNYS)"
        )
    from candleflow.data.calendar import session_hours

    t = np.asarray(s["open_time"]).astype("datetime64[ns]").astype(np.int64)
    return session_hours(calendar, t, int(s["__step__"]))[which]


def _log_rv(s: dict, bars: int) -> np.ndarray:
    """log of the mean squared log return over the last `bars` bars (NaN before `bars` returns):
    HAR-RV's weekly and monthly terms as features."""
    c = s["close"]
    r2 = np.zeros(c.shape[0])
    r2[1:] = np.log(c[1:] / c[:-1]) ** 2
    csum = np.concatenate([[0.0], np.cumsum(r2)])
    out = np.full(c.shape, np.nan)
    if c.shape[0] > bars:
        mean = (csum[bars + 1 :] - csum[1:-bars]) / bars
        with np.errstate(divide="ignore"):
            out[bars:] = np.log(np.maximum(mean, 1e-20))
    return out


@dataclass(frozen=True)
class FeatureSpec:
    """A registered feature: fn(columns, config, *params), what it is, its warm-up in bars
    (warmup(config, *params)) and its default parameters."""

    fn: Callable[..., np.ndarray]
    description: str
    warmup: Callable[..., int]
    defaults: tuple[float, ...] = ()


FEATURES: dict[str, FeatureSpec] = {
    "log_return": FeatureSpec(_log_return, "log(close_t / close_t-1)", lambda c: 1),
    "range": FeatureSpec(lambda s, c: np.log(s["high"] / s["low"]), "log(high / low): the bar's range", lambda c: 0),
    "body": FeatureSpec(lambda s, c: np.log(s["close"] / s["open"]), "log(close / open): the bar's body", lambda c: 0),
    "upper_wick": FeatureSpec(
        lambda s, c: np.log(s["high"] / np.maximum(s["open"], s["close"])), "log(high / max(open, close))", lambda c: 0
    ),
    "lower_wick": FeatureSpec(
        lambda s, c: np.log(np.minimum(s["open"], s["close"]) / s["low"]), "log(min(open, close) / low)", lambda c: 0
    ),
    "volume_ratio": FeatureSpec(
        _volume_ratio, "log1p(volume) minus its EMA over volume_span bars", lambda c: c.volume_span
    ),
    "volatility": FeatureSpec(
        _volatility, "EWMA std of log returns over volatility_span bars", lambda c: c.volatility_span
    ),
    "momentum": FeatureSpec(
        _momentum,
        "log return over momentum_span bars / (volatility * sqrt(span))",
        lambda c: c.momentum_span + c.volatility_span,
    ),
    "rsi": FeatureSpec(_rsi, "RSI(n) of log returns rescaled to [-1, 1]", lambda c, n=14: int(n), (14,)),
    "close_ema_gap": FeatureSpec(
        _close_ema_gap, "log(close / EMA of close over momentum_span bars)", lambda c: c.momentum_span
    ),
    "hour_sin": FeatureSpec(lambda s, c: _hour(s, np.sin), "sin of the hour of day (UTC)", lambda c: 0),
    "hour_cos": FeatureSpec(lambda s, c: _hour(s, np.cos), "cos of the hour of day (UTC)", lambda c: 0),
    "dow_sin": FeatureSpec(
        lambda s, c: _weekday(s, np.sin), "sin of the time of week (UTC, Monday 0:00 = 0)", lambda c: 0
    ),
    "dow_cos": FeatureSpec(
        lambda s, c: _weekday(s, np.cos), "cos of the time of week (UTC, Monday 0:00 = 0)", lambda c: 0
    ),
    "log_rv_week": FeatureSpec(
        lambda s, c: _log_rv(s, 5 * c.volatility_span),
        "log mean squared log return over 5 x volatility_span bars (HAR's weekly term)",
        lambda c: 5 * c.volatility_span,
    ),
    "log_rv_month": FeatureSpec(
        lambda s, c: _log_rv(s, 22 * c.volatility_span),
        "log mean squared log return over 22 x volatility_span bars (HAR's monthly term)",
        lambda c: 22 * c.volatility_span,
    ),
    "session_elapsed": FeatureSpec(
        lambda s, c: _session(s, 0), "hours since the exchange session opened, at the bar's close", lambda c: 0
    ),
    "session_remaining": FeatureSpec(
        lambda s, c: _session(s, 1), "hours until the exchange session closes (early closes too)", lambda c: 0
    ),
}


def _library() -> dict[str, FeatureSpec]:
    from candleflow.dataset.indicators import LIBRARY

    return {
        name: FeatureSpec(
            (lambda f: lambda s, c, *p: f(s, *p))(ind.fn),
            ind.description,
            (lambda w: lambda c, *p: w(*p))(ind.warmup),
            ind.defaults,
        )
        for name, ind in LIBRARY.items()
    }


FEATURES.update(_library())
_USER_FEATURES: dict[str, FeatureSpec] = {}  # registered in Python by register_feature


def register_feature(
    name: str,
    warmup: int | Callable[..., int] = 0,
    defaults: tuple[float, ...] = (),
    description: str = "",
) -> Callable[[Callable[..., np.ndarray]], Callable[..., np.ndarray]]:
    """A decorator that makes `fn(columns, *params) -> array` the feature `name`, usable in
    `features.names` (with `len(defaults)` parameters: `name(5)`) in this process::

        @register_feature("spread", warmup=0, description="(high - low) / close")
        def spread(s):
            return (s["high"] - s["low"]) / s["close"]

    `columns` is one segment's dict of open_time, open, high, low, close, volume and the source's
    extra columns; the function must read bars <= t for bar t (the causality test of the built-in
    features is the pattern to copy). `warmup` (bars, or a function of the parameters) is how many
    leading bars are not yet valid. A run or bundle naming a feature this process has not
    registered is refused in one line: candleflow never imports code because a file names it."""
    from candleflow.config import feature_names

    if name in FEATURES:
        raise ConfigError(f"feature {name!r} is built in; choose another name")

    def deco(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        w = warmup if callable(warmup) else (lambda *p, _w=int(warmup): _w)
        _USER_FEATURES[name] = FeatureSpec(
            lambda s, c, *p: fn(s, *p),
            description or (fn.__doc__ or name).strip().splitlines()[0],
            lambda c, *p: int(w(*p)),
            tuple(defaults),
        )
        feature_names.declare(name, len(defaults))
        return fn

    return deco


def unregister_feature(name: str) -> None:
    """Remove a feature registered in Python (tests that register their own)."""
    from candleflow.config import feature_names

    _USER_FEATURES.pop(name, None)
    feature_names.forget(name)


def resolve_feature(text: str) -> tuple[FeatureSpec, tuple[float, ...]]:
    """The spec and the parameters (given, or the defaults) of a `features.names` entry."""
    from candleflow.config.feature_names import parse

    try:
        base, params = parse(text)
    except ValueError as exc:
        raise ConfigError(f"features.names: {exc}") from None
    spec = FEATURES.get(base) or _USER_FEATURES.get(base)
    if spec is None:  # declared but not implemented: a name from another process's registration
        raise ConfigError(f"features.names: feature {base!r} is not registered in this process")
    return spec, params or spec.defaults


@dataclass(frozen=True)
class Features:
    """Feature matrix (N, F) float32 C-contiguous, its column names and per-segment warm-up."""

    values: np.ndarray
    names: list[str]
    warmup: int

    @property
    def descriptions(self) -> dict[str, str]:
        out = {}
        for n in self.names:
            base, _, tf = n.rpartition(":")[2].partition("@")
            spec, params = resolve_feature(base)
            out[n] = (
                spec.description
                + (f" (parameters {', '.join(f'{p:g}' for p in params)})" if params else "")
                + (f", on {tf} bars" if tf else "")
            )
        return out


def compute_features(
    candles: Candles, cfg: FeatureConfig | None = None, others: dict[str, Candles] | None = None
) -> Features:
    """Compute the configured features segment by segment (nothing crosses a segment boundary),
    then each again on every `timeframes` interval (see `_coarse`), then the features of every
    other asset in `cfg.assets` from its candles in `others` (see `asset_columns`)."""
    cfg = cfg or FeatureConfig()
    if cfg.assets:
        missing = [a.name for a in cfg.assets if a.name not in (others or {})]
        if missing:
            raise ConfigError(f"features.assets {missing[0]!r}: its candles were not loaded (load_assets)")
        main = compute_features(candles, cfg.model_copy(update={"assets": []}))
        extra = [asset_columns(candles, others[a.name], a, cfg) for a in cfg.assets]  # type: ignore[index]
        values = np.column_stack([main.values, *extra])  # float32 parts: a float32 C-order matrix
        # the other series' warm-up and missing bars are NaN in their columns: windows over them drop out
        return Features(values=values, names=cfg.columns, warmup=main.warmup)
    n, f = len(candles), len(cfg.names)
    names = cfg.columns
    # touched here, before the features' own arrays exist: first touching a fresh matrix from the
    # writer's thread while this one allocates them made 1 run in 3 of bench_features stall
    out = np.full((n, len(names)), np.nan, dtype=np.float32)
    resolved = [resolve_feature(name) for name in cfg.names]
    base_warmup = max(_warmup(spec, cfg, params, name) for (spec, params), name in zip(resolved, cfg.names))
    step = _interval(candles)
    ratios = [_ratio(tf, step, candles) for tf in cfg.timeframes]
    # a coarse feature needs its own warm-up in coarse bars, and the first coarse bar to close
    warmup = max([base_warmup, *((base_warmup + 2) * r for r in ratios)])
    columns = ("open_time", "open", "high", "low", "close", "volume", *candles.extra)
    for start, stop in candles.segments:
        seg: dict[str, Any] = {k: candles.column(k)[start:stop] for k in columns}
        seg["__calendar__"], seg["__step__"] = candles.calendar, step
        with ColumnWriter(out[start:stop]) as writer:  # by blocks of rows, in the background
            for j, (spec, params) in enumerate(resolved):
                writer.add(j, _column(_call(spec, seg, cfg, params, cfg.names[j]), cfg.names[j], stop - start))
        for k, r in enumerate(ratios):
            out[start:stop, f * (k + 1) : f * (k + 2)] = _coarse(seg, cfg, resolved, r * step, step, base_warmup)
        out[start : min(stop, start + warmup)] = np.nan
    _say_nonfinite(out, cfg.names, warmup, candles.segments)
    return Features(values=out, names=names, warmup=warmup)


def _warmup(spec: FeatureSpec, cfg: FeatureConfig, params: tuple[float, ...], name: str) -> int:
    """A feature's warm-up in bars, or a one-line error naming the feature whose warm-up failed."""
    try:
        bars = int(spec.warmup(cfg, *params))
    except Exception as exc:  # a user's or a plugin's warm-up function
        raise ConfigError(f"feature {name!r}: its warm-up failed ({type(exc).__name__}: {exc})") from None
    if bars < 0:
        raise ConfigError(f"feature {name!r}: its warm-up is {bars} bars; expected 0 or more")
    return bars


def _call(spec: FeatureSpec, seg: dict[str, Any], cfg: FeatureConfig, params: tuple[float, ...], name: str) -> Any:
    """One feature on one segment; what a user's or a plugin's function raises becomes one line
    naming the feature (candleflow's own errors pass as they are)."""
    try:
        return spec.fn(seg, cfg, *params)
    except CandleflowError:
        raise
    except Exception as exc:
        raise ConfigError(f"feature {name!r} raised {type(exc).__name__}: {exc}") from None


def _column(values: Any, name: str, rows: int) -> np.ndarray:
    """One feature's values as float64 of the segment's length, or a one-line error naming it."""
    try:
        column = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        kind = type(values).__name__
        raise ConfigError(f"feature {name!r} returned values that are not numbers ({kind}); expected floats") from None
    if column.shape != (rows,):
        raise ConfigError(f"feature {name!r} returned shape {column.shape}; expected ({rows},): one value per bar")
    return column


def _say_nonfinite(out: np.ndarray, names: list[str], warmup: int, segments: np.ndarray) -> None:
    """Users' features (registered in Python or by a plugin) past the warm-up: a column with no
    finite value is a one-line error naming it (every window would be dropped), NaN or inf on some
    bars a warning with the count (the windows over them are dropped). The built-in features are
    finite past their warm-up and are not scanned (this pass would cost their speed)."""
    users = [j for j, name in enumerate(names) if name.split("(")[0] in _USER_FEATURES]
    if not users:
        return
    rows = np.concatenate([np.arange(a + warmup, b) for a, b in segments if b > a + warmup] or [np.zeros(0, int)])
    for j in users:
        name = names[j]
        column = out[rows, j]
        bad = int((~np.isfinite(column)).sum())
        if column.size and bad == column.size:
            raise ConfigError(
                f"feature {name!r} is NaN or inf on every bar after its warm-up ({column.size:,} bars); "
                "no window could use it"
            )
        if bad:
            log.warning(
                "feature %r is NaN or inf on %d of %d bars after its warm-up; the windows over them are dropped",
                name,
                bad,
                column.size,
            )


def asset_columns(candles: Candles, other: Candles, asset: Any, cfg: FeatureConfig) -> np.ndarray:
    """`asset.names` computed on the other series' own candles (its own segments and warm-up),
    then placed on `candles`' bars by open time: bar t gets the other series' bar that opened at
    t (it closed when t closed: nothing later is seen). A bar the other series lacks is NaN
    (`missing: nan`: its windows drop out) or the other series' latest earlier bar when that is at
    most `max_stale` bars old (`missing: last`); how many bars each way, in the log."""
    if other.interval != candles.interval:
        raise ConfigError(
            f"features.assets {asset.name!r}: {other.symbol} bars are {other.interval}, the main series' "
            f"{candles.interval}; expected the same interval"
        )
    sub = cfg.model_copy(update={"names": list(asset.names), "timeframes": [], "assets": []})
    theirs = compute_features(other, sub).values
    t = candles.open_time.astype("datetime64[ns]").astype(np.int64)
    u = other.open_time.astype("datetime64[ns]").astype(np.int64)
    j = np.searchsorted(u, t, side="right") - 1  # the other's latest bar opened at or before t
    has = j >= 0
    exact = has & (u[np.clip(j, 0, None)] == t)
    step = _interval(candles)
    if asset.missing == "last":
        use = has & (t - u[np.clip(j, 0, None)] < asset.max_stale * step + 1)
    else:
        use = exact
    if not use.any():
        span = f"{other.time_str(0)} .. {other.time_str(len(other) - 1)}" if len(other) else "no bars"
        raise ConfigError(
            f"features.assets {asset.name!r}: none of {other.symbol}'s {len(other):,} bars ({span}) meets a bar of "
            f"{candles.symbol} ({candles.time_str(0)} .. {candles.time_str(len(candles) - 1)}); the two series must "
            "overlap in time on the same bar times"
        )
    out = np.full((t.size, theirs.shape[1]), np.nan, np.float32)
    out[use] = theirs[j[use]]
    absent = int((~exact).sum())
    if absent:
        log.info(
            "features.assets %s: %d of %d %s bars have no %s bar at their time (missing: %s: %d filled from an "
            "earlier bar, the rest NaN, their windows left out)",
            asset.name,
            absent,
            t.size,
            candles.symbol,
            other.symbol,
            asset.missing,
            int((use & ~exact).sum()),
        )
    return out


def _interval(candles: Candles) -> int:
    from candleflow.config.intervals import interval_ns

    return interval_ns(candles.interval)


def _ratio(tf: str, step: int, candles: Candles) -> int:
    """Fine bars per coarse bar; a timeframe must be a whole multiple (> 1) of the bar interval."""
    from candleflow.config.intervals import interval_ns

    coarse = interval_ns(tf)
    if coarse <= step or coarse % step:
        raise ConfigError(
            f"features.timeframes {tf!r}: expected a whole multiple of the bars' interval {candles.interval}, larger than it"
        )
    return coarse // step


WEEK_NS = 7 * 86_400 * 10**9
WEEK_ORIGIN_NS = 4 * 86_400 * 10**9  # 1970-01-05, a Monday (the epoch, 1970-01-01, was a Thursday)


def _coarse(seg: dict, cfg: FeatureConfig, resolved: list, coarse: int, step: int, warmup: int) -> np.ndarray:
    """The features of one segment's bars resampled to `coarse` ns (UTC-aligned buckets, weeks from
    Monday 00:00 UTC as Binance's and the exchanges' weekly bars: open the
    first, high the max, low the min, close the last, volumes summed), each fine bar given the
    latest coarse bar that closed by its own close (the bucket that ends at or before it), so a
    bar sees only coarse bars made of bars <= itself; NaN before the first such bar."""
    t = seg["open_time"]
    origin = WEEK_ORIGIN_NS if coarse % WEEK_NS == 0 else 0  # weeks start on Monday, as exchanges' do
    bucket = (t - origin) // coarse
    first = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])  # each bucket's first fine row
    last = np.r_[first[1:] - 1, t.size - 1]
    agg: dict[str, np.ndarray] = {
        "open_time": bucket[first] * coarse + origin,
        "open": seg["open"][first],
        "high": np.maximum.reduceat(seg["high"], first),
        "low": np.minimum.reduceat(seg["low"], first),
        "close": seg["close"][last],
    }
    for k, v in seg.items():
        if k not in agg and not k.startswith("__"):
            agg[k] = np.add.reduceat(np.asarray(v, np.float64), first)
    agg["__calendar__"], agg["__step__"] = seg.get("__calendar__", "24/7"), coarse  # type: ignore[assignment]
    values = np.column_stack([spec.fn(agg, cfg, *params) for spec, params in resolved])
    values[: min(warmup, values.shape[0])] = np.nan
    # fine bar i closes at t[i] + step; the coarse bars ending by then: bucket end <= t[i] + step
    closed = np.searchsorted(agg["open_time"] + coarse, t + step, side="right") - 1
    out = np.full((t.size, values.shape[1]), np.nan)
    ok = closed >= 0
    out[ok] = values[closed[ok]]
    return out
