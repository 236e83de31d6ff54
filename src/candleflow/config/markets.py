"""Binance's markets and intervals as its bulk-data tree publishes them, and the dates a range is
given in: the tables the config validates against (the data stage plans files from them)."""

from __future__ import annotations

import calendar
import datetime as dt
import re

from candleflow.errors import ConfigError

MARKETS = {"spot": "data/spot", "um": "data/futures/um", "cm": "data/futures/cm"}
INTERVALS = ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1mo")


def check_market_interval(market: str, interval: str) -> None:
    """Raise a one-line error for a market or interval Binance does not publish."""
    if market not in MARKETS:
        raise ConfigError(f"market {market!r}: expected one of {', '.join(MARKETS)}")
    if interval not in INTERVALS:
        raise ConfigError(f"interval {interval!r}: Binance publishes {', '.join(INTERVALS)}")
    if interval == "1s" and market != "spot":
        raise ConfigError(f"interval '1s' is published for spot only, not {market!r}")


def parse_date(text: str, end: bool = False) -> dt.date:
    """'2024-01' (a whole month: its first day, or its last with end=True) or '2024-01-15'."""
    if re.fullmatch(r"\d{4}-\d{2}", text):
        y, m = map(int, text.split("-"))
        if not 1 <= m <= 12:
            raise ConfigError(f"date {text!r}: month {m} is not 01..12")
        day = calendar.monthrange(y, m)[1] if end else 1
        return dt.date(y, m, day)
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"date {text!r}: expected YYYY-MM or YYYY-MM-DD") from None
