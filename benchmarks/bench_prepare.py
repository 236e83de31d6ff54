"""Prepare throughput over many series: candleflow on Dask with 1 and 2 local workers vs the
serial loop a user would write (read, validate, features, labels, np.save per series), in one run;
then one 8-year 1m series (the per-symbol size of the 400-symbol case) for time and worker memory.

Run: python benchmarks/bench_prepare.py [--copies 3] [--shared ../shared]
Every monthly 1m ZIP of the shared Binance data is one series, read `copies` times under other
names; every variant writes the same entries into an empty store. rows/s counts candle rows prepared.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from candleflow.config import validate_config
from candleflow.scale.cluster import build_entry, build_store, dask_client, plan_tasks
from candleflow.scale.store import SeriesStore


def universe(zips: list[Path], copies: int, store: Path) -> dict:
    sources = {
        f"{z.stem}-c{c}": {"kind": "files", "paths": [str(z)], "format": "binance"} for c in range(copies) for z in zips
    }
    return {"universe": {"sources": sources, "store": str(store)}}


def serial_baseline(cfg, store: Path) -> tuple[float, int]:
    """What one would write without candleflow's store: a loop over series, one process."""
    from candleflow.data.load import load_candles
    from candleflow.dataset.prepare import features_and_labels

    t0 = time.perf_counter()
    rows = 0
    for task in plan_tasks(cfg):
        candles, _ = load_candles(task.config.source, task.config.validation)
        features, labels, _ = features_and_labels(task.config, candles)
        out = store / task.name
        out.mkdir(parents=True)
        for name, arr in (
            ("features", features.values),
            ("labels", labels.y),
            ("t1", labels.t1),
            ("open_time", candles.open_time),
        ):
            np.save(out / f"{name}.npy", arr)
        rows += len(candles)
    return time.perf_counter() - t0, rows


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def dask_run(cfg, workers: int) -> tuple[float, float, int, list[float]]:
    t0 = time.perf_counter()
    with dask_client(workers=workers, threads_per_worker=1) as client:
        started = time.perf_counter() - t0
        report = build_store(cfg, client=client)
        peaks = list(client.run(peak_rss_mb).values())
    return started, report.seconds, report.rows, peaks


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    ap.add_argument("--copies", type=int, default=3)
    ap.add_argument("--long-rows", type=int, default=8 * 525_600, help="rows of the one long series (8 years of 1m)")
    args = ap.parse_args()
    zips = sorted((Path(args.shared) / "data/binance-vision/data/spot/monthly/klines/BTCUSDT/1m").glob("*.zip"))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(
        f"{len(zips)} monthly 1m ZIPs x {args.copies} copies = {len(zips) * args.copies} series "
        f"(read, validate, 8 features, TP/SL labels, store entry)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = validate_config(universe(zips, args.copies, tmp / "serial"))
        serial_s, rows = serial_baseline(base, tmp / "serial")
        results = {"serial loop, one process (baseline)": (0.0, serial_s, rows, [peak_rss_mb()])}
        for workers in (1, 2):
            cfg = validate_config(universe(zips, args.copies, tmp / f"store{workers}"))
            results[f"candleflow on Dask, {workers} worker{'s' if workers > 1 else ''}"] = dask_run(cfg, workers)
        store = SeriesStore(str(tmp / "store2"))
        summary = store.summary()
        print(
            f"\n{'prepare':38s} {'start s':>8s} {'prepare s':>10s} {'rows':>10s} {'rows/s':>11s} {'vs serial':>10s} "
            f"{'peak RSS per worker MB':>23s}"
        )
        for name, (start, secs, n, peaks) in results.items():
            print(
                f"{name:38s} {start:8.2f} {secs:10.2f} {n:10,d} {n / secs:11,.0f} {serial_s / secs:9.2f}x "
                f"{' / '.join(f'{p:,.0f}' for p in peaks):>23s}"
            )
        one = results["candleflow on Dask, 1 worker"]
        two = results["candleflow on Dask, 2 workers"]
        print(f"2 workers vs 1: {one[1] / two[1]:.2f}x (ideal 2.00x on {os.cpu_count()} cores)")
        print(
            f"store: {summary['entries']} entries, {summary['rows']:,} rows, {summary['bytes'] / 2**20:,.1f} MB on disk, "
            f"{summary['bytes'] / summary['rows']:.1f} bytes per row (features 32, labels 1, t1 4, open time 8, "
            f"segments, candles as zstd Parquet)"
        )

        # the per-symbol size of 400 symbols x 8 years of 1m: one task's time and its worker's memory
        long_cfg = validate_config(
            {
                "source": {"kind": "synthetic", "interval": "1m", "n_bars": args.long_rows, "symbol": "LONG"},
                "universe": {"store": str(tmp / "long")},
            }
        )
        with dask_client(workers=1, threads_per_worker=1) as client:
            before = max(client.run(peak_rss_mb).values())
            task = plan_tasks(long_cfg)[0]
            t0 = time.perf_counter()
            record = client.submit(
                build_entry, task.name, task.config.model_dump_json(), task.key, long_cfg.universe.store, 1, pure=False
            ).result()
            secs = time.perf_counter() - t0
            peak = max(client.run(peak_rss_mb).values())
        print(
            f"\none series of {record['rows']:,} 1m rows (synthetic, generated in the task): {secs:.1f}s, "
            f"{record['rows'] / secs:,.0f} rows/s; worker peak RSS {peak:,.0f} MB (idle worker {before:,.0f} MB); "
            f"entry {record['bytes'] / 2**20:,.0f} MB"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
