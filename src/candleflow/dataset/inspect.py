"""`candleflow inspect`: the original design's generator validation as one report: shapes,
dtypes, class balance per split, NaN/inf and one-hot checks on real batches, and memory in use
against what materialised windows would take."""

from __future__ import annotations

from typing import Any

import numpy as np
import psutil

from candleflow.dataset.labels import CLASS_NAMES, one_hot

MB = 2**20


def inspect_dataset(prep, batch_size: int = 256) -> dict[str, Any]:
    """Checks over a `PreparedData` (from `pipeline.prepare`); `problems` lists what failed, empty when all passed."""
    ds, split = prep.dataset, prep.split
    problems: list[str] = []
    parts = {}
    for name, pos in split.parts.items():
        y = ds.labels_at(pos)
        counts = np.bincount(y[y >= 0], minlength=3)
        parts[name] = {
            "windows": int(pos.size),
            "purged": split.purged.get(name, 0),
            "classes": {c: int(counts[k]) for k, c in enumerate(CLASS_NAMES)},
            "class_share": {c: round(float(counts[k] / max(counts.sum(), 1)), 4) for k, c in enumerate(CLASS_NAMES)},
        }
        if pos.size == 0:
            problems.append(f"split part {name!r} has no windows")
            continue
        if (y < 0).any():
            problems.append(f"{name}: {(y < 0).sum()} windows without a label")
        first = pos[:batch_size]
        x = ds.gather(first)
        oh = one_hot(ds.labels_at(first))
        parts[name]["batch"] = {"x": f"{tuple(x.shape)} {x.dtype}", "y": f"{tuple(oh.shape)} {oh.dtype}"}
        if x.dtype != np.float32 or x.shape[1:] != ds.shape[1:]:
            problems.append(f"{name}: batch {x.shape} {x.dtype}, expected (B, {ds.window}, {ds.shape[2]}) float32")
        if not np.all((oh == 0) | (oh == 1)) or not np.all(oh.sum(axis=1) == 1):
            problems.append(f"{name}: labels are not one-hot")
    covered = ds.covered_rows()
    bad_rows = int((~np.isfinite(np.asarray(ds.features[covered]))).any(axis=1).sum()) if covered.size else 0
    if bad_rows:
        problems.append(f"{bad_rows} feature rows inside windows hold NaN or inf")
    for a, b in zip(list(split.parts), list(split.parts)[1:]):
        pa = split.parts[a]
        if pa.size and (prep.labels.t1[ds.ends[pa]] + prep.config.dataset.embargo >= split.starts[b]).any():
            problems.append(f"a {a} label reaches the {b} period (look-ahead)")
    feats = ds.features
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
        "labels": {"kind": prep.config.labels.kind, "dtype": str(prep.labels.y.dtype), **prep.labels.counts()},
        "nonfinite_rows_in_windows": bad_rows,
        "split": parts,
        "memory": {
            "resident_mb": round(psutil.Process().memory_info().rss / MB, 1),
            "features_mb": round(feats.nbytes / MB, 2),
            "materialised_windows_mb": round(ds.materialised_nbytes() / MB, 1),
            "saving": f"{ds.materialised_nbytes() / max(feats.nbytes, 1):.0f}x",
        },
        "problems": problems,
    }
