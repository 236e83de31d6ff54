"""`candleflow inspect`: the original design's generator validation as one report: shapes,
dtypes, class balance per split, NaN/inf and one-hot checks on real batches, and memory in use
against what materialised windows would take."""

from __future__ import annotations

from typing import Any

import numpy as np
import psutil

from candleflow.dataset.labels import has_label
from candleflow.dataset.task_arrays import task_arrays

MB = 2**20


LEAK_MB = 100  # resident memory growth over the tested batches above this is an alert
SLOW_MS = 50  # a mean batch slower than this (gather + one-hot) rates the generator "slow"


def test_generator(prep, batches: int = 5, batch_size: int = 256, seed: int = 0) -> dict[str, Any]:
    """The design's generator self-test: `batches` shuffled batches of each split part, as training
    draws them (gather + one-hot), each checked for shape, dtype, NaN/inf and one-hot labels;
    resident memory measured before and after (growth above LEAK_MB is an alert), the time per
    batch, and a rating: failing (a check failed), leaking, slow (mean batch above SLOW_MS) or good."""
    import time

    ds, split, arrays = prep.dataset, prep.split, task_arrays(prep.config.labels.kind)
    rng = np.random.default_rng(seed)
    problems: list[str] = []
    parts: dict[str, Any] = {}
    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    seconds, drawn = 0.0, 0
    for name, pos in split.parts.items():
        order = rng.permutation(pos)
        checked = 0
        for b in range(batches):
            idx = order[b * batch_size : (b + 1) * batch_size]
            if idx.size == 0:
                break
            t0 = time.perf_counter()
            x = ds.gather(idx)
            y = arrays.encode(ds.labels_at(idx))
            seconds += time.perf_counter() - t0
            drawn += 1
            checked += 1
            if x.shape != (idx.size, *ds.shape[1:]) or x.dtype != np.float32:
                problems.append(
                    f"{name} batch {b}: x {x.shape} {x.dtype}, expected ({idx.size}, {ds.window}, {ds.shape[2]}) float32"
                )
            if not np.isfinite(x).all():
                problems.append(f"{name} batch {b}: {int((~np.isfinite(x)).sum())} NaN/inf values")
            wrong = arrays.problem(y, idx.size)
            if wrong is not None:
                problems.append(f"{name} batch {b}: {wrong}")
        parts[name] = {"batches": checked}
    growth = (proc.memory_info().rss - rss0) / MB
    mean_ms = 1000 * seconds / max(drawn, 1)
    if problems:
        rating = "failing"
    elif growth > LEAK_MB:
        rating = "leaking"
    elif mean_ms > SLOW_MS:
        rating = "slow"
    else:
        rating = "good"
    if growth > LEAK_MB:
        problems.append(f"resident memory grew {growth:.0f} MB over {drawn} batches (alert above {LEAK_MB} MB)")
    return {
        "batches": drawn,
        "batch_size": batch_size,
        "parts": parts,
        "rss_growth_mb": round(growth, 1),
        "mean_batch_ms": round(mean_ms, 2),
        "rating": rating,
        "problems": problems,
    }


def inspect_dataset(prep, batch_size: int = 256, batches: int = 0) -> dict[str, Any]:
    """Checks over a `PreparedData` (from `pipeline.prepare`); `problems` lists what failed, empty
    when all passed. With `batches`, also the generator self-test (`test_generator`) over that many
    batches per part, under "generator"."""
    ds, split = prep.dataset, prep.split
    problems: list[str] = []
    parts = {}
    arrays = task_arrays(prep.config.labels.kind)
    for name, pos in split.parts.items():
        y = ds.labels_at(pos)
        parts[name] = {"windows": int(pos.size), "purged": split.purged.get(name, 0), **arrays.shares(y)}
        if pos.size == 0:
            problems.append(f"split part {name!r} has no windows")
            continue
        missing = int((~has_label(y)).sum())
        if missing:
            problems.append(f"{name}: {missing} windows without a label")
        first = pos[:batch_size]
        x = ds.gather(first)
        out = arrays.encode(ds.labels_at(first))
        parts[name]["batch"] = {"x": f"{tuple(x.shape)} {x.dtype}", "y": f"{tuple(out.shape)} {out.dtype}"}
        if x.dtype != np.float32 or x.shape[1:] != ds.shape[1:]:
            problems.append(f"{name}: batch {x.shape} {x.dtype}, expected (B, {ds.window}, {ds.shape[2]}) float32")
        wrong = arrays.problem(out, first.size)
        if wrong is not None:
            problems.append(f"{name}: {wrong}")
    covered = ds.covered_rows()
    bad_rows = int((~np.isfinite(np.asarray(ds.features[covered]))).any(axis=1).sum()) if covered.size else 0
    if bad_rows:
        problems.append(f"{bad_rows} feature rows inside windows hold NaN or inf")
    for a, b in zip(list(split.parts), list(split.parts)[1:]):
        pa = split.parts[a]
        if pa.size and (prep.labels.t1[ds.ends[pa]] + prep.config.dataset.embargo >= split.starts[b]).any():
            problems.append(f"a {a} label reaches the {b} period (look-ahead)")
    feats = ds.features
    generator = test_generator(prep, batches, batch_size) if batches > 0 else None
    if generator is not None:
        problems += generator["problems"]
    return {
        "windows": len(ds),
        "window_shape": list(ds.shape[1:]),
        "sample_rate": ds.rate,
        "features": {
            "shape": list(feats.shape),
            "dtype": str(feats.dtype),
            "names": prep.features.names,
            "memory_mapped": isinstance(feats, np.memmap),
            "mb": round(feats.nbytes / MB, 2),
        },
        "labels": {
            "kind": prep.config.labels.kind,
            "task": prep.config.labels.rules.name,
            "dtype": str(prep.labels.y.dtype),
            **prep.labels.counts(),
        },
        "nonfinite_rows_in_windows": bad_rows,
        "split": parts,
        "memory": {
            "resident_mb": round(psutil.Process().memory_info().rss / MB, 1),
            "features_mb": round(feats.nbytes / MB, 2),
            "materialised_windows_mb": round(ds.materialised_nbytes() / MB, 1),
            "saving": f"{ds.materialised_nbytes() / max(feats.nbytes, 1):.0f}x",
        },
        **({"generator": generator} if generator is not None else {}),
        **({"generator": generator} if generator is not None else {}),
        "problems": problems,
    }
