"""Reward samples at scale, streamed: 10M samples (lookback 64, forward 32) built and written to
Parquet, Zarr and NPZ as they are made (`candleflow rewards --out`), each in a fresh process whose
peak resident memory is read from the OS, against building the same samples in memory (what
`build_reward_samples` needs: n x 64 x 5 float32 and the rest, 1.29 GB per million).

    python benchmarks/bench_rewards_streamed.py [--n 10000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, resource, sys, time
from candleflow.config import SyntheticSource
from candleflow.data.load import load_candles
from candleflow.rewards.samples import build_reward_samples, stream_reward_samples
n, target = int(sys.argv[1]), sys.argv[2]
candles, _ = load_candles(SyntheticSource(n_bars=500_000))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
if target == "memory":
    s = build_reward_samples(candles, n)
else:
    stream_reward_samples(candles, n, target)
print(json.dumps({"seconds": time.perf_counter() - t0, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "before_mb": base}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--memory-n", type=int, default=1_000_000, help="in-memory build for comparison (scaled to n)")
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-rewards-"))
    print(
        "| how | samples | seconds | peak RSS MB (before building: the candles) | file MB |\n| --- | --- | --- | --- | --- |"
    )
    for name in ("samples.parquet", "samples.zarr", "samples.npz", "memory"):
        target = name if name == "memory" else str(folder / name)
        n = args.memory_n if name == "memory" else args.n
        out = subprocess.run([sys.executable, "-c", CHILD, str(n), target], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        path = Path(target)
        size = (
            ""
            if name == "memory"
            else f"{sum(p.stat().st_size for p in ([path] if path.is_file() else path.rglob('*')) if p.is_file()) / 2**20:,.0f}"
        )
        label = "in memory" if name == "memory" else f"streamed to {name.split('.')[1]}"
        print(
            f"| {label} | {n:,} | {r['seconds']:.1f} | {r['peak_mb']:,.0f} ({r['before_mb']:,.0f}) | {size} |",
            flush=True,
        )
        if name != "memory":
            path.unlink() if path.is_file() else subprocess.run(["rm", "-rf", str(path)], check=True)


if __name__ == "__main__":
    main()
