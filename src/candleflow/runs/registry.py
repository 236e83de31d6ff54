"""Run folders as a model registry: list them, show one, load its model safely."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from candleflow.errors import RegistryError
from candleflow.fs.atomic import atomic_path, write_text
from candleflow.models.backend import keras
from candleflow.models.networks import CausalSelfAttention, PositionEmbedding, TimeDense
from candleflow.models.panel_model import MaskedSparseCrossEntropy
from candleflow.models.tabular import TABULAR_KINDS
from candleflow.runs.folder import RunFolder

# candleflow's own layers that a saved model may name (registered; listed here for load_model)
CUSTOM_OBJECTS = {
    "candleflow>PositionEmbedding": PositionEmbedding,
    "candleflow>CausalSelfAttention": CausalSelfAttention,
    "candleflow>TimeDense": TimeDense,
    "candleflow>MaskedSparseCrossEntropy": MaskedSparseCrossEntropy,
}


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


def load_model_file(path: str | Path, allow_legacy_h5: bool = False):
    """A model from a `.keras` file (safe_mode: no code in the archive runs) or, only with
    `allow_legacy_h5`, a legacy `.h5` file, which Keras loads without safe_mode's protection."""
    path = Path(path)
    if not path.is_file():
        raise RegistryError(f"{path}: no such model file")
    if path.suffix.lower() in (".h5", ".hdf5"):
        if not allow_legacy_h5:
            raise RegistryError(
                f"{path}: legacy .h5 model refused (h5 loading ignores safe_mode and can run code "
                f"stored in the file); pass --allow-legacy-h5 if you trust it, then re-save as .keras"
            )
    elif path.suffix.lower() != ".keras":
        raise RegistryError(f"{path}: expected a .keras model file (or .h5 with --allow-legacy-h5)")
    if path.suffix.lower() == ".keras" and not zipfile.is_zipfile(path):
        raise RegistryError(f"{path}: not a .keras model (a .keras file is a ZIP archive); damaged or not a model")
    try:
        return keras.saving.load_model(path, safe_mode=True, custom_objects=CUSTOM_OBJECTS)
    except Exception as exc:  # keras raises many types for a damaged file
        raise RegistryError(f"{path}: cannot load ({type(exc).__name__}: {exc})") from None
