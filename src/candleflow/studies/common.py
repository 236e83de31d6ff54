"""What both walk-forward studies (one series, a panel) share: the result, the baselines'
names, and the moving-block bootstrap."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from candleflow.evaluation.bootstrap import block_indices, ci95

BASELINES = ("majority", "always_hold", "stratified")


@dataclass
class WalkForwardResult:
    """A finished study: its folder and the summary written to walkforward.json."""

    folder: Path
    summary: dict[str, Any]


_block_indices = block_indices  # the study modules' names for them
_ci = ci95


def load_fold(path: Path) -> dict[str, np.ndarray]:
    """A walk-forward fold file's arrays (plain npz, no pickle)."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
