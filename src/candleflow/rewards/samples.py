"""Reward samples for reward models: random points in history with an OHLCV lookback window, a
synthetic account state, a synthetic action, and the reward that action earned.

The reward, in one place (units: a fraction of the account's equity over the forward window):

    reward = (pnl_action + pnl_position) / equity

    pnl_leg = dollars * (side * (exit_price / entry_price - 1)) - dollars * costs
    entry_price = close of the window's last bar (bar e); costs = fee + slippage per side

Each leg (the existing position from the state, and the new action) is followed over bars
e+1 .. e+forward: it exits at the first of its take-profit (entry * (1 + tp) for a long, entry *
(1 - tp) for a short) or stop-loss (entry * (1 - sl) long, entry * (1 + sl) short) touched by a
bar's high or low, at that price; a bar touching both resolves by `same_bar` ('stop' first, as
the labels); otherwise at the close of bar e+forward. The action pays costs on entry and exit;
the existing position is already open and pays them on exit only. Legs are not netted: a short
action against a long position is a second, opposite trade. A hold action has side 0, size 0,
sl 0 and tp 0, so its reward is the existing position's outcome alone.

Scaled OHLCV (the model input): open/high/low/close divided by the window's last close; volume as
log1p(volume) / log1p(last volume), where a zero last volume divides by 1 instead of 0.
Random streams come from `SeedSequence(seed).spawn` per fixed-size chunk, so the samples are the
same whatever the number of workers.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from candleflow.config import RewardConfig
from candleflow.data.candles import Candles
from candleflow.errors import DataError, require
from candleflow.fs.atomic import atomic_path

CHUNK = 1 << 16
STATE_COLUMNS = ("equity", "balance", "position", "position_dollars", "position_sl", "position_tp")
ACTION_COLUMNS = ("side", "dollars", "sl", "tp")


@dataclass
class RewardSamples:
    """n samples: scaled OHLCV windows (n, lookback, 5) float32, state (n, 6), action (n, 4),
    reward (n,), and the window-end bar and its time."""

    windows: np.ndarray
    state: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    ends: np.ndarray
    open_time: np.ndarray

    def __len__(self) -> int:
        return int(self.reward.shape[0])

    def subset(self, idx: np.ndarray) -> RewardSamples:
        return RewardSamples(
            self.windows[idx], self.state[idx], self.action[idx], self.reward[idx], self.ends[idx], self.open_time[idx]
        )


@numba.njit(cache=True, nogil=True)
def _leg(close, high, low, e, forward, side, dollars, sl, tp, stop_first, entry_cost, exit_cost):
    """Dollar PnL of one leg entered at close[e], followed over bars e+1 .. e+forward."""
    if side == 0 or dollars == 0.0:
        return 0.0
    c = close[e]
    if side > 0:
        target, stop = c * (1.0 + tp), c * (1.0 - sl)
    else:
        target, stop = c * (1.0 - tp), c * (1.0 + sl)
    price = close[e + forward]
    for j in range(e + 1, e + forward + 1):
        hit_t = (high[j] >= target) if side > 0 else (low[j] <= target)
        hit_s = (low[j] <= stop) if side > 0 else (high[j] >= stop)
        if tp <= 0.0:
            hit_t = False
        if sl <= 0.0:
            hit_s = False
        if hit_t and hit_s:
            price = stop if stop_first else target
            break
        if hit_t:
            price = target
            break
        if hit_s:
            price = stop
            break
    return dollars * (side * (price / c - 1.0)) - dollars * (entry_cost + exit_cost)


@numba.njit(cache=True, nogil=True)
def _fill(o, h, l, c, logv, ends, lookback, forward, state, action, stop_first, cost, windows, reward):
    """Scaled windows and rewards for window ends `ends`; logv is log1p(volume) of every bar."""
    for k in range(ends.shape[0]):
        e = ends[k]
        inv = 1.0 / c[e]
        vinv = 1.0 / logv[e] if logv[e] > 0.0 else 1.0
        s = e - lookback + 1
        for t in range(lookback):
            windows[k, t, 0] = o[s + t] * inv
            windows[k, t, 1] = h[s + t] * inv
            windows[k, t, 2] = l[s + t] * inv
            windows[k, t, 3] = c[s + t] * inv
            windows[k, t, 4] = logv[s + t] * vinv
        pnl = _leg(c, h, l, e, forward, int(state[k, 2]), state[k, 3], state[k, 4], state[k, 5], stop_first, 0.0, cost)
        pnl += _leg(
            c, h, l, e, forward, int(action[k, 0]), action[k, 1], action[k, 2], action[k, 3], stop_first, cost, cost
        )
        reward[k] = pnl / state[k, 0]


def sample_ends(candles: Candles, lookback: int, forward: int) -> np.ndarray:
    """Every bar that leaves a full lookback window and forward window inside its segment."""
    parts = [np.arange(s + lookback - 1, t - forward) for s, t in candles.segments if t - s >= lookback + forward]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def _draw(rng: np.random.Generator, m: int, cfg: RewardConfig, valid: np.ndarray):
    ends = np.sort(valid[rng.integers(0, valid.size, size=m)])
    state = np.empty((m, 6))
    state[:, 0] = rng.uniform(*cfg.equity_range, size=m)
    state[:, 1] = state[:, 0] - rng.uniform(*cfg.balance_offset_range, size=m)
    state[:, 2] = rng.choice(np.array([0.0, 1.0, -1.0]), p=cfg.position_probs, size=m)
    flat = state[:, 2] == 0
    state[:, 3] = np.where(flat, 0.0, rng.uniform(*cfg.dollars_range, size=m))
    state[:, 4] = np.where(flat, 0.0, rng.uniform(*cfg.sl_range, size=m))
    state[:, 5] = np.where(flat, 0.0, rng.uniform(*cfg.tp_range, size=m))
    action = np.empty((m, 4))
    action[:, 0] = rng.choice(np.array([0.0, 1.0, -1.0]), p=cfg.action_probs, size=m)
    hold = action[:, 0] == 0
    action[:, 1] = np.where(hold, 0.0, rng.uniform(*cfg.dollars_range, size=m))
    action[:, 2] = np.where(hold, 0.0, rng.uniform(*cfg.sl_range, size=m))
    action[:, 3] = np.where(hold, 0.0, rng.uniform(*cfg.tp_range, size=m))
    return ends, state, action


def build_reward_samples(
    candles: Candles,
    n: int,
    lookback: int = 64,
    forward: int = 32,
    seed: int = 0,
    config: RewardConfig | None = None,
    workers: int | None = None,
    valid_ends: np.ndarray | None = None,
    out: RewardSamples | None = None,
    on_progress: Callable[[int], None] = lambda k: None,
) -> RewardSamples:
    """n samples at random valid end points (optionally restricted to `valid_ends`).

    `out` reuses the arrays of an earlier result of the same n and lookback (fresh samples each
    epoch without allocating, and page-faulting, another n x lookback x 5 floats).
    """
    cfg = config or RewardConfig()
    chunks, fill = _plan(candles, n, lookback, forward, seed, cfg, valid_ends)
    if out is None:
        out = RewardSamples(
            np.empty((n, lookback, 5), np.float32),
            np.empty((n, 6), np.float32),
            np.empty((n, 4), np.float32),
            np.empty(n, np.float32),
            np.empty(n, np.int64),
            np.empty(n, np.int64),
        )
    elif out.windows.shape != (n, lookback, 5):
        raise DataError(f"out holds windows {out.windows.shape}; expected {(n, lookback, 5)}")

    def work(k: int) -> int:
        lo, hi = chunks[k]
        fill(k, out.windows[lo:hi], out.state[lo:hi], out.action[lo:hi], out.reward[lo:hi], out.ends[lo:hi])
        return hi - lo

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        for done in pool.map(work, range(len(chunks))):
            on_progress(done)
    out.open_time[:] = candles.open_time[out.ends]
    return out


def _plan(
    candles: Candles,
    n: int,
    lookback: int,
    forward: int,
    seed: int,
    cfg: RewardConfig,
    valid_ends: np.ndarray | None,
) -> tuple[list[tuple[int, int]], Callable[..., None]]:
    """The chunks of n samples and fill(k, windows, state, action, reward, ends) that writes chunk
    k into the arrays given (each chunk drawn from its own seed: the samples are the same whether
    they are built in memory or streamed, and whatever the number of threads)."""
    valid = sample_ends(candles, lookback, forward) if valid_ends is None else np.asarray(valid_ends, np.int64)
    if valid.size == 0:
        raise DataError(f"no bar has {lookback} bars before it and {forward} after it inside one segment")
    chunks = [(lo, min(lo + CHUNK, n)) for lo in range(0, n, CHUNK)]
    seqs = np.random.SeedSequence(seed).spawn(len(chunks))
    arrays = [
        np.ascontiguousarray(a, dtype=np.float64) for a in (candles.open, candles.high, candles.low, candles.close)
    ]
    arrays.append(np.log1p(candles.volume))
    stop_first = cfg.same_bar == "stop"
    cost = cfg.fee + cfg.slippage

    def fill(
        k: int, windows: np.ndarray, state: np.ndarray, action: np.ndarray, reward: np.ndarray, ends: np.ndarray
    ) -> None:
        lo, hi = chunks[k]
        e, st, a = _draw(np.random.default_rng(seqs[k]), hi - lo, cfg, valid)
        ends[:], state[:], action[:] = e, st, a
        _fill(*arrays, e, lookback, forward, st, a, stop_first, cost, windows, reward)

    return chunks, fill


def stream_reward_samples(
    candles: Candles,
    n: int,
    path: str | Path,
    lookback: int = 64,
    forward: int = 32,
    seed: int = 0,
    config: RewardConfig | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    on_progress: Callable[[int], None] = lambda k: None,
) -> tuple[Path, np.ndarray, np.ndarray]:
    """Build n samples and write them to .parquet, .zarr or .npz as they are made, a few chunks of
    65,536 at a time, so memory holds those chunks and not the n samples (10M samples of 64 x 5
    are 13 GB in memory); the file equals `save_samples(build_reward_samples(...))`. Returns the
    path, the rewards and the action sides (what the statistics need)."""
    from candleflow.fs.guard import check_output

    path = Path(path)
    if path.suffix not in (".npz", ".parquet", ".zarr"):
        raise DataError(f"{path}: expected a .npz, .parquet or .zarr name")
    if n < 1:
        raise DataError(f"{path}: n={n} samples; expected at least 1")
    check_output(path, overwrite)
    cfg = config or RewardConfig()
    chunks, fill = _plan(candles, n, lookback, forward, seed, cfg, None)
    threads = workers or os.cpu_count() or 1
    reward = np.empty(n, np.float32)
    side = np.empty(n, np.float32)
    with _SampleSink(path, n, lookback) as sink, ThreadPoolExecutor(max_workers=threads) as pool:
        for g in range(0, len(chunks), threads):
            group = chunks[g : g + threads]
            lo, hi = group[0][0], group[-1][1]
            buf = RewardSamples(
                np.empty((hi - lo, lookback, 5), np.float32),
                np.empty((hi - lo, 6), np.float32),
                np.empty((hi - lo, 4), np.float32),
                np.empty(hi - lo, np.float32),
                np.empty(hi - lo, np.int64),
                np.empty(hi - lo, np.int64),
            )

            def work(k: int, buf: RewardSamples = buf, lo: int = lo) -> int:
                a, b = chunks[k][0] - lo, chunks[k][1] - lo
                fill(k, buf.windows[a:b], buf.state[a:b], buf.action[a:b], buf.reward[a:b], buf.ends[a:b])
                return b - a

            for done in pool.map(work, range(g, g + len(group))):
                on_progress(done)
            buf.open_time[:] = candles.open_time[buf.ends]
            sink.write(buf, lo)
            reward[lo:hi], side[lo:hi] = buf.reward, buf.action[:, 0]
    return path, reward, side


class _SampleSink:
    """Reward samples appended in order to a file that becomes visible complete or not at all."""

    NAMES = ("windows", "state", "action", "reward", "ends", "open_time")

    def __init__(self, path: Path, n: int, lookback: int):
        import contextlib

        self.path, self.n, self.lookback = path, n, lookback
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> _SampleSink:
        import tempfile
        import zipfile

        from candleflow.fs.atomic import atomic_dir

        suffix = self.path.suffix
        if suffix == ".zarr":
            require("zarr", "reward samples in .zarr")
            import zarr

            tmp = self._stack.enter_context(atomic_dir(self.path, replace=True))
            root = zarr.open_group(str(tmp), mode="w")
            shapes = {"windows": (self.lookback, 5), "state": (6,), "action": (4,)}
            dtypes = {"ends": "int64", "open_time": "int64"}
            self.zarr = {
                k: root.create_array(
                    k,
                    shape=(self.n, *shapes.get(k, ())),
                    dtype=dtypes.get(k, "float32"),
                    chunks=(CHUNK, *shapes.get(k, ())),
                )
                for k in self.NAMES
            }
            return self
        tmp = self._stack.enter_context(atomic_path(self.path, suffix=suffix))
        if suffix == ".parquet":
            self.parquet: pq.ParquetWriter | None = None
            self.tmp = tmp
            return self
        # npz: the windows stream into their zip member; the small arrays into scratch files beside
        self.fh = self._stack.enter_context(open(tmp, "wb"))
        self.zip = self._stack.enter_context(zipfile.ZipFile(self.fh, "w", zipfile.ZIP_STORED, allowZip64=True))
        self.member = self._stack.enter_context(self.zip.open("windows.npy", "w", force_zip64=True))
        np.lib.format.write_array_header_2_0(
            self.member, {"descr": "<f4", "fortran_order": False, "shape": (self.n, self.lookback, 5)}
        )
        scratch = Path(self._stack.enter_context(tempfile.TemporaryDirectory(dir=tmp.parent, prefix=".samples-")))
        self.scratch = {k: self._stack.enter_context(open(scratch / k, "w+b")) for k in self.NAMES[1:]}
        return self

    def write(self, buf: RewardSamples, lo: int) -> None:
        hi = lo + buf.reward.shape[0]
        suffix = self.path.suffix
        if suffix == ".zarr":
            for k in self.NAMES:
                self.zarr[k][lo:hi] = getattr(buf, k)
        elif suffix == ".parquet":
            table = samples_table(buf)
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(self.tmp, table.schema)
            self.parquet.write_table(table)  # one row group per few chunks
        else:
            self.member.write(np.ascontiguousarray(buf.windows).tobytes())
            for k, fh in self.scratch.items():
                fh.write(np.ascontiguousarray(getattr(buf, k)).tobytes())

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.path.suffix == ".parquet" and self.parquet is not None:
            self.parquet.close()  # a failed write is closed too; the temporary file then goes
        if exc_type is None and self.path.suffix == ".npz":
            self.member.close()
            shapes = {
                "state": (self.n, 6),
                "action": (self.n, 4),
                "reward": (self.n,),
                "ends": (self.n,),
                "open_time": (self.n,),
            }
            for k, fh in self.scratch.items():
                descr = "<i8" if k in ("ends", "open_time") else "<f4"
                with self.zip.open(f"{k}.npy", "w", force_zip64=True) as m:
                    np.lib.format.write_array_header_2_0(
                        m, {"descr": descr, "fortran_order": False, "shape": shapes[k]}
                    )
                    fh.seek(0)
                    while block := fh.read(1 << 24):
                        m.write(block)
        self._stack.__exit__(exc_type, exc, tb)


def samples_table(samples: RewardSamples) -> pa.Table:
    """Samples as an Arrow table: one row each, the window as a fixed-size list."""
    n, lookback, f = samples.windows.shape
    flat = pa.array(samples.windows.reshape(-1), type=pa.float32())
    cols = {
        "open_time": pa.array(samples.open_time.astype("datetime64[ns]")),
        "end": samples.ends,
        "window": pa.FixedSizeListArray.from_arrays(flat, lookback * f),
    }
    cols.update({name: samples.state[:, i] for i, name in enumerate(STATE_COLUMNS)})
    cols.update({f"action_{name}": samples.action[:, i] for i, name in enumerate(ACTION_COLUMNS)})
    cols["reward"] = samples.reward
    return pa.table(cols).replace_schema_metadata({"window_shape": f"{lookback},{f}"})


def save_samples(samples: RewardSamples, path: str | Path, overwrite: bool = False) -> Path:
    """Write samples to .npz, .zarr or .parquet (one row per sample, the window as a fixed-size list).
    An existing `path` is replaced only with `overwrite` (a folder only if candleflow wrote it)."""
    from candleflow.fs.guard import check_output

    path = Path(path)
    if path.suffix not in (".npz", ".parquet", ".zarr"):
        raise DataError(f"{path}: expected a .npz, .parquet or .zarr name")
    check_output(path, overwrite)
    if path.suffix == ".npz":
        with atomic_path(path, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(
                    fh,
                    windows=samples.windows,
                    state=samples.state,
                    action=samples.action,
                    reward=samples.reward,
                    ends=samples.ends,
                    open_time=samples.open_time,
                )
    elif path.suffix == ".parquet":
        with atomic_path(path, suffix=".parquet") as tmp:
            pq.write_table(samples_table(samples), tmp)
    elif path.suffix == ".zarr":
        require("zarr", "reward samples in .zarr")
        import zarr

        from candleflow.fs.atomic import atomic_dir

        with atomic_dir(path, replace=True) as tmp:
            root = zarr.open_group(str(tmp), mode="w")
            for name in ("windows", "state", "action", "reward", "ends", "open_time"):
                arr = getattr(samples, name)
                root.create_array(name, data=arr, chunks=(min(CHUNK, max(arr.shape[0], 1)), *arr.shape[1:]))
    else:
        raise DataError(f"{path}: expected a .npz, .parquet or .zarr name")
    return path


def load_samples(path: str | Path) -> RewardSamples:
    """Read samples written by `save_samples` (no pickle)."""
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return RewardSamples(z["windows"], z["state"], z["action"], z["reward"], z["ends"], z["open_time"])
    if path.suffix == ".zarr":
        require("zarr", "reward samples in .zarr")
        import zarr

        g = zarr.open_group(str(path), mode="r")
        arrays = [np.asarray(g[k][...]) for k in ("windows", "state", "action", "reward", "ends", "open_time")]  # type: ignore[index]
        return RewardSamples(*arrays)
    table = pq.read_table(path)
    lookback, f = map(int, table.schema.metadata[b"window_shape"].decode().split(","))
    win = table.column("window").combine_chunks().flatten().to_numpy().reshape(-1, lookback, f)
    state = np.stack([table.column(c).to_numpy() for c in STATE_COLUMNS], axis=1)
    action = np.stack([table.column(f"action_{c}").to_numpy() for c in ACTION_COLUMNS], axis=1)
    return RewardSamples(
        win,
        state,
        action,
        table.column("reward").to_numpy(),
        table.column("end").to_numpy(),
        table.column("open_time").cast(pa.int64()).to_numpy(),
    )


def reward_statistics(reward: np.ndarray, action: np.ndarray) -> dict[str, dict[str, float | int | None]]:
    """Samples, mean, standard deviation, min and max of the rewards per action side (hold, long,
    short) and for all samples; the figures are None where a side has no sample.
    `action` is the (n, k) action array whose first column is the side (0 hold, > 0 long, < 0 short)."""
    side = np.asarray(action)[:, 0]
    out: dict[str, dict[str, float | int | None]] = {}
    for name, mask in (("hold", side == 0), ("long", side > 0), ("short", side < 0), ("all", np.ones(side.size, bool))):
        x = np.asarray(reward)[mask]
        out[name] = {
            "samples": int(x.size),
            **{
                k: (float(f(x)) if x.size else None)
                for k, f in (("mean", np.mean), ("std", np.std), ("min", np.min), ("max", np.max))
            },
        }
    return out
