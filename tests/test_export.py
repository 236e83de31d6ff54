"""Export for serving and safe model loading: .keras in safe_mode, legacy .h5 only when asked."""

import importlib.util
import json
import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from candleflow.cli import app
from candleflow.config import ModelConfig
from candleflow.errors import RegistryError
from candleflow.models.export import export_model, load_stablehlo
from candleflow.models.loading import load_model_file
from candleflow.models.networks import build_gpt, build_lstm

CFG = ModelConfig(lstm_units=[8], dense_units=[8], gpt_d_model=16, gpt_heads=2, gpt_layers=1)
X = np.random.default_rng(0).normal(size=(7, 16, 8)).astype("float32")


@pytest.mark.parametrize("builder", [build_lstm, build_gpt])
def test_stablehlo_export_serves_the_same_probabilities_at_any_batch(tmp_path, builder):
    model = builder(CFG, 16, 8, np.arange(8) / 10, np.ones(8) * 2)
    out = export_model(model, tmp_path / "served", "stablehlo", {"classes": ["SHORT", "HOLD", "LONG"]})
    info = json.loads((out / "serving.json").read_text())
    assert info["input_shape"] == [None, 16, 8] and info["classes"] == ["SHORT", "HOLD", "LONG"]
    serve = load_stablehlo(out / "model.stablehlo")
    np.testing.assert_allclose(serve(X), model.predict(X, verbose=0), atol=1e-6)
    np.testing.assert_allclose(serve(X[:2]), model.predict(X[:2], verbose=0), atol=1e-6)
    with pytest.raises(FileExistsError):
        export_model(model, out)


def test_formats_without_their_package_fail_in_one_line(tmp_path):
    model = build_lstm(CFG, 16, 8, np.zeros(8), np.ones(8))
    with pytest.raises(ValueError, match="expected one of stablehlo"):
        export_model(model, tmp_path / "x", "pt2")
    if importlib.util.find_spec("tensorflow") is None:
        with pytest.raises(
            RegistryError, match="export format tf_saved_model needs tensorflow: pip install tensorflow"
        ):
            export_model(model, tmp_path / "tf", "tf_saved_model")
        assert not (tmp_path / "tf").exists()


def test_legacy_h5_refused_unless_allowed(tmp_path):
    model = build_lstm(CFG, 16, 8, np.zeros(8), np.ones(8))
    h5 = tmp_path / "old.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(h5)
    with pytest.raises(RegistryError, match=r"old\.h5: legacy \.h5 model refused .*--allow-legacy-h5"):
        load_model_file(h5)
    loaded = load_model_file(h5, allow_legacy_h5=True)
    np.testing.assert_allclose(loaded.predict(X, verbose=0), model.predict(X, verbose=0), atol=1e-6)
    runner = CliRunner()
    refused = runner.invoke(app, ["export", str(h5), "--out", str(tmp_path / "e1")])
    assert refused.exit_code != 0 and not (tmp_path / "e1").exists()
    ok = runner.invoke(app, ["export", str(h5), "--out", str(tmp_path / "e2"), "--allow-legacy-h5"])
    assert ok.exit_code == 0, ok.output
    np.testing.assert_allclose(
        load_stablehlo(tmp_path / "e2" / "model.stablehlo")(X), model.predict(X, verbose=0), atol=1e-6
    )
    keras_file = tmp_path / "m.keras"
    model.save(keras_file)
    assert load_model_file(keras_file).count_params() == model.count_params()
    with pytest.raises(RegistryError, match="expected a .keras model file"):
        load_model_file(_touch(tmp_path / "m.bin"))


def _touch(path):
    path.write_bytes(b"x")
    return path
