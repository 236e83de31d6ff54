"""Learning across assets on the two real universes in ../shared/data (issue 40): `prepare` time
and peak memory of each universe's store, then a pooled walk-forward of each:

- stocks: the 300-stock daily universe (297 large caps, SPY, QQQ, DIA; 2000..2017-11-10,
  survivorship-biased: today's index members), 5-day forward log returns, scored by the daily
  rank IC across the stocks and the top-minus-bottom fifth after 10 bps a side, against the
  cross-section's known effects (1- and 5-day reversal, 12-1 momentum, low volatility, size);
- crypto: 33 Binance USDT pairs hourly, the log realised volatility of the next 24 hours,
  against HAR pooled, HAR per asset and the seasonal (hour-of-week) HAR per asset, on MSE and
  QLIKE with the Newey-West interval of the per-time loss difference.

    python benchmarks/bench_universes.py [--shared ../shared] [--families lightgbm,linear]
        [--folds 5] [--only stocks|crypto] [--set KEY=VALUE ...] [--name SUFFIX]

Everything is written under --out (default /tmp/candleflow-universes): the stores and the
walk-forward folders (a rerun with the same --name reuses the folds already trained).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

from candleflow.cli.present import print_study
from candleflow.config import load_config
from candleflow.scale.cluster import build_store
from candleflow.studies.pooled_walkforward import pooled_walkforward

UNIVERSES = {
    "stocks": [
        "source.kind=files",
        "source.paths=['{shared}/data/stocks/universe/{{symbol}}-1d.csv']",
        "source.interval=1d",
        "validation.calendar=XNYS",
        "validation.ohlc=repair",  # bad prints in the published files: dropped and reported, never a split
        "labels.kind=forward_return",
        "labels.horizon=5",
        "labels.cross_section=rank",  # learn each day's ranking (raw: +0.009 / +0.016 rank IC, rank: +0.019 / +0.021)
        "dataset.window=20",
        "backtest.fee=0.001",
        "backtest.slippage=0.0",
    ],
    "crypto": [
        "source.kind=files",
        "source.paths=['{shared}/data/crypto/1h/{{symbol}}-1h.csv.gz']",
        "source.interval=1h",
        "validation.ohlc=repair",
        "labels.kind=volatility",
        "labels.horizon=24",
        "dataset.window=24",
        # bar features, the calendar and HAR's weekly and monthly terms (the daily one is `volatility`)
        "features.names=[log_return,range,body,upper_wick,lower_wick,volume_ratio,volatility,momentum,"
        "hour_sin,hour_cos,dow_sin,dow_cos,log_rv_week,log_rv_month]",
        # the market's volatility and each pair's place in it (docs/guide/universes.md)
        "features.cross_section=[mean(volatility),mean(log_rv_week),rank(volatility),rank(log_rv_month)]",
        # every pair on one scale: a per-asset scale would hide each pair's volatility level from the model
        "dataset.asset_scaling=pooled",
    ],
}


def peak_mb() -> tuple[float, float]:
    """Peak resident memory of this process and of its reaped children (the Dask workers), MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    ap.add_argument("--out", default="/tmp/candleflow-universes")
    ap.add_argument("--families", default="lightgbm,linear")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--only", choices=sorted(UNIVERSES))
    ap.add_argument("--set", action="append", default=[], dest="sets")
    ap.add_argument("--name", default="a")
    args = ap.parse_args()
    out = Path(args.out)
    figures = {}
    for name, keys in UNIVERSES.items():
        if args.only and name != args.only:
            continue
        cfg = load_config(
            None,
            [
                *(k.format(shared=args.shared) for k in keys),
                "universe.symbols=*",
                f"universe.store={out / ('store-' + name)}",
                f"output.runs_dir={out / 'runs'}",
                "cluster.workers=2",
                *args.sets,
            ],
        )
        t0 = time.perf_counter()
        report = build_store(cfg)
        prep = time.perf_counter() - t0
        own, children = peak_mb()
        print(
            f"{name}: prepare {prep:.1f}s ({len(report.computed)} entries computed, {len(report.skipped)} reused, "
            f"{report.rows:,} rows), peak memory {own:.0f} MB here, {children:.0f} MB the largest worker",
            flush=True,
        )
        t0 = time.perf_counter()
        result = pooled_walkforward(
            cfg,
            args.folds,
            [f.strip() for f in args.families.split(",")],
            f"{name}-{args.name}",
            progress=lambda msg: print(f"  {msg} ({time.perf_counter() - t0:.0f}s)", flush=True),
        )
        took = time.perf_counter() - t0
        print_study(result)
        print(f"{name}: walk-forward {took:.0f}s, peak memory {peak_mb()[0]:.0f} MB", flush=True)
        figures[name] = {"prepare_s": round(prep, 1), "walkforward_s": round(took), "folder": str(result.folder)}
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
