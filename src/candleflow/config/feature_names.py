"""The feature names the config accepts and how many parameters each takes: `rsi`, `rsi(14)`,
`macd(12, 26, 9)`. The implementations live in `candleflow.dataset.features` (and the
indicator library it wraps); this table lets the config say in one line, at load time, which
names exist, without importing them. A user feature registered in Python
(`candleflow.dataset.features.register_feature`) is declared here by that call."""

from __future__ import annotations

import math
import re

# base name -> the number of parameters it takes (its defaults live with the implementation)
BUILTIN: dict[str, int] = {
    # the original set (the first 8 are the default features)
    "log_return": 0,
    "range": 0,
    "body": 0,
    "upper_wick": 0,
    "lower_wick": 0,
    "volume_ratio": 0,
    "volatility": 0,
    "momentum": 0,
    "rsi": 1,
    "close_ema_gap": 0,
    "hour_sin": 0,
    "hour_cos": 0,
    "dow_sin": 0,
    "dow_cos": 0,
    "log_rv_week": 0,
    "log_rv_month": 0,
    "session_elapsed": 0,  # exchange calendars only
    "session_remaining": 0,
    # the indicator library (TA-Lib), scale-free forms
    "stoch_k": 3,
    "stoch_d": 3,
    "stochrsi": 1,
    "willr": 1,
    "cci": 1,
    "mfi": 1,
    "adx": 1,
    "plus_di": 1,
    "minus_di": 1,
    "aroonosc": 1,
    "ultosc": 3,
    "cmo": 1,
    "bop": 0,
    "macd": 3,
    "macd_signal": 3,
    "macd_hist": 3,
    "ppo": 2,
    "roc": 1,
    "trix": 1,
    "atr": 1,
    "natr": 1,
    "bb_width": 1,
    "bb_pos": 1,
    "keltner_pos": 1,
    "obv_z": 1,
    "ad_z": 1,
    "adosc": 2,
    "zscore": 1,
    "rv": 1,
    "linreg_slope": 1,
    "ema_gap": 1,
    "sma_gap": 1,
    "dollar_volume": 1,
    # Binance's order flow (the klines' extra columns)
    "taker_buy_ratio": 0,
    "trade_size": 1,
    "trades_ratio": 1,
    "quote_volume_ratio": 1,
}
DEFAULT_FEATURES = 8  # the first 8 of BUILTIN are the default features
# every parameter of a built-in feature is a number of bars, at most MAX_PERIOD (TA-Lib's own
# bound) and at least 1, or its lower bound here where TA-Lib refuses a period of 1 (TA_BAD_PARAM)
MAX_PERIOD = 100_000
MIN_PERIODS: dict[str, tuple[int, ...]] = {
    "stochrsi": (2,),
    "willr": (2,),
    "cci": (2,),
    "mfi": (2,),
    "adx": (2,),
    "aroonosc": (2,),
    "cmo": (2,),
    "macd": (2, 2, 1),
    "macd_signal": (2, 2, 1),
    "macd_hist": (2, 2, 1),
    "ppo": (2, 2),
    "bb_width": (2,),
    "bb_pos": (2,),
    "adosc": (2, 2),
    "linreg_slope": (2,),
}
_USER: dict[str, int] = {}  # declared by register_feature in this process
_NAME = re.compile(r"^([a-z][a-z0-9_]*)(?:\(\s*([^()]*?)\s*\))?$")


def known() -> dict[str, int]:
    """Every feature name this process accepts, with its parameter count."""
    return {**BUILTIN, **_USER}


def declare(name: str, n_params: int) -> None:
    """Accept a user feature's name in configs (called by register_feature)."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ValueError(f"feature name {name!r}: expected lower-case letters, digits and _")
    _USER[name] = int(n_params)


PLUGIN_GROUP = "candleflow.features"
_PLUGINS: dict[str, str] = {}  # entry point name -> "loaded" or why it failed; filled once per process


def load_plugins() -> list[str]:
    """Load every installed plugin of the entry point group `candleflow.features` (each a module
    or callable that registers its features with `register_feature`), once per process; returns
    the entry points loaded this call. Only packages the user installed are imported, each by its
    own declaration, never a module because a config, run folder or bundle names it. A plugin
    that fails to load is logged and skipped (its features stay unknown: a one-line error names
    them)."""
    import logging
    from importlib.metadata import entry_points

    if _PLUGINS.get("__scanned__"):
        return []
    _PLUGINS["__scanned__"] = "yes"
    loaded = []
    for ep in entry_points(group=PLUGIN_GROUP):
        try:
            obj = ep.load()
            if callable(obj):
                obj()
            _PLUGINS[ep.name] = "loaded"
            loaded.append(ep.name)
        except Exception as exc:  # a broken plugin must not break the config of every other run
            _PLUGINS[ep.name] = f"{type(exc).__name__}: {exc}"
            logging.getLogger("candleflow").warning(
                "feature plugin %s (%s) failed to load: %s", ep.name, ep.value, _PLUGINS[ep.name]
            )
    return loaded


def plugins() -> dict[str, str]:
    """The feature plugins seen in this process and whether each loaded."""
    return {k: v for k, v in _PLUGINS.items() if k != "__scanned__"}


def forget(name: str) -> None:
    """Stop accepting a user feature's name (tests that register their own)."""
    _USER.pop(name, None)


