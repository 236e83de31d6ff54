"""What the walk-forward studies (one series, a panel, a pooled universe) share: the result, the
baselines' names, the fold files, the rule that continues only the same study, and the summary
header (the bootstrap is evaluation.bootstrap)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from candleflow.config import RunConfig, flatten_keys
from candleflow.dataset.prepare import PreparedData
from candleflow.dataset.split import Split
from candleflow.errors import ConfigError
from candleflow.fs.atomic import atomic_path

BASELINES = ("majority", "always_hold", "stratified")
RESULT = "walkforward.json"  # a study's summary, in its folder
STUDY = "study.json"  # the settings the fold files were made with


@dataclass(frozen=True)
class WalkForwardResult:
    """A finished study: its folder and the summary written to walkforward.json."""

    folder: Path
    summary: dict[str, Any]


@dataclass(frozen=True)
class SeriesFolds:
    """A series study's folds as its summary reads them: the config and prepared data, the
    splits, the study folder holding the fold files, the families and seeds trained, the
    bootstrap resamples, whether the folds roll, and the objective the study was read under."""

    cfg: RunConfig
    prep: PreparedData
    splits: list[Split]
    folder: Path
    families: list[str]
    seed_list: list[int]
    resamples: int
    rolling: bool
    objective: str | None


def save_fold(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """A walk-forward fold file, written under a temporary name and renamed (plain npz)."""
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool


def continue_only_the_same_study(folder: Path, setup: dict[str, Any], name: str = "study.json") -> None:
    """A study folder is continued only with the config and folds it was started with: fold files
    of another split must never be stitched into this one. Writes nothing (the caller writes
    `setup` once it is known to be the same or new)."""
    path = folder / name
    if not path.is_file():
        if (folder / "folds").is_dir() and any((folder / "folds").iterdir()):
            raise ConfigError(f"{folder}: fold files without a {name}; give the study another --name")
        return
    try:
        before = json.loads(path.read_text())
    except (OSError, ValueError):
        raise ConfigError(f"{path}: unreadable; give the study another --name") from None
    if before != setup:
        keys = [k for k in ("folds", "rolling", "val_fraction") if before.get(k) != setup.get(k)]
        if not keys:
            old, new = flatten_keys(before.get("config", {})), flatten_keys(setup["config"])
            keys = [k for k in new if old.get(k) != new[k]][:1] or ["config"]
        raise ConfigError(
            f"{folder} was started with another {keys[0]}; continue it with the same settings or give "
            "the study another --name"
        )


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
