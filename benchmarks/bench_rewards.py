"""1M reward samples (lookback 64, forward 32): candleflow vs the original loop (per-sample pandas
slicing, row-by-row scaling, per-sample reward loop) and vs the fix its design proposes
(per-sample numpy slicing into preallocated arrays, row-by-row scaling), in one run.

Run: python benchmarks/bench_rewards.py [--n 1000000]
The baselines are timed on a slice of the samples and scaled to n (they are linear in n);
every baseline's rewards are checked equal to candleflow's on that slice.
"""

from __future__ import annotations

import argparse
import os
import platform
import threading
import time

import numpy as np
import psutil

from candleflow.config import RewardConfig, SyntheticSource
from candleflow.data.load import load_candles
from candleflow.rewards.samples import _draw, build_reward_samples, sample_ends


class PeakRSS:
    """Peak resident memory of this process while the block runs (sampled every 5 ms)."""

    def __enter__(self):
        self.proc, self.peak, self.stop = psutil.Process(), 0, False
        self.base = self.proc.memory_info().rss
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def _watch(self):
        while not self.stop:
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.005)

    def __exit__(self, *a):
        self.stop = True
        self.thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)

    @property
    def mb(self) -> float:
        return (self.peak - self.base) / 2**20


def reward_loop(c, h, l, e, forward, side, dollars, sl, tp, entry_cost, exit_cost):
    if side == 0 or dollars == 0:
        return 0.0
    entry = c[e]
    target = entry * (1 + tp) if side > 0 else entry * (1 - tp)
    stop = entry * (1 - sl) if side > 0 else entry * (1 + sl)
    price = c[e + forward]
    for j in range(e + 1, e + forward + 1):
        hit_t = (h[j] >= target if side > 0 else l[j] <= target) and tp > 0
        hit_s = (l[j] <= stop if side > 0 else h[j] >= stop) and sl > 0
        if hit_t or hit_s:
            price = stop if hit_s else target
            break
    return dollars * side * (price / entry - 1) - dollars * (entry_cost + exit_cost)


def original(df, ends, state, action, lookback, forward, cost):
    """Per-sample pandas slicing into Python rows, row-by-row scaling, per-sample reward loop."""
    rows = []
    for e in ends:
        sl = slice(e - lookback + 1, e + 1)
        rows.append({col: df[col].iloc[sl].values for col in ("open", "high", "low", "close", "volume")})
    out_w, out_r = [], []
    c, h, l = df["close"].values, df["high"].values, df["low"].values
    for k, row in enumerate(rows):
        last = row["close"][-1]
        lv = np.log1p(row["volume"][-1]) or 1.0
        out_w.append(
            np.stack(
                [
                    row["open"] / last,
                    row["high"] / last,
                    row["low"] / last,
                    row["close"] / last,
                    np.log1p(row["volume"]) / lv,
                ],
                axis=1,
            ).astype(np.float32)
        )
        r = reward_loop(c, h, l, ends[k], forward, int(state[k, 2]), *state[k, 3:6], 0.0, cost)
        r += reward_loop(c, h, l, ends[k], forward, int(action[k, 0]), *action[k, 1:4], cost, cost)
        out_r.append(r / state[k, 0])
    return np.stack(out_w), np.array(out_r)


