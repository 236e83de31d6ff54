"""Competitive TP/SL labels: candleflow (numba scan) vs a plain Python loop over numpy arrays and the
original per-row pandas loop, on the same synthetic candles, side by side.

Run: python benchmarks/bench_labels.py [--rows N] [--horizon H]
The baselines run on a slice (they are slow) and are extrapolated per row; results are checked equal.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from candleflow.config import LabelConfig, SyntheticSource
from candleflow.data.load import load_candles
from candleflow.dataset.labels import HOLD, LONG, SHORT, competitive_labels


def python_loop(o, h, l, c, horizon, tp, sl):
    n = len(c)
    y = np.full(n, -1, np.int8)
    for t in range(n - horizon):
        won = []
        for up_k, down_k, long_side in ((1 + tp, 1 - sl, True), (1 + sl, 1 - tp, False)):
            up, down, w = c[t] * up_k, c[t] * down_k, False
            for j in range(t + 1, t + horizon + 1):
                hu, hd = h[j] >= up, l[j] <= down
                if hu or hd:
                    w = (hu and not hd) if long_side else (hd and not hu)
                    break
            won.append(w)
        y[t] = LONG if won == [True, False] else SHORT if won == [False, True] else HOLD
    return y


def pandas_loop(df, horizon, tp, sl):
    y = np.full(len(df), -1, np.int8)
    for t in range(len(df) - horizon):
        c = df.iloc[t]["close"]
        won = []
        for up_k, down_k, long_side in ((1 + tp, 1 - sl, True), (1 + sl, 1 - tp, False)):
            w = False
            for j in range(t + 1, t + horizon + 1):
                row = df.iloc[j]
                hu, hd = row["high"] >= c * up_k, row["low"] <= c * down_k
                if hu or hd:
                    w = (hu and not hd) if long_side else (hd and not hu)
                    break
            won.append(w)
        y[t] = LONG if won == [True, False] else SHORT if won == [False, True] else HOLD
    return y


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=4_300_000)
    ap.add_argument("--horizon", type=int, default=60)
    args = ap.parse_args()
    import sys
    from pathlib import Path

    import numba

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from candleflow.dataset.labels import barrier_multipliers
    from label_reference import numba_reference

    candles, _ = load_candles(SyntheticSource(n_bars=args.rows, interval="1m"))
    cfg = LabelConfig(barrier="percent", tp=0.5, sl=0.5, horizon=args.horizon)
    competitive_labels(candles, LabelConfig(horizon=args.horizon))  # compile
    threads = numba.config.NUMBA_NUM_THREADS
    timings = {}
    for n_threads in sorted({1, threads}):
        numba.set_num_threads(n_threads)
        best = min(_timed(lambda: competitive_labels(candles, cfg)) for _ in range(3))
        timings[n_threads] = best
    numba.set_num_threads(threads)
    lab = competitive_labels(candles, cfg)
    reference = numba_reference()
    mults = [np.nan_to_num(m, nan=0.0) for m in barrier_multipliers(candles, cfg)]
    seg_stop = candles.segments[candles.segment_id, 1]
    args_ref = (candles.close, candles.high, candles.low, seg_stop, *mults, args.horizon, True)
    reference(*args_ref)  # compile
    t = time.perf_counter()
    y_ref, t1_ref = reference(*args_ref)
    t_ref = time.perf_counter() - t
    assert np.array_equal(y_ref, lab.y) and np.array_equal(t1_ref, lab.t1), "candleflow differs from the reference"
    o, h, l, c = candles.open, candles.high, candles.low, candles.close
    k = 20_000
    t = time.perf_counter()
    y_py = python_loop(o[:k], h[:k], l[:k], c[:k], args.horizon, 0.005, 0.005)
    t_py = (time.perf_counter() - t) / (k - args.horizon)
    assert np.array_equal(y_py[: k - args.horizon], lab.y[: k - args.horizon])
    import pandas as pd

    kp = 1_000
    df = pd.DataFrame({"open": o[:kp], "high": h[:kp], "low": l[:kp], "close": c[:kp]})
    t = time.perf_counter()
    y_pd = pandas_loop(df, args.horizon, 0.005, 0.005)
    t_pd = (time.perf_counter() - t) / (kp - args.horizon)
    assert np.array_equal(y_pd[: kp - args.horizon], lab.y[: kp - args.horizon])
    per_row = timings[threads] / args.rows
    print(
        f"machine: {platform.machine()}, {threads} numba threads; {args.rows:,} rows of 1m candles, "
        f"horizon {args.horizon}, tp=sl=0.5%; every result identical to the reference scan"
    )
    print(f"{'method':44s} {'rows/s':>14s} {'x slower than candleflow':>26s}")
    rows = [(f"candleflow (auto kernel, {threads} threads)", per_row)]
    if threads > 1:
        rows.append(("candleflow (auto kernel, 1 thread)", timings[1] / args.rows))
    rows += [
        ("simple reference scan (numba, 1 core)", t_ref / args.rows),
        ("python loop over numpy arrays", t_py),
        ("pandas .iloc loop (original)", t_pd),
    ]
    for name, sec in rows:
        print(f"{name:44s} {1 / sec:14,.0f} {sec / per_row:26.1f}")
    import glob

    from candleflow.config import FilesSource

    datasets = {f"synthetic 1m, {args.rows:,}": candles}
    months = sorted(
        glob.glob(
            str(
                Path(__file__).resolve().parents[2]
                / "shared/data/binance-vision/data/spot/monthly/klines/BTCUSDT/1m/*.zip"
            )
        )
    )
    if months:
        datasets[f"BTCUSDT 1m, {len(months)} months"] = load_candles(FilesSource(paths=months))[0]
    kernels_side_by_side(datasets, args.horizon)


def kernels_side_by_side(datasets: dict, horizon: int = 60, repeats: int = 5) -> None:
    """Both label kernels on all numba threads and on one, against the single-core reference scan,
    for percent and volatility barriers on each dataset; best of `repeats`, interleaved so the
    machine's drift hits every method alike. Results checked identical to the reference."""
    import sys
    from pathlib import Path

    import numba

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from candleflow.dataset import labels as L
    from label_reference import numba_reference

    reference = numba_reference()
    threads = numba.config.NUMBA_NUM_THREADS
    print(
        f"\nlabel kernels, rows/s (median of {repeats}, interleaved); ratio = kernel on {threads} threads / "
        "reference on 1 core (median; best of the runs in brackets)"
    )
    print(
        f"{'data':26s} {'barriers':10s} {'reference 1 core':>17s} {'scan':>12s} {'pointers':>12s} "
        f"{'scan 1t':>10s} {'pointers 1t':>12s} {'auto':>9s} {'auto/ref':>16s}"
    )
    profiles = []
    for name, c in datasets.items():
        for cfg in (LabelConfig(barrier="percent", tp=0.5, sl=0.5, horizon=horizon), LabelConfig(horizon=horizon)):
            args = (
                c.close,
                c.high,
                c.low,
                L._segment_ends(c),
                *L.barrier_multipliers(c, cfg, compact=True),
                cfg.horizon,
                True,
                *L._fine_arrays(c, None),
                L.LABEL_CHUNK,
            )
            mults = [np.nan_to_num(m, nan=0.0) for m in L.barrier_multipliers(c, cfg)]
            rargs = (c.close, c.high, c.low, c.segments[c.segment_id, 1], *mults, cfg.horizon, True)
            runs = {
                "ref": (reference, rargs, 1),
                "scan": (L.KERNELS["scan"], args, threads),
                "pointers": (L.KERNELS["pointers"], args, threads),
                "scan 1t": (L.KERNELS["scan"], args, 1),
                "pointers 1t": (L.KERNELS["pointers"], args, 1),
            }
            want = reference(*rargs)
            times: dict[str, list[float]] = {k: [] for k in runs}
            for _ in range(repeats):
                for key, (fn, a, th) in runs.items():
                    numba.set_num_threads(th)
                    t = time.perf_counter()
                    got = fn(*a)
                    times[key].append(time.perf_counter() - t)
                    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]), key
            numba.set_num_threads(threads)
            prep = []  # what competitive_labels does besides the kernel: the barriers' arrays (median of 3)
            for _ in range(3):
                t = time.perf_counter()
                L.barrier_multipliers(c, cfg, compact=True), L._segment_ends(c)
                prep.append(time.perf_counter() - t)
            prep_s = float(np.median(prep))
            auto = "scan" if cfg.barrier == "volatility" else "pointers"
            rate = {k: len(c) / float(np.median(v)) for k, v in times.items()}
            top = {k: len(c) / min(v) for k, v in times.items()}
            print(
                f"{name:26s} {cfg.barrier:10s} {rate['ref']:17,.0f} {rate['scan']:12,.0f} {rate['pointers']:12,.0f} "
                f"{rate['scan 1t']:10,.0f} {rate['pointers 1t']:12,.0f} {auto:>9s} "
                f"{rate[auto] / rate['ref']:7.2f}x ({top[auto] / top['ref']:.2f}x)"
            )
            one = rate[f"{auto} 1t"]
            kernel_s = len(c) / rate[auto]
            profiles.append(
                f"{name:26s} {cfg.barrier:10s} one thread vs reference {one / rate['ref']:.2f}x; "
                f"{threads} threads vs one {rate[auto] / one:.2f}x (parallel efficiency "
                f"{rate[auto] / one / threads:.0%}); run-to-run spread of the {threads}-thread kernel "
                f"{(max(times[auto]) - min(times[auto])) / min(times[auto]):.0%}; barrier arrays "
                f"{prep_s * 1e3:.0f} ms beside the kernel's {kernel_s * 1e3:.0f} ms"
            )
    print(
        "\nwhere the time goes: auto / reference = (one-thread kernel / reference) x (thread scaling); "
        f"1.8x on {threads} threads needs both near their limits"
    )
    print("\n".join(profiles))


def _timed(call) -> float:
    t = time.perf_counter()
    call()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