def _known_line(base: str, table: dict[str, int], width: int = 330) -> str:
    """The closest names, then every known name as long as the line stays readable (the config
    reference lists them all)."""
    import difflib

    close = difflib.get_close_matches(base, list(table), n=3, cutoff=0.6)
    names, listed = sorted(table), ""
    for k, name in enumerate(names):
        more = f"{', ' if listed else ''}{name}"
        if len(listed) + len(more) > width:
            listed += f" and {len(names) - k} more (docs/reference/config.md)"
            break
        listed += more
    return (f"did you mean {' or '.join(close)}? " if close else "") + f"known ({len(names)}): {listed}"


def parse(text: str) -> tuple[str, tuple[float, ...]]:
    """`rsi(14)` -> ('rsi', (14,)); `rsi` -> ('rsi', ()): the defaults apply. A one-line error
    for an unknown name (listing the known ones), a bad parameter or the wrong number of them."""
    m = _NAME.match(text.strip())
    if not m:
        raise ValueError(f"feature {text!r}: expected a name such as rsi or rsi(14)")
    base, args = m.group(1), m.group(2)
    table = known()
    if base not in table and load_plugins():  # installed plugins, loaded once: never a module the config names
        table = known()
    if base not in table:
        raise ValueError(f"unknown feature {base!r}; {_known_line(base, table)}")
    if args is None or args == "":
        return base, ()
    params: list[float] = []
    for a in args.split(","):
        a = a.strip()
        try:
            value = int(a) if re.fullmatch(r"[+-]?\d+", a) else float(a)
        except ValueError:
            raise ValueError(f"feature {text!r}: parameter {a!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"feature {text!r}: parameter {a!r} is not a finite number")
        params.append(value)
    if len(params) != table[base]:
        raise ValueError(f"feature {text!r}: {base} takes {table[base]} parameter(s), got {len(params)}")
    if base in BUILTIN:
        return base, tuple(_bar_counts(text, base, params))
    if any(p <= 0 for p in params):
        raise ValueError(f"feature {text!r}: parameters must be positive")
    return base, tuple(params)


def _bar_counts(text: str, base: str, params: list[float]) -> list[int]:
    """A built-in feature's parameters: every one a whole number of bars within the indicator's
    own bounds (MIN_PERIODS, MAX_PERIOD), or a one-line error naming it."""
    lows = MIN_PERIODS.get(base, (1,) * len(params))
    out = []
    for k, (value, low) in enumerate(zip(params, lows)):
        where = f"parameter {k + 1} of {base}" if len(params) > 1 else f"{base}'s parameter"
        if value != int(value):
            raise ValueError(f"feature {text!r}: {where} is {value:g}; expected a whole number of bars")
        if not low <= value <= MAX_PERIOD:
            shown = f"{int(value)}" if abs(value) < 1e15 else f"{value:g}"
            raise ValueError(f"feature {text!r}: {where} is {shown}; expected {low} .. {MAX_PERIOD:,} bars")
        out.append(int(value))
    return out


__all__ = [
    "BUILTIN",
    "DEFAULT_FEATURES",
    "MAX_PERIOD",
    "MIN_PERIODS",
    "PLUGIN_GROUP",
    "declare",
    "forget",
    "known",
    "load_plugins",
    "parse",
    "plugins",
]


CROSS_SECTION_STAT_NAMES = ("mean", "median", "rank", "z")  # computed by dataset.cross_features
_CROSS_SPEC = re.compile(r"^(?P<stat>[a-z]+)\((?P<feature>[^()]+(?:\([^()]*\))?)\)$")


def parse_cross_section(spec: str, columns: list[str]) -> tuple[str, str]:
    """('rank', 'log_return') from the features.cross_section entry 'rank(log_return)'; a
    one-line error naming what is known."""
    m = _CROSS_SPEC.match(spec.replace(" ", ""))
    if m is None or m["stat"] not in CROSS_SECTION_STAT_NAMES:
        raise ValueError(
            f"features.cross_section {spec!r}: expected STAT(FEATURE) with STAT one of "
            f"{', '.join(CROSS_SECTION_STAT_NAMES)}"
        )
    if m["feature"] not in columns:
        raise ValueError(
            f"features.cross_section {spec!r}: {m['feature']!r} is not a feature column; columns: {', '.join(columns)}"
        )
    return m["stat"], m["feature"]
