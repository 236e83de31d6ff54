"""The model-family registry: a family added in one registration (here a nearest-centroid model
written in this test) trains through `run`, is saved and reloaded, and `predict` reproduces its
validation probabilities; unknown families are one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import candleflow as cf
from candleflow.errors import ConfigError, RegistryError
from candleflow.models.families import Family, family, names, register, unregister
from candleflow.runs.predict import Predictor
from candleflow.runs.registry import load_model
from test_predict import _parity

FILE = "model.centroid.npz"


class Centroid:
    """Class means of the training rows; probabilities fall with the squared distance to each."""

    def __init__(self, means: np.ndarray, scale: np.ndarray, lags: list[int]):
        self.means, self.scale, self.lags = means, scale, list(lags)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, np.float64) / self.scale)[:, None, :]
        d = ((z - self.means[None]) ** 2).mean(axis=2)
        e = np.exp(-(d - d.min(axis=1, keepdims=True)))
        return e / e.sum(axis=1, keepdims=True)

    def save(self, folder: Path) -> None:
        np.savez(folder / FILE, means=self.means, scale=self.scale, lags=np.asarray(self.lags))

    def summary(self) -> str:
        return f"centroid: 3 class means over {self.means.shape[1]} inputs"

    def count_params(self) -> int:
        return int(self.means.size + self.scale.size)


def fit_centroid(model_cfg, seed, x, y, weights, x_val, y_val, lags) -> Centroid:
    scale = x.std(axis=0) + 1e-12
    means = np.stack([(x[y == k] / scale).mean(axis=0) if (y == k).any() else np.zeros(x.shape[1]) for k in range(3)])
    return Centroid(means, scale, lags)


def load_centroid(path: Path, lags: list[int]) -> Centroid:
    with np.load(path, allow_pickle=False) as z:
        return Centroid(z["means"], z["scale"], z["lags"].tolist())


@pytest.fixture
def centroid():
    fam = register(
        Family("centroid", "lagged_rows", fit=fit_centroid, load=load_centroid, model_file=FILE, layouts=("series",))
    )
    yield fam
    unregister("centroid")


@pytest.mark.integration
def test_a_family_registered_in_one_call_trains_predicts_saves_and_reloads(centroid, tiny_config):
    cfg = tiny_config("model.kind=centroid", "output.name=centroid", "evaluation.reference_models=[lightgbm]")
    result = cf.run(cfg)
    assert result.metadata["model_kind"] == "centroid" and (result.run_dir / FILE).is_file()
    val = result.metrics["val"]
    assert "model" in val["table"] and val["best_reference"] == "lightgbm" and "edge_over_reference" in val
    assert 0.2 < val["table"]["model"]["balanced_accuracy"] < 1
    model = load_model(result.run_dir)
    assert isinstance(model, Centroid) and model.lags == result.metadata["lags"]
    _parity(result, cfg)  # predict goes through the family's own prediction path
    assert Predictor.from_run(result.run_dir).family is centroid
    from candleflow.runs.bundle import export_bundle

    bundle, used = export_bundle(result.run_dir, runs_dir=cfg.output.runs_dir)
    assert used == "native" and (bundle / FILE).is_file()
    with pytest.raises(ConfigError, match=r"model.kind 'centroid' does not train on a universe"):
        centroid.check_layout("universe")


def test_unknown_families_are_one_line_errors(tmp_path, tiny_config):
    assert {"lstm", "gpt", "mlp", "cnn", "lightgbm", "linear"} <= set(names())
    assert names(tabular=True) == ["lightgbm", "linear"]
    with pytest.raises(
        ConfigError, match=r"^model.kind 'nope': expected one of cnn, gpt, lightgbm, linear, lstm, mlp$"
    ):
        family("nope")
    with pytest.raises(ConfigError, match="model.kind 'nope': expected one of"):
        cf.run(tiny_config("model.kind=nope"))
    assert not any(tmp_path.iterdir())  # refused before any folder was written
    with pytest.raises(ConfigError, match="registered already"):
        register(Family("lstm", "windows", build=lambda *a: None))


@pytest.mark.extended
@pytest.mark.integration
def test_a_run_folder_naming_an_unknown_family_is_refused(tiny_config):
    result = cf.run(tiny_config("model.kind=linear", "output.name=lin", "evaluation.reference_models=[]"))
    meta_path = result.run_dir / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["model_kind"] = "from_elsewhere"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(RegistryError, match=r"metadata.json: model.kind 'from_elsewhere': expected one of"):
        load_model(result.run_dir)
    with pytest.raises(RegistryError, match=r"metadata.json: model.kind 'from_elsewhere'"):
        Predictor.from_run(result.run_dir).family  # noqa: B018


@pytest.mark.extended
@pytest.mark.integration
def test_run_folders_that_cannot_lie(tiny_config, tmp_path):
    """A model file from another run, an edited metadata.json (an interval that is a number, lags
    beyond the window, a removed layout, a claimed family) is a one-line error naming the file
    and what differs, in load_model, predict, export and models show alike."""
    import shutil

    from candleflow.runs.bundle import export_bundle
    from candleflow.runs.registry import list_runs

    a = cf.run(tiny_config("output.name=a", "evaluation.reference_models=[]")).run_dir
    b = cf.run(tiny_config("output.name=b", "evaluation.reference_models=[]", "training.seed=7")).run_dir
    lin = cf.run(tiny_config("model.kind=linear", "output.name=lin", "evaluation.reference_models=[]")).run_dir
    meta = json.loads((a / "metadata.json").read_text())
    assert meta["model_file"]["name"] == "model.keras" and len(meta["model_file"]["sha256"]) == 64
    assert meta["output_shape"] == [3] and meta["layout"] == "series" and meta["metadata_version"] == 3

    def edited(src: Path, name: str, change) -> Path:
        dst = tmp_path / "edited" / name
        shutil.copytree(src, dst)
        m = json.loads((dst / "metadata.json").read_text())
        change(m, dst)
        (dst / "metadata.json").write_text(json.dumps(m))
        return dst

    swapped = edited(a, "swapped", lambda m, d: shutil.copy(b / "model.keras", d / "model.keras"))
    number = edited(a, "number", lambda m, d: m.update(interval=5))
    lags = edited(lin, "lags", lambda m, d: m.update(lags=[0, 500]))
    no_layout = edited(a, "no_layout", lambda m, d: m.pop("layout"))
    claimed = edited(a, "claimed", lambda m, d: m.update(model_kind="linear"))
    cases = {
        swapped: r"model.keras: does not match the sha256 recorded in metadata.json",
        number: r"metadata.json: 'interval' is 5; expected a bar interval",
        lags: r"metadata.json: 'lags' \[0, 500\] reach beyond the run's 24-bar window",
        no_layout: r"metadata.json: 'layout' is None; expected one of series, universe, panel, reward",
        claimed: r"metadata.json: 'lags' is None|model.linear.npz|no linear model file",
    }
    for folder, message in cases.items():
        with pytest.raises(RegistryError, match=message):
            load_model(folder)
        with pytest.raises(RegistryError, match=message):
            Predictor.from_run(folder)
        with pytest.raises(RegistryError, match=message):
            export_bundle(folder, runs_dir=tmp_path)
    listed = {Path(m["path"]).name: m for m in list_runs(tmp_path / "edited")}
    assert "does not match the sha256" in listed["swapped"]["damaged"]
    assert load_model(a).count_params() > 0  # the untouched run still loads


@pytest.mark.parametrize("name", ["lstm", "gpt", "mlp", "cnn", "lightgbm", "linear"])
def test_every_builtin_family_passes_the_common_checks(name):
    """Issue 38, as scikit-learn's estimator checks: what a family declares is coherent, its
    options resolve from the config, and each task it does not learn is a one-line error."""
    from candleflow.config import load_config
    from candleflow.models.families import family
    from candleflow.runs.folder import LAYOUTS

    fam = family(name)
    assert fam.name == name and set(fam.tasks) <= {"classify", "regress"} and set(fam.layouts) <= set(LAYOUTS)
    assert (fam.fit is not None and fam.load is not None) if fam.tabular else fam.build is not None
    assert fam.model_file and fam.learning_rate > 0
    for task, kind in (("classify", "competitive"), ("regress", "volatility")):
        cfg = load_config(None, [f"model.kind={name}", f"labels.kind={kind}"])
        if task in fam.tasks:
            fam.check_task(cfg)
            fam.options_of(cfg.model)
        else:
            with pytest.raises(ConfigError, match=f"model.kind '{name}' does not learn labels.kind {kind}"):
                fam.check_task(cfg)
    for layout in ("series", "universe", "panel"):
        if layout not in fam.layouts:
            with pytest.raises(ConfigError, match=f"does not train on a {layout}"):
                fam.check_layout(layout)
