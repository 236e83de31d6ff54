"""Which Binance bulk-data files cover a symbol, interval and date range, at their exact paths."""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from candleflow.config.markets import MARKETS, check_market_interval, parse_date  # noqa: F401  (the plan's API)
from candleflow.errors import ConfigError


@dataclass(frozen=True, order=True)
class FileRef:
    """One published ZIP: its key below the base URL, and the month or day it covers."""

    key: str
    period: str  # 'YYYY-MM' (monthly) or 'YYYY-MM-DD' (daily)

    @property
    def monthly(self) -> bool:
        return len(self.period) == 7

    @property
    def checksum_key(self) -> str:
        return self.key + ".CHECKSUM"

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]


def monthly_file(market: str, symbol: str, interval: str, month: str) -> FileRef:
    return FileRef(f"{MARKETS[market]}/monthly/klines/{symbol}/{interval}/{symbol}-{interval}-{month}.zip", month)


def daily_file(market: str, symbol: str, interval: str, day: str) -> FileRef:
    return FileRef(f"{MARKETS[market]}/daily/klines/{symbol}/{interval}/{symbol}-{interval}-{day}.zip", day)


def plan_files(
    market: str, symbol: str, interval: str, start: str, end: str, today: dt.date | None = None
) -> list[FileRef]:
    """Monthly files for whole months before the current one, daily files for the rest.

    Binance publishes a day's file the next day and a month's file after the month ends, so the
    range is clipped to yesterday. A month whose monthly file turns out missing (404) is replaced
    by `daily_files_for_month` at download time.
    """
    check_market_interval(market, interval)
    today = today or dt.datetime.now(dt.UTC).date()
    first, last = parse_date(start), min(parse_date(end, end=True), today - dt.timedelta(days=1))
    if last < first:
        raise ConfigError(f"date range {start} .. {end}: nothing published yet (files appear the day after)")
    current_month = today.replace(day=1)
    out: list[FileRef] = []
    month = first.replace(day=1)
    while month <= last:
        month_end = month.replace(day=calendar.monthrange(month.year, month.month)[1])
        whole = first <= month and month_end <= last
        if whole and month < current_month:
            out.append(monthly_file(market, symbol, interval, f"{month:%Y-%m}"))
        else:
            day = max(first, month)
            while day <= min(last, month_end):
                out.append(daily_file(market, symbol, interval, f"{day:%Y-%m-%d}"))
                day += dt.timedelta(days=1)
        month = month_end + dt.timedelta(days=1)
    return out


def daily_files_for_month(ref: FileRef, today: dt.date | None = None) -> list[FileRef]:
    """The daily files that replace a missing monthly file (days up to yesterday)."""
    today = today or dt.datetime.now(dt.UTC).date()
    parts = ref.key.split("/")
    symbol, interval = parts[-3], parts[-2]
    market = next(m for m, prefix in MARKETS.items() if ref.key.startswith(prefix + "/"))
    y, m = map(int, ref.period.split("-"))
    days = calendar.monthrange(y, m)[1]
    out = []
    for d in range(1, days + 1):
        day = dt.date(y, m, d)
        if day >= today:
            break
        out.append(daily_file(market, symbol, interval, f"{day:%Y-%m-%d}"))
    return out
