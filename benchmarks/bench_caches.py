"""What a cache cap costs: listing a Binance cache of many daily ZIPs (as every capped download
does after writing) against the floor, a bare `os.walk` summing file sizes (what `du` does), and
one eviction pass that removes a tenth of the cache, in one run.

Run: python benchmarks/bench_caches.py [--files 20000] [--dir /tmp]
The cache is built from empty files under a temporary folder and removed afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from candleflow.fs.caches import entries, evict


def build(root: Path, files: int) -> int:
    """`files` daily ZIPs with checksums in Binance's layout (symbols x days), 1 KB each."""
    day0 = dt.date(2020, 1, 1)
    symbols = max(1, files // 1000)
    made = 0
    for s in range(symbols):
        folder = root / "data/spot/daily/klines" / f"SYM{s:04d}USDT" / "1m"
        folder.mkdir(parents=True)
        for d in range(min(1000, files - made)):
            name = f"SYM{s:04d}USDT-1m-{day0 + dt.timedelta(days=d)}.zip"
            (folder / name).write_bytes(b"\0" * 1024)
            (folder / f"{name}.CHECKSUM").write_bytes(b"\0" * 90)
            t = 1.6e9 + made * 60
            os.utime(folder / name, (t, t))
            made += 1
    return made


def walk_sizes(root: Path) -> tuple[int, int]:
    n = total = 0
    for folder, _dirs, names in os.walk(root):
        for name in names:
            total += os.lstat(os.path.join(folder, name)).st_size
            n += 1
    return n, total


def best(fn, repeat: int = 3) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--dir", default=None, help="where to build the cache (default: the system temp folder)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cf-bench-caches-", dir=args.dir))
    try:
        root = tmp / "binance"
        made = build(root, args.files)
        print(f"{made:,} ZIPs + checksums in {root}; {os.cpu_count()} CPUs ({platform.machine()})")
        t_walk, (n, total) = best(lambda: walk_sizes(root))
        t_list, listed = best(lambda: entries("binance", root))
        assert len(listed) == made and sum(e.bytes for e in listed) == total  # type: ignore[arg-type]
        print(f"os.walk + lstat (floor):        {t_walk * 1e3:8.1f} ms for {n:,} files")
        print(f"candleflow entries (LRU order): {t_list * 1e3:8.1f} ms  ({t_list / t_walk:.2f}x the walk)")
        cap = int(total * 0.9)
        t0 = time.perf_counter()
        gone = evict("binance", root, cap)
        t_evict = time.perf_counter() - t0
        print(
            f"evict to 90% of the cache:       {t_evict * 1e3:8.1f} ms, {len(gone):,} entries removed "
            f"(oldest first: {gone[0].path.name} .. {gone[-1].path.name})"
        )
        t_noop, _ = best(lambda: evict("binance", root, cap))
        print(f"a capped download's check, under the cap: {t_noop * 1e3:.1f} ms")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
