"""The run folder: its file names and how each file is written and read, in one place."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np

from candleflow.config import LAYOUTS, RunConfig, layout_rules, load_config
from candleflow.errors import ConfigError, RegistryError
from candleflow.fs.atomic import atomic_path, write_json, write_text
from candleflow.models import files
from candleflow.models.families import family

MAX_JSON_BYTES = 256 << 20  # metrics.json of a big run is a few MB


METADATA_VERSION = (
    3  # 1: before the run record (no version key; the layout implied by other keys); 2: before target_task
)


def upgrade_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """A run's metadata in the current schema: folders written before `metadata_version` get the
    layout their other keys imply (a reward task, a panel's tickers, a universe's series), a
    reward run's model_kind, and the target's task (classify or regress) where version 2 implied it
    by writing `target` for regressions only."""
    if not isinstance(meta, dict) or meta.get("metadata_version", 1) >= METADATA_VERSION:
        return meta
    out = dict(meta)
    if "layout" not in out:  # version 1 wrote no layout: the only place one is read from the keys
        if out.get("task") == "reward":
            out["layout"] = "reward"
        elif "tickers" in out:
            out["layout"] = "panel"
        elif "series" in out:
            out["layout"] = "universe"
        else:
            out["layout"] = "series"
    rules = layout_rules(out["layout"]) if out["layout"] in LAYOUTS else None
    if rules is not None and not rules.family:  # a reward network: no registered family
        out.setdefault("model_kind", "reward")
    if "target_task" not in out and (rules is None or rules.family):  # version 2 wrote `target` for regressions only
        out["target_task"] = "regress" if "target" in out else "classify"
    out["metadata_version"] = METADATA_VERSION
    return out


class RunFolder:
    """One run's folder (complete, or the hidden `.NAME.tmp` / `.NAME.failed` it is assembled in).
    Every module that reads or writes a run file goes through here, so the names live once."""

    CONFIG = "config.yaml"
    DATA = "data.json"
    MODEL = files.KERAS_MODEL
    SUMMARY = files.SUMMARY
    METADATA = "metadata.json"
    HISTORY = files.HISTORY
    METRICS = "metrics.json"
    PREDICTIONS = "predictions.npz"
    REPORT = "report.html"
    REPORT_DATA = "report_data.npz"  # what the report draws, stored at run time (no source re-read)
    TENSORBOARD = files.TENSORBOARD
    LOG = "run.log"
    STARTED = "started.json"
    RESUME = files.RESUME
    CHECKPOINT = files.CHECKPOINT
    GBM = files.GBM_MODEL
    LINEAR = files.LINEAR_MODEL
    # what a complete run folder must hold: these, and one of the model files
    REQUIRED = (METADATA, METRICS, CONFIG)
    MODELS = (MODEL, GBM, LINEAR)

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def missing(self) -> list[str]:
        """The required files this folder lacks (empty for a complete run)."""
        missing = [f for f in self.REQUIRED if not (self.path / f).is_file()]
        if self.model_file() is None:
            missing.append(" or ".join(self._model_names()))
        return missing

    def model_file(self) -> Path | None:
        """The run's saved model (its family's file: .keras, LightGBM text, linear .npz, ...), or None."""
        return next((self.path / f for f in self._model_names() if (self.path / f).is_file()), None)

    def _model_names(self) -> tuple[str, ...]:
        """The family's model file where the metadata names a registered family, else every
        built-in family's file name."""
        try:
            kind = json.loads((self.path / self.METADATA).read_text(encoding="utf-8")).get("model_kind")
            return (family(kind).model_file,) if isinstance(kind, str) else self.MODELS
        except (OSError, ValueError, AttributeError, ConfigError):
            return self.MODELS

    # -- writing (each file atomically) ---------------------------------------------------
    def write_config(self, cfg: RunConfig) -> None:
        write_text(self.path / self.CONFIG, cfg.to_yaml())

    def write_started(self, started: dt.datetime) -> None:
        write_json(self.path / self.STARTED, {"created": started.isoformat(timespec="seconds")})

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        write_json(self.path / self.METRICS, metrics)

    def write_data(self, data: dict[str, Any]) -> None:
        write_json(self.path / self.DATA, data)

    def write_metadata(self, metadata: dict[str, Any]) -> None:
        write_json(self.path / self.METADATA, metadata)

    def write_predictions(self, parts: dict[str, dict[str, np.ndarray]]) -> None:
        """Window ends, true labels and probabilities per period, as plain npz (no pickle)."""
        self._write_parts(self.PREDICTIONS, parts)

    def write_report_data(self, parts: dict[str, dict[str, np.ndarray]]) -> None:
        """The curves and example windows the report draws, per period (plain npz)."""
        self._write_parts(self.REPORT_DATA, parts)

    def _write_parts(self, name: str, parts: dict[str, dict[str, np.ndarray]]) -> None:
        arrays = {f"{part}_{k}": v for part, d in parts.items() for k, v in d.items()}
        with atomic_path(self.path / name, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool

    # -- reading ----------------------------------------------------------------------------
    def _json(self, name: str) -> Any:
        path = self.path / name
        try:
            if path.stat().st_size > MAX_JSON_BYTES:
                raise RegistryError(f"{path}: {path.stat().st_size:,} bytes; a run's JSON files are far smaller")
            value = json.loads(path.read_text())
        except FileNotFoundError:
            raise RegistryError(f"{path}: missing; is {self.path} a complete run folder?") from None
        except OSError as exc:
            raise RegistryError(f"{path}: unreadable ({exc.strerror or exc})") from None
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise RegistryError(f"{path}: not valid JSON ({str(exc)[:120]}); the run folder is damaged") from None
        if not isinstance(value, dict):
            raise RegistryError(
                f"{path}: expected a JSON object, got {type(value).__name__}; the run folder is damaged"
            )
        return value

    def config(self) -> RunConfig:
        return load_config(self.path / self.CONFIG)

    def config_text(self) -> str:
        return (self.path / self.CONFIG).read_text()

    def started(self) -> dt.datetime:
        try:
            return dt.datetime.fromisoformat(self._json(self.STARTED)["created"])
        except (KeyError, TypeError, ValueError):
            raise RegistryError(
                f"{self.path / self.STARTED}: no valid 'created' time; the run folder is damaged"
            ) from None

    def metrics(self) -> dict[str, Any]:
        return self._json(self.METRICS)

    def data(self) -> dict[str, Any]:
        return self._json(self.DATA)

    def metadata(self) -> dict[str, Any]:
        """metadata.json in the current schema (older folders upgraded as they are read)."""
        return upgrade_metadata(self._json(self.METADATA))

    def predictions(self) -> dict[str, dict[str, np.ndarray]]:
        """The arrays `write_predictions` wrote, by period and name (loaded without pickle)."""
        return self._read_parts(self.PREDICTIONS)

    def report_data(self) -> dict[str, dict[str, np.ndarray]] | None:
        """The arrays `write_report_data` wrote, or None for a run folder written before it existed."""
        return self._read_parts(self.REPORT_DATA) if (self.path / self.REPORT_DATA).is_file() else None

    def _read_parts(self, name: str) -> dict[str, dict[str, np.ndarray]]:
        with np.load(self.path / name, allow_pickle=False) as z:
            out: dict[str, dict[str, np.ndarray]] = {}
            for key in z.files:
                part, name = key.split("_", 1)
                out.setdefault(part, {})[name] = z[key]
        return out
