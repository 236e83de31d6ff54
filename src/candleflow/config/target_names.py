"""The target names the config accepts and whether each is classes or a real-valued forecast:
`labels.kind: competitive` trains classes, `labels.kind: volatility` a regression. How each target
is made and scored lives in `candleflow.dataset.targets` (the registry); this table lets the
config check, at load time, the keys that depend on the task (a regression monitors val_loss,
tunes on ic or r2), without importing it. A target registered in Python
(`candleflow.register_target`) is declared here by that call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Task = Literal["classify", "regress"]


@dataclass(frozen=True)
class TaskRules:
    """What follows from a target being classes or a real-valued forecast, decided here once:
    the config's checks, tune, walk-forward and the fit ask these rules, never `if regression`.

    - objectives: what tune and walk-forward may score it by (`tune.objective`, `--objective`);
      the first is what `auto` resolves to and the figure a fold is scored on.
    - what: the objectives in words, for one-line errors.
    - accuracy_monitor: training.monitor may watch val_accuracy.
    - class_weights: training.class_weight balanced weighs its labels.
    """

    name: Task
    objectives: tuple[str, ...]
    what: str
    accuracy_monitor: bool
    class_weights: bool

    @property
    def default_objective(self) -> str:
        return self.objectives[0]


TASK_RULES: dict[Task, TaskRules] = {
    "classify": TaskRules("classify", ("balanced_accuracy", "sharpe", "return"), "scores decisions", True, True),
    "regress": TaskRules("regress", ("r2", "ic"), "scores a regression target", False, False),
}

BUILTIN: dict[str, Task] = {
    "competitive": "classify",
    "triple_barrier": "classify",
    "fixed_horizon": "classify",
    "forward_return": "regress",
    "volatility": "regress",
}
_USER: dict[str, Task] = {}  # declared by register_target in this process


def tasks() -> dict[str, Task]:
    """Every target name this process knows, built-in and registered."""
    return {**BUILTIN, **_USER}


def task_of(name: str) -> Task:
    """classify or regress; a one-line error naming the targets that exist."""
    try:
        return tasks()[name]
    except KeyError:
        raise ValueError(f"labels.kind {name!r}: expected one of {', '.join(sorted(tasks()))}") from None


def rules_of(name: str) -> TaskRules:
    """The task rules of target `name` (a one-line error naming the targets that exist)."""
    return TASK_RULES[task_of(name)]


def declare(name: str, task: Task) -> None:
    """Declare a registered target's name and task (called by the registry)."""
    _USER[name] = task


def forget(name: str) -> None:
    """Undo `declare` (a test's registered target)."""
    _USER.pop(name, None)


__all__ = ["BUILTIN", "TASK_RULES", "Task", "TaskRules", "declare", "forget", "rules_of", "task_of", "tasks"]
