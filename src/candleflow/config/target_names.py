"""The target names the config accepts and whether each is classes or a real-valued forecast:
`labels.kind: competitive` trains classes, `labels.kind: volatility` a regression. How each target
is made and scored lives in `candleflow.dataset.targets` (the registry); this table lets the
config check, at load time, the keys that depend on the task (a regression monitors val_loss,
tunes on ic or r2), without importing it. A target registered in Python
(`candleflow.register_target`) is declared here by that call."""

from __future__ import annotations

from typing import Literal

Task = Literal["classify", "regress"]

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


def declare(name: str, task: Task) -> None:
    """Declare a registered target's name and task (called by the registry)."""
    _USER[name] = task


def forget(name: str) -> None:
    """Undo `declare` (a test's registered target)."""
    _USER.pop(name, None)


__all__ = ["BUILTIN", "Task", "declare", "forget", "task_of", "tasks"]
