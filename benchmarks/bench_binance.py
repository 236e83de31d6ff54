"""Download, verify and parse the shared Binance mirror from a loopback server: candleflow vs a
straightforward baseline (one request at a time, hashlib, pandas.read_csv), in one run.

Run: python benchmarks/bench_binance.py [--mirror ../shared/data/binance-vision] [--concurrency 8]
Both fetch the same ZIPs and checksums from the same 127.0.0.1 server into empty folders and parse
every file; the table prints files/s, MB/s and rows/s, and the ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import platform
import tempfile
import time
import zipfile
from pathlib import Path

import httpx

from candleflow.data.sources.binance.download import DownloadOptions, download_files
from candleflow.data.sources.binance.listing import list_files
from candleflow.data.sources.binance.mirror import MirrorServer
from candleflow.data.sources.binance.plan import FileRef
from candleflow.data.sources.files import BINANCE_COLUMNS, read_paths
from candleflow.data.validate import validate_candles

COLUMNS = BINANCE_COLUMNS  # Binance's published kline columns, one list for both sides


def candleflow_run(url: str, keys: list[str], cache: Path, concurrency: int) -> tuple[float, float, int, int]:
    t0 = time.perf_counter()
    refs = [FileRef(k, k.rsplit("-", 2)[-2] + "-" + k.rsplit("-", 1)[-1].removesuffix(".zip")) for k in keys]
    rep = download_files(refs, DownloadOptions(base_url=url, cache_dir=cache, concurrency=concurrency))
    t_dl = time.perf_counter() - t0
    assert rep.count("downloaded") == len(keys), [r.error for r in rep.failures]
    rows = 0
    by_series: dict[str, list[Path]] = {}
    for p in rep.paths:
        by_series.setdefault(p.parent.as_posix(), []).append(p)
    for paths in by_series.values():
        candles, report = validate_candles(read_paths(sorted(paths), "binance"))
        rows += report.rows_in
    return t_dl, time.perf_counter() - t0, rep.bytes, rows


def baseline_run(url: str, keys: list[str], out: Path) -> tuple[float, float, int, int]:
    import pandas as pd

    t0 = time.perf_counter()
    total = 0
    with httpx.Client(timeout=30) as client:
        for key in keys:
            data = client.get(f"{url}/{key}").content
            expected = client.get(f"{url}/{key}.CHECKSUM").text.split()[0]
            assert hashlib.sha256(data).hexdigest() == expected
            dest = out / key
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
            total += len(data)
    t_dl = time.perf_counter() - t0
    rows = 0
    for key in keys:
        with zipfile.ZipFile(out / key) as zf:
            df = pd.read_csv(io.BytesIO(zf.read(zf.namelist()[0])), header=None, names=COLUMNS)
        unit = "us" if df["open_time"].iloc[0] > 1e14 else "ms"
        df["open_time"] = pd.to_datetime(df["open_time"], unit=unit)
        rows += len(df)
    return t_dl, time.perf_counter() - t0, total, rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mirror", default=str(Path(__file__).resolve().parents[2] / "shared/data/binance-vision"))
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument(
        "--latency",
        type=float,
        nargs="*",
        default=[0.0, 0.05],
        help="seconds the server waits before each response (0 = raw loopback; 0.05 ~ a CDN round trip)",
    )
    args = ap.parse_args()
    for latency in args.latency:
        with MirrorServer(args.mirror, latency=latency) as srv:
            keys = list_files(srv.url, "spot", "BTCUSDT", "1m") + list_files(srv.url, "spot", "BTCUSDT", "1h")
            with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:  # warm-up
                baseline_run(srv.url, keys[:3], Path(b))
                candleflow_run(srv.url, keys[:3], Path(a), args.concurrency)
            with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
                base = baseline_run(srv.url, keys, Path(b))
                cf = candleflow_run(srv.url, keys, Path(a), args.concurrency)
        report(keys, cf, base, args.concurrency, latency)


def report(keys, cf, base, concurrency, latency) -> None:
    print(
        f"\nmachine: {platform.machine()}, Python {platform.python_version()}; 127.0.0.1 server, {latency * 1000:.0f} ms "
        f"per response; {len(keys)} ZIPs, {cf[2] / 2**20:.1f} MB, {cf[3]:,} rows; candleflow concurrency {concurrency}"
    )
    print(f"{'':34s} {'download s':>10s} {'total s':>8s} {'files/s':>8s} {'MB/s':>7s} {'rows/s':>12s}")
    for name, (t_dl, t_all, nbytes, rows) in (
        ("candleflow (verify+parse+validate)", cf),
        ("baseline (serial, pandas.read_csv)", base),
    ):
        print(
            f"{name:34s} {t_dl:10.2f} {t_all:8.2f} {len(keys) / t_all:8.1f} {nbytes / 2**20 / t_all:7.1f} "
            f"{rows / t_all:12,.0f}"
        )
    print(
        f"candleflow end to end is {base[1] / cf[1]:.1f}x the baseline's speed "
        f"(download alone {base[0] / cf[0]:.1f}x, parse alone {(base[1] - base[0]) / (cf[1] - cf[0]):.1f}x)"
    )


if __name__ == "__main__":
    main()
