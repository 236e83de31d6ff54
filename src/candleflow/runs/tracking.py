"""Experiment tracking where teams keep it: a finished run or study logged to MLflow as well
(`output.tracking_uri`, the `tracking` extra; off by default). The run folder stays the record:
tracking copies its config as params, its numeric figures as metrics, its tags and notes, and its
files as artifacts. A tracking server that fails is a warning: the run is already saved."""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any

from candleflow.config import flatten_keys
from candleflow.errors import ConfigError

log = logging.getLogger("candleflow")
PARAM_VALUE_CHARS = 500  # MLflow keeps longer values, but a param is for filtering, not storage
_KEY = re.compile(r"[^0-9A-Za-z_\-./ ]")


def numeric_leaves(tree: Any, prefix: str = "") -> dict[str, float]:
    """Every finite number in a nested metrics mapping, under its dotted path (lists by index)."""
    out: dict[str, float] = {}
    if isinstance(tree, dict):
        for k, v in tree.items():
            out.update(numeric_leaves(v, f"{prefix}{k}."))
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree[:50]):  # a long list (trades, reliability bins) is for the files
            out.update(numeric_leaves(v, f"{prefix}{i}."))
    elif isinstance(tree, (int, float)) and not isinstance(tree, bool) and math.isfinite(tree):
        out[_KEY.sub("_", prefix.rstrip("."))[:250]] = float(tree)
    return out


def check_tracking(cfg: Any) -> None:
    """A one-line error before any work when `output.tracking_uri` is set and MLflow is missing."""
    if cfg.output.tracking_uri:
        import importlib.util

        if importlib.util.find_spec("mlflow") is None:
            raise ConfigError(
                f"output.tracking_uri {cfg.output.tracking_uri}: MLflow is not installed "
                "(pip install 'candleflow[tracking]')"
            )


def artifact_root(uri: str) -> str | None:
    """Where a new experiment keeps its files: beside a SQLite store's database (MLflow's default,
    ./mlruns of whatever folder the command ran in, would scatter them), else the server's own."""
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).expanduser().resolve().parent / "mlartifacts").as_uri()
    return None


REACH_SECONDS = 5.0  # a tracking server that does not answer its health check within this is down


def _unreachable(uri: str) -> str:
    """Why an http(s) tracking server cannot be used ('' when it answers, or for other stores):
    one health check with a bounded timeout, so a server that is down costs seconds, not the
    minutes of MLflow's own retries."""
    if not uri.startswith(("http://", "https://")):
        return ""
    import httpx

    try:
        httpx.get(uri.rstrip("/") + "/health", timeout=REACH_SECONDS)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc or 'no answer'} (within {REACH_SECONDS:g} s)"
    return ""


def track(
    cfg: Any, name: str, metrics: dict[str, Any], files: list[Path], kind: str = "run", model_dir: Path | None = None
) -> str | None:
    """Log one finished run or study to MLflow when `output.tracking_uri` is set; returns the MLflow
    run id (None when tracking is off or failed, with a warning saying why). With `model_dir` (a
    finished run folder), its model is logged too, in its flavour with a signature
    (`runs.mlflow_model`)."""
    out = cfg.output
    if not out.tracking_uri:
        return None
    try:
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ConfigError("output.tracking_uri: MLflow is not installed (pip install 'candleflow[tracking]')") from None
    unreachable = _unreachable(out.tracking_uri)
    if unreachable:
        log.warning(
            "MLflow tracking at %s failed: %s; the run folder is complete (nothing was logged)",
            out.tracking_uri,
            unreachable,
        )
        return None
    try:
        client = MlflowClient(tracking_uri=out.tracking_uri)
        experiment = client.get_experiment_by_name(out.tracking_experiment)
        exp_id = (
            experiment.experiment_id
            if experiment
            else client.create_experiment(out.tracking_experiment, artifact_location=artifact_root(out.tracking_uri))
        )
        tags = {"candleflow.kind": kind, "candleflow.name": name, **{f"tag.{t}": "1" for t in out.tags}}
        if out.notes:
            tags["mlflow.note.content"] = out.notes
        run = client.create_run(exp_id, run_name=name, tags=tags)
        run_id = run.info.run_id
        params = [Param(k, str(v)[:PARAM_VALUE_CHARS]) for k, v in flatten_keys(cfg.model_dump(mode="json")).items()]
        figures = [Metric(k, v, 0, 0) for k, v in numeric_leaves(metrics).items()]
        for i in range(0, len(params), 100):
            client.log_batch(run_id, params=params[i : i + 100])
        for i in range(0, len(figures), 500):
            client.log_batch(run_id, metrics=figures[i : i + 500])
        client.log_batch(run_id, tags=[RunTag("candleflow.tags", ",".join(out.tags))])
        for path in files:
            if Path(path).is_file():
                client.log_artifact(run_id, str(path))
        if model_dir is not None:
            _log_model(out.tracking_uri, run_id, Path(model_dir))
        client.set_terminated(run_id)
    except Exception as exc:  # the run is saved; a tracking server that fails must not undo it
        first = (str(exc).splitlines() or [""])[0][:200]
        log.warning(
            "MLflow tracking at %s failed (%s: %s); the run folder is complete",
            out.tracking_uri,
            type(exc).__name__,
            first,
        )
        return None
    log.info(
        "MLflow: %s logged as run %s in experiment %r at %s", name, run_id, out.tracking_experiment, out.tracking_uri
    )
    return str(run_id)


def _log_model(uri: str, run_id: str, model_dir: Path) -> None:
    """The run's model into its MLflow run; a failure here is a warning of its own, and the
    params, metrics and files already logged stay."""
    from candleflow.runs.mlflow_model import log_run_model

    try:
        log_run_model(uri, run_id, model_dir)
    except Exception as exc:  # the run and its other records are logged; the model is the extra
        first = (str(exc).splitlines() or [""])[0][:200]
        log.warning("MLflow: the model of %s was not logged (%s: %s)", model_dir.name, type(exc).__name__, first)


__all__ = ["check_tracking", "numeric_leaves", "track"]
