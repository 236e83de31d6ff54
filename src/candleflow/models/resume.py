"""Where an interrupted fit's resume points are, read without Keras: `run`, `resume` and the
pipeline ask whether a run can continue before any network library loads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from candleflow.models import files

RESUME_DIR = files.RESUME


def latest_resume_state(run_dir: Path) -> dict[str, Any] | None:
    """The newest complete resume point in run_dir/resume (its JSON is written last, so a JSON
    whose model file exists marks a complete one), or None."""
    folder = Path(run_dir) / RESUME_DIR
    for state_path in sorted(folder.glob("epoch-*.json"), reverse=True):
        model_path = state_path.with_suffix(".keras")
        if model_path.is_file():
            state = json.loads(state_path.read_text())
            state["model_path"] = str(model_path)
            return state
    return None


__all__ = ["RESUME_DIR", "latest_resume_state"]
