"""Kline intervals as Binance names them, to and from nanoseconds."""

from __future__ import annotations

import re

from candleflow.errors import ConfigError

_UNIT_NS = {
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
    "w": 7 * 86_400_000_000_000,
}


def interval_ns(interval: str) -> int:
    """Nanoseconds in one bar of `interval` ('1s', '1m', '15m', '1h', '4h', '1d', '1w')."""
    m = re.fullmatch(r"(\d+)([smhdw])", interval)
    if not m or int(m.group(1)) <= 0:
        raise ConfigError(f"interval {interval!r}: expected a count and a unit s/m/h/d/w, e.g. '1m', '1h', '1d'")
    return int(m.group(1)) * _UNIT_NS[m.group(2)]


def interval_name(ns: int) -> str:
    """The shortest Binance-style name for a bar of `ns` nanoseconds."""
    for unit in ("w", "d", "h", "m", "s"):
        if ns % _UNIT_NS[unit] == 0:
            return f"{ns // _UNIT_NS[unit]}{unit}"
    raise ConfigError(f"interval of {ns} ns is not a whole number of seconds")
