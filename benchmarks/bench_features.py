"""The cost of features: on 1M one-minute bars of the embedded market, candleflow's 8 default
features, and the whole indicator library (every TA-Lib-backed feature and the order flow; the
market's trade counts and taker volumes are drawn here, since it has none) by `compute_features`,
against the floor: the same TA-Lib functions called directly on the NumPy columns (what a user
would write by hand, without candleflow's scale-free transforms, per-segment handling or
warm-up), in one process; the median seconds of interleaved runs and the feature matrix's MB, and the library's ratio to the floor.

    python benchmarks/bench_features.py [--bars 1000000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import talib

from candleflow.config import FeatureConfig, SyntheticSource
from candleflow.data.candles import Candles
from candleflow.data.load import load_candles
from candleflow.dataset.features import compute_features
from candleflow.dataset.indicators import LIBRARY


def with_order_flow(candles: Candles) -> Candles:
    """The candles with Binance's order-flow columns drawn for them (seeded): trade counts about
    volume / 0.05 and a taker-buy share around one half, so the order-flow features have input."""
    rng = np.random.default_rng(7)
    v = candles.volume
    trades = np.maximum(1.0, np.round(v / 0.05 * rng.lognormal(0.0, 0.3, v.size)))
    taker = v * rng.beta(20.0, 20.0, v.size)
    return dataclasses.replace(candles, extra={**candles.extra, "trades": trades, "taker_buy_base": taker})


def floor(
    o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray, trades: np.ndarray, qv: np.ndarray
) -> list[np.ndarray]:
    """The same indicators by calling TA-Lib directly (default parameters, no transforms)."""
    return [
        talib.EMA(v / trades, 48),  # trade size, trade count and quote volume against their EMAs
        talib.EMA(trades, 48),
        talib.EMA(qv, 48),
        *talib.STOCH(h, lo, c, 14, 3, 0, 3, 0),
        talib.STOCHRSI(c, 14)[0],
        talib.WILLR(h, lo, c, 14),
        talib.CCI(h, lo, c, 20),
        talib.MFI(h, lo, c, v, 14),
        talib.ADX(h, lo, c, 14),
        talib.PLUS_DI(h, lo, c, 14),
        talib.MINUS_DI(h, lo, c, 14),
        talib.AROONOSC(h, lo, 14),
        talib.ULTOSC(h, lo, c, 7, 14, 28),
        talib.CMO(c, 14),
        talib.BOP(o, h, lo, c),
        *talib.MACD(c, 12, 26, 9),
        talib.PPO(c, 12, 26, 1),
        talib.ROC(c, 10),
        talib.TRIX(c, 15),
        talib.ATR(h, lo, c, 14),
        talib.NATR(h, lo, c, 14),
        *talib.BBANDS(c, 20),
        talib.EMA(c, 20),
        talib.ATR(h, lo, c, 20),
        talib.OBV(c, v),
        talib.AD(h, lo, c, v),
        talib.ADOSC(h, lo, c, v, 3, 10),
        talib.SMA(c, 20),
        talib.STDDEV(c, 20),
        talib.LINEARREG_SLOPE(c, 14),
        talib.EMA(c, 20),
        talib.SMA(c, 20),
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=7, help="timed runs of each; the median is shown")
    args = ap.parse_args()
    candles, _ = load_candles(SyntheticSource(n_bars=args.bars, interval="1m"))
    candles = with_order_flow(candles)
    library = list(LIBRARY)
    cols = [np.ascontiguousarray(getattr(candles, k), np.float64) for k in ("open", "high", "low", "close", "volume")]
    cols += [candles.column("trades"), candles.column("quote_volume")]
    jobs = {
        "8 default features": lambda: compute_features(candles, FeatureConfig()).values,
        f"indicator library ({len(library)} features)": lambda: (
            compute_features(candles, FeatureConfig(names=library)).values
        ),
        "TA-Lib called directly (the floor)": lambda: floor(*cols),
    }
    seconds: dict[str, list[float]] = {name: [] for name in jobs}
    mb = {}
    for name, job in jobs.items():  # numba and TA-Lib warm, memory touched once
        out = job()
        mb[name] = sum(a.nbytes for a in (out if isinstance(out, list) else [out])) / 2**20
        del out
    for _ in range(args.repeat):  # interleaved, so a slow moment of the machine hits all three alike
        for name, job in jobs.items():
            t0 = time.perf_counter()
            out = job()
            seconds[name].append(time.perf_counter() - t0)
            del out
    rows = [(name, float(np.median(s)), mb[name]) for name, s in seconds.items()]
    print(f"{len(candles):,} one-minute bars, median of {args.repeat} runs")
    print("| features | seconds (median) | fastest .. slowest | MB |\n| --- | --- | --- | --- |")
    for name, s, mb in rows:
        print(f"| {name} | {s:.3f} | {min(seconds[name]):.3f} .. {max(seconds[name]):.3f} | {mb:,.0f} |")
    ratios = np.array(seconds[rows[1][0]]) / np.array(seconds[rows[2][0]])
    print(f"library / floor: {rows[1][1] / rows[2][1]:.2f}x (run by run: {' '.join(f'{r:.2f}' for r in ratios)})")


if __name__ == "__main__":
    main()
