"""Run folders as a model registry: list them, show one, load its model safely."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from candleflow.errors import RegistryError
from candleflow.fs.atomic import atomic_path, write_text
from candleflow.models.loading import load_model_file
from candleflow.models.tabular import TABULAR_KINDS
from candleflow.runs.folder import RunFolder


def save_model(model, run_dir: str | Path) -> None:
    """Write the model's summary and the model itself into a run folder, atomically: `model.keras`
    for the Keras families, LightGBM's text model or the linear model's .npz for the tabular ones."""
    run_dir = Path(run_dir)
    if getattr(model, "kind", None) in TABULAR_KINDS:
        write_text(run_dir / RunFolder.SUMMARY, model.summary() + "\n")
        model.save(run_dir)
        return
    lines: list[str] = []
    model.summary(print_fn=lambda line, *a, **kw: lines.append(line))
    write_text(run_dir / RunFolder.SUMMARY, "\n".join(lines) + "\n")
    with atomic_path(run_dir / RunFolder.MODEL, suffix=".keras") as tmp:
        model.save(tmp)
    (run_dir / RunFolder.CHECKPOINT).unlink(missing_ok=True)  # model.keras holds the best weights


def resolve_run(ref: str | Path, runs_dir: str | Path = "runs") -> Path:
    """A run folder from a path, a folder name inside runs_dir, or 'latest'."""
    runs_dir = Path(runs_dir)
    if str(ref) == "latest":
        runs = list_runs(runs_dir)
        if not runs:
            raise RegistryError(f"{runs_dir}: no complete runs yet; start one with `candleflow run`")
        return Path(runs[-1]["path"])
    path = Path(ref)
    if not path.is_dir():
        path = runs_dir / str(ref)
    if not path.is_dir():
        raise RegistryError(f"run {str(ref)!r} not found (looked for a folder of that name and in {runs_dir}/)")
    missing = RunFolder(path).missing()
    if missing:
        raise RegistryError(f"{path}: not a complete run folder; missing {', '.join(missing)}")
    return path


def read_metadata(run_dir: str | Path) -> dict[str, Any]:
    """metadata.json of a run folder."""
    return RunFolder(run_dir).metadata()


def list_runs(runs_dir: str | Path = "runs") -> list[dict[str, Any]]:
    """Complete runs (all required files present), oldest first; half-written folders are skipped."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    out = []
    for path in sorted(runs_dir.iterdir()):
        if path.name.startswith(".") or not path.is_dir():
            continue
        if RunFolder(path).missing():
            continue
        try:
            meta = read_metadata(path)
        except RegistryError as exc:  # listed as damaged: one bad folder must not hide the others
            meta = {"damaged": str(exc)}
        meta["path"] = str(path)
        out.append(meta)
    out.sort(key=lambda m: str(m.get("created", "")))
    return out


def load_model(run: str | Path, runs_dir: str | Path = "runs", input_shape: tuple[int, ...] | None = None):
    """The run's model: model.keras loaded with safe_mode=True, or the LightGBM / linear model
    from its own file format (no pickle). Checks the input shape against the run's metadata (and
    against `input_shape` when given)."""
    from candleflow.models.tabular import load_tabular

    path = resolve_run(run, runs_dir)
    meta = read_metadata(path)
    if meta.get("model_kind") in TABULAR_KINDS:
        tabular = load_tabular(path, _lags(meta))
        if tabular is None:
            raise RegistryError(f"{path}: no {meta['model_kind']} model file in the run folder")
        return tabular
    model = load_model_file(path / RunFolder.MODEL)
    got = tuple(model.input_shape[1:])
    want = tuple(meta.get("input_shape", got))
    if got != want:
        raise RegistryError(f"{path}: model input shape {got} does not match the run's metadata {want}")
    if input_shape is not None and tuple(input_shape) != got:
        raise RegistryError(f"{path}: model expects windows of shape {got}, got {tuple(input_shape)}")
    return model


def _lags(meta: dict[str, Any]) -> list[int]:
    lags = meta.get("lags")
    if not isinstance(lags, list) or not all(isinstance(v, int) and v >= 0 for v in lags):
        raise RegistryError(f"metadata.json: 'lags' is {str(lags)[:60]}; expected a list of bar offsets")
    return lags
