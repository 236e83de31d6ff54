"""Run folders as a model registry: list them, show one, load its model safely."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from candleflow.config import LAYOUT_RULES
from candleflow.errors import ConfigError, RegistryError
from candleflow.models.families import Family, family, save_network
from candleflow.models.files import REFIT_DIR
from candleflow.runs.folder import RunFolder


def save_model(model, run_dir: str | Path, kind: str | None = None) -> None:
    """Write the model and its summary into a run folder, atomically, in its family's own format
    (`model.keras` for networks; `kind` names a tabular family's text or array file)."""
    if kind is None:
        save_network(model, run_dir)
    else:
        family(kind).save(model, run_dir)


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
            check_run(path, meta)
        except RegistryError as exc:  # listed as damaged: one bad folder must not hide the others
            meta = {"damaged": str(exc)}
        meta["path"] = str(path)
        out.append(meta)
    out.sort(key=lambda m: str(m.get("created", "")))
    return out


def load_model(
    run: str | Path, runs_dir: str | Path = "runs", input_shape: tuple[int, ...] | None = None, which: str = "auto"
):
    """The run's model: model.keras loaded with safe_mode=True, or the LightGBM / linear model
    from its own file format (no pickle). Checks the input shape against the run's metadata (and
    against `input_shape` when given). `which`: `validated` (the model the run's metrics
    describe), `refit` (the production model trained on every labelled window, `training.refit`)
    or `auto` (the refit one where the run has it)."""
    path = resolve_run(run, runs_dir)
    meta = read_metadata(path)
    fam = family_of(path, meta)
    check_run(path, meta)
    if which not in ("auto", "validated", "refit"):
        raise RegistryError(f"model {which!r}: expected auto, validated or refit")
    refit = meta.get("refit")
    if which == "refit" and not isinstance(refit, dict):
        raise RegistryError(f"{path}: no refit model (the run was trained without training.refit)")
    if which != "validated" and isinstance(refit, dict):
        model = _load_refit(path, meta, fam, refit)
        where = f"{path / REFIT_DIR}"
    elif fam.tabular:
        return fam.load_from(path, _lags(meta))
    else:
        model, where = fam.load_from(path), str(path)
    if fam.tabular or fam is REWARD_NETWORK:  # reward: windows, state and action (three inputs)
        return model
    got = tuple(model.input_shape[1:])
    want = tuple(meta.get("input_shape", got))
    if got != want:
        raise RegistryError(f"{where}: model input shape {got} does not match the run's metadata {want}")
    out = tuple(model.output_shape[1:])
    if "output_shape" in meta and out != tuple(meta["output_shape"]):
        raise RegistryError(
            f"{where}: model output shape {out} does not match the run's metadata {tuple(meta['output_shape'])}"
        )
    if input_shape is not None and tuple(input_shape) != got:
        raise RegistryError(f"{path}: model expects windows of shape {got}, got {tuple(input_shape)}")
    return model


# the reward task's network: saved and loaded like the Keras families, never a `model.kind`
REWARD_NETWORK = Family("reward", "windows", build=lambda *a, **k: None, layouts=("reward",), tasks=("reward",))


def _load_refit(path: Path, meta: dict[str, Any], fam: Any, refit: dict[str, Any]):
    """The refit model, from the one file the family loads (`refit/<its model file>`), after that
    very file's digest matched the one metadata.json recorded for it: a metadata.json naming
    another file (a decoy with a matching digest) is refused, never a reason to load an unchecked
    one."""
    from candleflow.fs.digest import sha256_file

    recorded = refit.get("model_file") or {}
    name = str(recorded.get("name", ""))
    expected = f"{REFIT_DIR}/{fam.model_file}"
    if name != expected:
        raise RegistryError(
            f"{path / RunFolder.METADATA}: its refit model file is {name[:60]!r}; a {fam.name} run's is {expected!r}"
        )
    file = path / expected
    if not file.is_file():
        raise RegistryError(f"{path / RunFolder.METADATA}: its refit model file {name!r} is not in the folder")
    if sha256_file(file) != recorded.get("sha256"):
        raise RegistryError(f"{file}: does not match the sha256 recorded in metadata.json; refusing to use it")
    if fam.tabular:
        return fam.load_from(file.parent, _lags(meta))
    return fam.load_from(file.parent)


def family_of(path: Path, meta: dict[str, Any]):
    """The family a run's metadata names, or a one-line error naming the file (an unknown or
    missing `model_kind` is a damaged or foreign run folder, never a guess). A reward run's model
    is the reward network, a Keras model outside the classifier families."""
    rules = LAYOUT_RULES.get(str(meta.get("layout")))
    if rules is not None and not rules.family:
        return REWARD_NETWORK
    kind = meta.get("model_kind")
    if not isinstance(kind, str):
        raise RegistryError(f"{path / RunFolder.METADATA}: 'model_kind' is {str(kind)[:40]}; expected a family name")
    try:
        return family(kind)
    except ConfigError as exc:
        raise RegistryError(f"{path / RunFolder.METADATA}: {exc}") from None


def check_run(path: Path, meta: dict[str, Any]) -> None:
    """What a run folder's metadata claims, checked against the folder before its model is used:
    the layout, the bar interval's type, the lags against the window, the feature width against
    the model's input, and the model file against the digest the run recorded (a model copied in
    from another run, or an edited metadata.json, is a one-line error naming what differs)."""
    from candleflow.fs.digest import binding, sha256_file

    where = path / RunFolder.METADATA
    layout = meta.get("layout")
    if layout not in LAYOUT_RULES:
        raise RegistryError(f"{where}: 'layout' is {str(layout)[:40]}; expected one of {', '.join(LAYOUT_RULES)}")
    rules = LAYOUT_RULES[layout]
    if rules.family == (meta.get("task") == "reward"):
        raise RegistryError(
            f"{where}: 'layout' is {layout!r} and 'task' {str(meta.get('task'))[:40]!r}; a reward model's run has "
            "both 'reward', every other run neither"
        )
    interval = meta.get("interval")
    ok = isinstance(interval, str) or (
        rules.pooled and isinstance(interval, list) and all(isinstance(i, str) for i in interval)
    )
    if interval is not None and not ok:
        raise RegistryError(f"{where}: 'interval' is {str(interval)[:40]}; expected a bar interval such as '1h'")
    shape = meta.get("input_shape")
    if rules.family and not rules.side_by_side and isinstance(shape, list) and shape:  # one series' windows
        if "lags" in meta:
            lags = _lags(meta)
            window = RunFolder(path).config().dataset.window
            if max(lags, default=0) >= window:
                raise RegistryError(f"{where}: 'lags' {lags} reach beyond the run's {window}-bar window")
        elif (
            family_of(path, meta).inputs == "windows"
            and isinstance(meta.get("feature_names"), list)
            and shape[-1] != len(meta["feature_names"])
        ):
            raise RegistryError(
                f"{where}: input_shape {shape} reads {shape[-1]} features; feature_names lists {len(meta['feature_names'])}"
            )
    recorded = meta.get("model_file")
    if isinstance(recorded, dict):
        name = str(recorded.get("name", ""))
        loads = family_of(path, meta).model_file  # the file the model is loaded from: the one hashed
        if name != loads:
            raise RegistryError(
                f"{where}: its model file is {name[:60]!r}; a {meta.get('model_kind')} run's is {loads!r}"
            )
        file = path / name
        if not file.is_file():
            raise RegistryError(f"{where}: its model file {name!r} is not in the folder")
        digest = sha256_file(file)
        if digest != recorded.get("sha256"):
            raise RegistryError(
                f"{file}: does not match the sha256 recorded in metadata.json (a model from another run, or "
                "an edited folder); refusing to use it"
            )
        if "binding" in recorded and binding(digest, meta.get("feature_names")) != recorded["binding"]:
            raise RegistryError(
                f"{where}: feature_names {str(meta.get('feature_names'))[:120]} are not the features, in the order, "
                "its model was trained on (an edited folder); refusing to use it"
            )


def _lags(meta: dict[str, Any]) -> list[int]:
    lags = meta.get("lags")
    if not isinstance(lags, list) or not all(isinstance(v, int) and v >= 0 for v in lags):
        raise RegistryError(f"metadata.json: 'lags' is {str(lags)[:60]}; expected a list of bar offsets")
    return lags
