"""Resume: a run interrupted after an epoch continues to the result of an uninterrupted run."""

import json

import numpy as np
import pytest

from candleflow.config import load_config
from candleflow.errors import RegistryError
from candleflow.models.backend import keras
from candleflow.pipeline import resume, run
from conftest import TINY

# three epochs, cut after the second: the resumed run trains the third (the reference models and
# the report are not what resume is about, so they are off)
SMALL = [*TINY, "model.lstm_units=[16]", "training.epochs=3", "training.patience=2", "evaluation.reference_models=[]"]


class Interrupt(keras.callbacks.Callback):
    """Ctrl-C at the end of epoch `after` (after candleflow's own callbacks have seen it)."""

    def __init__(self, after: int):
        super().__init__()
        self.after = after

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.after:
            raise KeyboardInterrupt


def _cfg(tmp_path, name, extra=()):
    return load_config(None, SMALL + list(extra) + [f"output.runs_dir={tmp_path}", f"output.name={name}"])


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["lstm", pytest.param("gpt", marks=pytest.mark.extended)])
def test_resumed_run_matches_uninterrupted(tmp_path, kind):
    extra = (
        ["model.kind=gpt", "model.gpt_d_model=16", "model.gpt_heads=2", "model.gpt_layers=1"] if kind == "gpt" else []
    )
    full = run(_cfg(tmp_path, "full", extra))
    with pytest.raises(KeyboardInterrupt) as info:
        run(_cfg(tmp_path, "cut", extra), callbacks=[Interrupt(after=2)])
    assert "candleflow train --resume cut" in " ".join(info.value.__notes__)
    failed = tmp_path / ".cut.failed"
    assert sorted(p.name for p in (failed / "resume").iterdir()) == ["epoch-0002.json", "epoch-0002.keras"]
    state = json.loads((failed / "resume" / "epoch-0002.json").read_text())
    assert state["epochs_done"] == 2 and len(state["history"]["loss"]) == 2

    resumed = resume("cut", tmp_path)
    assert resumed.run_dir == tmp_path / "cut" and not failed.exists()
    assert not (resumed.run_dir / "resume").exists()
    assert resumed.metadata["resumed_from_epoch"] == 2
    assert resumed.metadata["epochs_run"] == full.metadata["epochs_run"]
    h_full = (full.run_dir / "history.csv").read_text().splitlines()
    h_cut = (resumed.run_dir / "history.csv").read_text().splitlines()
    assert len(h_cut) == len(h_full)
    a = np.array([[float(v) for v in line.split(",")] for line in h_full[1:]])
    b = np.array([[float(v) for v in line.split(",")] for line in h_cut[1:]])
    cols = h_full[0].split(",")
    keep = [i for i, c in enumerate(cols) if "rss" not in c and not c.startswith("input_")]  # measured, not computed
    np.testing.assert_allclose(a[:, keep], b[:, keep], rtol=1e-4, atol=1e-6)
    with np.load(full.run_dir / "predictions.npz") as f, np.load(resumed.run_dir / "predictions.npz") as g:
        np.testing.assert_allclose(f["val_probs"], g["val_probs"], atol=1e-4)
    for key in ("balanced_accuracy", "accuracy", "macro_f1"):
        assert resumed.metrics["val"]["table"]["model"][key] == pytest.approx(
            full.metrics["val"]["table"]["model"][key], abs=1e-3
        )


def test_resume_needs_a_complete_epoch(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run(_cfg(tmp_path, "early", ["training.epochs=1"]), callbacks=[_BatchInterrupt()])
    with pytest.raises(RegistryError, match="no complete epoch to resume from"):
        resume("early", tmp_path)
    with pytest.raises(RegistryError, match="no interrupted run 'nothing'"):
        resume("nothing", tmp_path)


class _BatchInterrupt(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        raise KeyboardInterrupt


@pytest.mark.extended
@pytest.mark.integration
def test_cli_train_resume_finishes_the_run(tmp_path):
    from typer.testing import CliRunner

    from candleflow.cli import app

    with pytest.raises(KeyboardInterrupt):
        run(_cfg(tmp_path, "cli", ["training.epochs=2"]), callbacks=[Interrupt(after=1)])
    refused = CliRunner().invoke(app, ["train", "--resume", "cli", "--runs-dir", str(tmp_path), "--set", "x.y=1"])
    assert refused.exit_code != 0 and (tmp_path / ".cli.failed").is_dir()
    out = CliRunner().invoke(app, ["train", "--resume", "cli", "--runs-dir", str(tmp_path)])
    assert out.exit_code == 0, out.output
    meta = json.loads((tmp_path / "cli" / "metadata.json").read_text())
    assert meta["resumed_from_epoch"] == 1 and meta["epochs_run"] == 2
    assert len((tmp_path / "cli" / "history.csv").read_text().splitlines()) == 3
