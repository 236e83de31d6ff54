"""What a target's task (classify or regress) means for its arrays, decided here once: how a
batch's targets are given to a model (one-hot classes, or the real value), what makes a batch's
targets valid, how a part's targets are summarised, and whether its labels race a take-profit
whose cost is reported. `prepare`, `inspect` and the data summaries ask `task_arrays(kind)`;
none tests the task."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from candleflow.config.target_names import Task, task_of
from candleflow.dataset.labels import CLASS_NAMES, one_hot


@dataclass(frozen=True)
class TaskArrays:
    """One task's arrays.

    - encode: a batch's targets as the model reads them.
    - problem: what is wrong with an encoded batch of n targets, in words (None: valid).
    - summary: a part's targets in data.json: class counts, or the target's moments.
    - shares: with the class shares too (inspect's balance; a regression's moments alone).
    - barriers: its labels race a take-profit: the prepared summary reports the barriers' cost
      against the round trip, and a take-profit that cannot pay it is warned of.
    """

    name: Task
    encode: Callable[[np.ndarray], np.ndarray]
    problem: Callable[[np.ndarray, int], str | None]
    summary: Callable[[np.ndarray], dict[str, Any]]
    shares: Callable[[np.ndarray], dict[str, Any]]
    barriers: bool


def _class_counts(y: np.ndarray) -> dict[str, Any]:
    return {"classes": {c: int((y == k).sum()) for k, c in enumerate(CLASS_NAMES)}}


def _class_shares(y: np.ndarray) -> dict[str, Any]:
    counts = np.bincount(y[y >= 0], minlength=3)
    return {
        "classes": {c: int(counts[k]) for k, c in enumerate(CLASS_NAMES)},
        "class_share": {c: round(float(counts[k] / max(counts.sum(), 1)), 4) for k, c in enumerate(CLASS_NAMES)},
    }


def _one_hot_problem(y: np.ndarray, n: int) -> str | None:
    if y.shape != (n, 3) or not np.all((y == 0) | (y == 1)) or not np.all(y.sum(axis=1) == 1):
        return f"labels are not one-hot ({y.shape})"
    return None


def _moments(y: np.ndarray) -> dict[str, Any]:
    """A regression target's mean, standard deviation and quartiles (its finite values)."""
    finite = y[np.isfinite(y)]
    if finite.size == 0:
        return {"target": {}}
    q = np.percentile(finite, [25, 50, 75])
    return {
        "target": {
            "mean": round(float(finite.mean()), 6),
            "std": round(float(finite.std()), 6),
            "p25": round(float(q[0]), 6),
            "median": round(float(q[1]), 6),
            "p75": round(float(q[2]), 6),
        }
    }


def _finite_problem(y: np.ndarray, n: int) -> str | None:
    if y.shape != (n,) or not np.isfinite(y).all():
        return f"targets {y.shape} are not all finite"
    return None


TASK_ARRAYS: dict[Task, TaskArrays] = {
    "classify": TaskArrays("classify", one_hot, _one_hot_problem, _class_counts, _class_shares, barriers=True),
    "regress": TaskArrays("regress", lambda y: y, _finite_problem, _moments, _moments, barriers=False),
}


def task_arrays(kind: str) -> TaskArrays:
    """The arrays of target `kind`'s task (`labels.kind`, built-in or registered)."""
    return TASK_ARRAYS[task_of(kind)]


__all__ = ["TASK_ARRAYS", "TaskArrays", "task_arrays"]