def proposed_fix(arrays, ends, state, action, lookback, forward, cost):
    """Per-sample numpy slicing into preallocated arrays, then scaling row by row."""
    o, h, l, c, v = arrays
    n = len(ends)
    win = {k: np.zeros((n, lookback), np.float32) for k in "ohlcv"}
    for i, e in enumerate(ends):
        s = e - lookback + 1
        win["o"][i], win["h"][i], win["l"][i], win["c"][i], win["v"][i] = (
            o[s : e + 1],
            h[s : e + 1],
            l[s : e + 1],
            c[s : e + 1],
            v[s : e + 1],
        )
    last = win["c"][:, -1].copy()
    out = np.empty((n, lookback, 5), np.float32)
    for i in range(n):
        lv = np.log1p(win["v"][i, -1]) or 1.0
        out[i, :, 0], out[i, :, 1] = win["o"][i] / last[i], win["h"][i] / last[i]
        out[i, :, 2], out[i, :, 3] = win["l"][i] / last[i], win["c"][i] / last[i]
        out[i, :, 4] = np.log1p(win["v"][i]) / lv
    rewards = np.array(
        [
            (
                reward_loop(c, h, l, e, forward, int(st[2]), *st[3:6], 0.0, cost)
                + reward_loop(c, h, l, e, forward, int(ac[0]), *ac[1:4], cost, cost)
            )
            / st[0]
            for e, st, ac in zip(ends, state, action)
        ]
    )
    return out, rewards


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--bars", type=int, default=500_000)
    args = ap.parse_args()
    lookback, forward = 64, 32
    candles, _ = load_candles(SyntheticSource(n_bars=args.bars, interval="1m"))
    cfg = RewardConfig()
    build_reward_samples(candles, 70_000, lookback, forward, seed=1)  # compile and warm up
    with PeakRSS() as mem:
        t = time.perf_counter()
        s = build_reward_samples(candles, args.n, lookback, forward, seed=0)
        t_cf = time.perf_counter() - t
    t = time.perf_counter()
    build_reward_samples(candles, args.n, lookback, forward, seed=1, out=s)
    t_reuse = time.perf_counter() - t
    t = time.perf_counter()
    touched = np.ones(s.windows.shape, np.float32)
    t_touch = time.perf_counter() - t
    del touched
    out_mb = (s.windows.nbytes + s.state.nbytes + s.action.nbytes + s.reward.nbytes + s.ends.nbytes) / 2**20

    ends, state, action = _draw(np.random.default_rng(5), 20_000, cfg, sample_ends(candles, lookback, forward))
    state, action = state.astype(np.float64), action.astype(np.float64)
    cost = cfg.fee + cfg.slippage
    arrays = (candles.open, candles.high, candles.low, candles.close, candles.volume)
    k_fix = 20_000
    t = time.perf_counter()
    w_fix, r_fix = proposed_fix(arrays, ends[:k_fix], state[:k_fix], action[:k_fix], lookback, forward, cost)
    t_fix = (time.perf_counter() - t) / k_fix * args.n
    import pandas as pd

    df = pd.DataFrame({k: v for k, v in zip(("open", "high", "low", "close", "volume"), arrays)})
    k_orig = 3_000
    t = time.perf_counter()
    w_orig, r_orig = original(df, ends[:k_orig], state[:k_orig], action[:k_orig], lookback, forward, cost)
    t_orig = (time.perf_counter() - t) / k_orig * args.n
    from candleflow.rewards.samples import _fill

    w_cf = np.empty((k_fix, lookback, 5), np.float32)
    r_cf = np.empty(k_fix)
    _fill(
        *[np.asarray(a, float) for a in arrays[:4]],
        np.log1p(arrays[4]),
        ends[:k_fix],
        lookback,
        forward,
        state[:k_fix],
        action[:k_fix],
        True,
        cost,
        w_cf,
        r_cf,
    )
    assert np.allclose(r_cf, r_fix, atol=1e-12) and np.allclose(r_cf[:k_orig], r_orig, atol=1e-12)
    assert np.allclose(w_cf, w_fix) and np.allclose(w_cf[:k_orig], w_orig)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{args.n:,} samples, lookback {lookback}, forward {forward}, from {args.bars:,} 1m bars"
    )
    print(f"{'method':48s} {'seconds':>9s} {'samples/s':>12s} {'x slower than candleflow':>25s}")
    for name, sec in (
        ("candleflow build_reward_samples (2 threads)", t_cf),
        ("candleflow, reusing the arrays (out=)", t_reuse),
        ("proposed fix: numpy slicing, row scaling (est.)", t_fix),
        ("original: pandas slicing, row scaling (est.)", t_orig),
    ):
        print(f"{name:48s} {sec:9.3f} {args.n / sec:12,.0f} {sec / t_cf:25.1f}")
    print(f"candleflow peak memory above the start: {mem.mb:,.0f} MB for {out_mb:,.0f} MB of output arrays")
    print(
        f"this machine's floor: np.ones of the same {s.windows.nbytes / 2**20:,.0f} MB window array takes "
        f"{t_touch:.3f} s (first-touch page faults)"
    )


if __name__ == "__main__":
    main()
