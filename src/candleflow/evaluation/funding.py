"""The funding a backtest charges, per bar: Binance's public funding rates for the futures
markets (`backtest.funding: auto` with a binance um/cm source, or `backtest.funding_paths`), none
for spot, stocks and synthetic markets or with `funding: off`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from candleflow.config.intervals import interval_ns
from candleflow.data.candles import Candles
from candleflow.errors import SourceError

log = logging.getLogger("candleflow")


def funding_for(cfg: Any, candles: Candles) -> tuple[np.ndarray | None, list[str]]:
    """(rate per bar or None, notes) for the run's backtests."""
    from candleflow.data.sources.binance.funding import fetch_funding, funding_per_bar, load_funding

    bt, src = cfg.backtest, cfg.source
    if bt.funding == "off" or not len(candles):
        return None, []
    notes: list[str] = []
    if bt.funding_paths:
        paths = [Path(p).expanduser() for p in bt.funding_paths]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise SourceError(f"backtest.funding_paths: {missing[0]}: file not found")
        times, rates = load_funding(paths)
    elif getattr(src, "kind", None) == "binance" and src.market in ("um", "cm"):
        from candleflow.data.sources.binance.fetch import download_options

        first = np.datetime64(candles.open_time[0], "D").astype(str)
        last = np.datetime64(candles.open_time[-1], "D").astype(str)
        times, rates, notes = fetch_funding(src.market, src.symbol, first, last, download_options(src))
    else:
        return None, []
    per_bar = funding_per_bar(candles.open_time, interval_ns(candles.interval), times, rates)
    if bt.funding_paths:
        notes += coverage_notes(candles, times)
    for note in notes:
        log.warning("backtest funding: %s", note)
    return per_bar, notes


FUNDING_PERIOD_NS = 8 * 3_600 * 10**9  # Binance funds futures every 8 hours


def coverage_notes(candles: Candles, times: np.ndarray) -> list[str]:
    """What the funding files leave uncharged, in words: no rate at all, none within the candles'
    period, or a period they do not cover (a gap of more than one funding interval at either end)."""
    first, last = int(candles.open_time[0]), int(candles.open_time[-1]) + interval_ns(candles.interval)
    when = f"the candles' {_day(first)} .. {_day(last)}"
    if not times.size:
        return ["backtest.funding_paths: the files hold no funding rate (a header only?); no funding charged"]
    inside = (times > first) & (times <= last)
    if not inside.any():
        return [
            f"backtest.funding_paths: {times.size:,} fundings from {_day(times[0])} to {_day(times[-1])}, none within "
            f"{when}; no funding charged"
        ]
    notes = []
    if int(times[inside][0]) - first > FUNDING_PERIOD_NS:
        notes.append(
            f"backtest.funding_paths: the first funding is {_day(times[inside][0])}; bars of {when} before it were charged none"
        )
    if last - int(times[inside][-1]) > FUNDING_PERIOD_NS:
        notes.append(
            f"backtest.funding_paths: the last funding is {_day(times[inside][-1])}; bars of {when} after it were charged none"
        )
    return notes


def _day(ns: int | np.integer) -> str:
    return str(np.datetime64(int(ns), "ns"))[:16].replace("T", " ")


__all__ = ["coverage_notes", "funding_for"]
