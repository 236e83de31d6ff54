"""The `candleflow` command: a thin layer over the Python API, a module per group of commands
(train.py: run, train, walkforward, tune, predict, report, compare, export; data.py: prepare,
inspect, images, rewards; download.py; cache.py; models.py), what they print (present.py;
present_signals.py for predict; present_pooled.py across assets), what they share (common.py)
and the entry point (main.py). No module here holds data, model or cache logic: each command
parses its options, calls the library and prints."""

from candleflow.cli.common import app
from candleflow.cli.main import main

__all__ = ["app", "main"]
