"""The data layer in one table: batch assembly against memcpy, a per-sample generator and a
per-item PyTorch DataLoader; peak memory of a 12M-row epoch; label throughput.

    python benchmarks/bench_datasets.py             # torch rows are skipped when torch is absent
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

B, W, F = 256, 120, 8


def best(call, repeat: int = 20) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return min(times)


def _numba_gather(ds, idx: np.ndarray) -> np.ndarray:
    """The alternative issue 19 asked to try: each window's rows (one contiguous block) copied in a
    numba prange loop."""
    global _BLOCKS
    if _BLOCKS is None:
        import numba

        @numba.njit(parallel=True, nogil=True, cache=True)
        def blocks(features, starts, out):
            for b in numba.prange(starts.shape[0]):
                out[b] = features[starts[b] : starts[b] + out.shape[1]]

        _BLOCKS = blocks
    out = np.empty((len(idx), ds.window, ds.features.shape[1]), np.float32)
    _BLOCKS(ds.features, (ds.ends[idx] - ds.span + 1).astype(np.int64), out)
    return out


_BLOCKS = None


def assembly() -> list[tuple[str, float]]:
    from candleflow.dataset.windows import WindowDataset

    n = 1_000_000
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((n, F), dtype=np.float32)
    ds = WindowDataset(feats, np.zeros(n, np.int8), np.arange(W - 1, n), W)
    idx = [np.sort(rng.choice(len(ds), B, replace=False)) for _ in range(64)]
    nbytes = B * W * F * 4
    src = rng.standard_normal(nbytes // 4, dtype=np.float32)
    dst = np.empty_like(src)
    k = iter(range(10**9))
    rows = [
        ("plain memcpy of the same bytes (np.copyto)", best(lambda: np.copyto(dst, src), 200)),
        ("candleflow gather (one fancy-index copy)", best(lambda: ds.gather(idx[next(k) % 64]), 200)),
        ("parallel numba block copy (measured, not adopted)", best(lambda: _numba_gather(ds, idx[next(k) % 64]), 200)),
        (
            "per-sample generator (view, then np.stack)",
            best(lambda: np.stack([ds.window_view(i) for i in idx[next(k) % 64]]), 20),
        ),
    ]
    try:
        import torch

        from candleflow.models.adapters import torch_dataset

        class PerItem(torch.utils.data.Dataset):
            def __len__(self):
                return len(ds)

            def __getitem__(self, i):
                e = ds.ends[i]
                return torch.from_numpy(np.ascontiguousarray(feats[e - W + 1 : e + 1])), 0

        per_item = torch.utils.data.DataLoader(PerItem(), batch_size=B, sampler=idx[0].tolist())
        rows.append(("PyTorch per-item Dataset + DataLoader", best(lambda: next(iter(per_item)), 10)))
        batched = torch.utils.data.DataLoader(
            torch_dataset(ds), batch_size=B, sampler=idx[0].tolist(), collate_fn=lambda items: items[0]
        )
        rows.append(("candleflow torch_dataset (__getitems__)", best(lambda: next(iter(batched)), 50)))
    except ImportError:
        rows.append(("PyTorch per-item Dataset + DataLoader (torch not installed)", float("nan")))
    return [(name, nbytes / sec / 1e9) for name, sec in rows]


def epoch_memory_child(rows: int, on_disk: str) -> dict:
    import psutil

    from candleflow.dataset.windows import WindowDataset
    from candleflow.models.backend import keras
    from candleflow.models.loaders import keras_loader

    assert keras.__version__  # imported; the runtime's own memory is not the dataset's: measure from after the import
    proc = psutil.Process()
    base = proc.memory_info().rss
    feats = (
        np.lib.format.open_memmap(on_disk, mode="w+", dtype=np.float32, shape=(rows, F))
        if on_disk
        else np.empty((rows, F), np.float32)
    )
    for lo in range(0, rows, 1 << 20):
        feats[lo : lo + (1 << 20)] = np.random.default_rng(lo).standard_normal((min(1 << 20, rows - lo), F), np.float32)
    if on_disk:  # written and dropped: the epoch reads it back through a fresh read-only map
        feats.flush()
        del feats
        feats = np.load(on_disk, mmap_mode="r")
        base = proc.memory_info().rss
    labels = (np.arange(rows) % 3).astype(np.int8)
    ds = WindowDataset(feats, labels, np.arange(W - 1, rows), W)
    loader = keras_loader(ds, B, shuffle=True, seed=0)
    peak = proc.memory_info().rss
    t = time.perf_counter()
    for i in range(len(loader)):
        loader[i]
        if i % 512 == 0:
            peak = max(peak, proc.memory_info().rss)
    peak = max(peak, proc.memory_info().rss)
    return {
        "peak_mb": (peak - base) / 2**20,
        "features_mb": feats.nbytes / 2**20,
        "seconds": time.perf_counter() - t,
        "windows": len(ds),
        "materialised_gb": ds.materialised_nbytes() / 1e9,
    }


def main() -> None:
    print(f"batch assembly, {B} x {W} x {F} float32 ({B * W * F * 4 / 2**20:.2f} MB), best of many")
    rows = assembly()
    memcpy = rows[0][1]
    gather = rows[1][1]
    print(f"  {'method':56s} {'GB/s':>8s} {'vs memcpy':>10s} {'candleflow is':>14s}")
    for name, gbs in rows:
        print(f"  {name:56s} {gbs:8.2f} {gbs / memcpy:9.2f}x {gather / gbs:13.1f}x")
    print("\none epoch over 12M rows x 8 features (every window, batches of 256, shuffled)")
    for where in ("", str(Path("/tmp") / "candleflow-bench-12m.npy")):
        out = subprocess.run([sys.executable, __file__, "--child", where], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        goal = 1.3 * r["features_mb"] + 64
        print(
            f"  features {'memory-mapped from disk' if where else 'in memory':24s}: peak +{r['peak_mb']:.0f} MB "
            f"(features {r['features_mb']:.0f} MB; goal < {goal:.0f} MB); materialised windows would need "
            f"{r['materialised_gb']:.1f} GB; {r['windows']:,} windows in {r['seconds']:.0f} s"
        )
        if where:
            Path(where).unlink(missing_ok=True)
    print("\nlabels (competitive, horizon 60), the same table as benchmarks/bench_labels.py:")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_labels

    sys.argv = [sys.argv[0]]
    bench_labels.main()


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(epoch_memory_child(12_000_000, sys.argv[2])))
    elif len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(epoch_memory_child(12_000_000, "")))
    else:
        main()
