"""What both walk-forward studies (one series, a panel) share: the result, the baselines'
names, the fold files and the summary header (the bootstrap is evaluation.bootstrap)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

BASELINES = ("majority", "always_hold", "stratified")


@dataclass
class WalkForwardResult:
    """A finished study: its folder and the summary written to walkforward.json."""

    folder: Path
    summary: dict[str, Any]


def load_fold(path: Path) -> dict[str, np.ndarray]:
    """A walk-forward fold file's arrays (plain npz, no pickle)."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def study_header(
    candles: Any, splits: list[Any], seeds: list[int], ends: np.ndarray, resamples: int, block: int
) -> dict[str, Any]:
    """What every study summary opens with: the data, the folds (sizes, start dates, purges), the
    seeds, the stitched out-of-sample period and the bootstrap's settings."""
    import datetime as dt

    return {
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "symbol": candles.symbol,
        "interval": candles.interval,
        "data_fingerprint": candles.fingerprint,
        "folds": [
            {
                "fold": k + 1,
                **{part: int(pos.size) for part, pos in s.parts.items()},
                "train_from": candles.time_str(int(s.starts["train"])),
                "test_from": candles.time_str(int(s.starts["test"])),
                "purged": s.purged,
            }
            for k, s in enumerate(splits)
        ],
        "seeds": seeds,
        "stitched": {
            "windows": int(ends.size),
            "from": candles.time_str(int(ends[0])),
            "to": candles.time_str(int(ends[-1])),
        },
        "bootstrap": {"resamples": resamples, "block_windows": block, "method": "moving block"},
    }
