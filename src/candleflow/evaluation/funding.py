"""The funding a backtest charges, per bar: Binance's public funding rates for the futures
markets (`backtest.funding: auto` with a binance um/cm source, or `backtest.funding_paths`), none
for spot, stocks and synthetic markets or with `funding: off`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from candleflow.config.intervals import interval_ns
from candleflow.data.candles import Candles


def funding_for(cfg: Any, candles: Candles) -> tuple[np.ndarray | None, list[str]]:
    """(rate per bar or None, notes) for the run's backtests."""
    from candleflow.data.sources.binance.funding import fetch_funding, funding_per_bar, load_funding

    bt, src = cfg.backtest, cfg.source
    if bt.funding == "off" or not len(candles):
        return None, []
    notes: list[str] = []
    if bt.funding_paths:
        times, rates = load_funding([Path(p).expanduser() for p in bt.funding_paths])
    elif getattr(src, "kind", None) == "binance" and src.market in ("um", "cm"):
        from candleflow.data.sources.binance.fetch import download_options

        first = np.datetime64(candles.open_time[0], "D").astype(str)
        last = np.datetime64(candles.open_time[-1], "D").astype(str)
        times, rates, notes = fetch_funding(src.market, src.symbol, first, last, download_options(src))
    else:
        return None, []
    per_bar = funding_per_bar(candles.open_time, interval_ns(candles.interval), times, rates)
    return per_bar, notes


__all__ = ["funding_for"]
