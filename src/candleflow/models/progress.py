"""How often long work says where it is when no terminal shows a bar (a log file, CI, nohup, a
notebook's captured output): one interval for the epochs, the boosting rounds and the CLI's
bars, well inside the 30 s a reader should ever wait for a line."""

from __future__ import annotations

import logging

PROGRESS_SECONDS = 20.0  # at least one progress line this often while work runs
progress_log = logging.getLogger("candleflow.progress")  # the console and the run log

__all__ = ["PROGRESS_SECONDS", "progress_log"]
