"""The pipeline learns the planted signal and nothing else: the guard against look-ahead.

With signal_strength 0, or with the training labels permuted, any edge would have to come from
the future leaking into features, labels or the split. The default-suite tests use a smaller
model on the same market and labels; the `slow` ones run the exact default config.
"""

import pytest

from candleflow.config import load_config
from candleflow.pipeline import run
from test_report import check_report_matches_metrics

# the model and its training are what the guard is about; the reference models and the report
# are not (they change no edge), so they are off
SMALL = [
    "dataset.window=48",
    "model.lstm_units=[32]",
    "model.dense_units=[16]",
    "training.epochs=3",
    "training.verbose=0",
    "evaluation.reference_models=[]",
    "output.report=false",
]


def edge(tmp_path, name, *overrides):
    cfg = load_config(None, [f"output.runs_dir={tmp_path}", f"output.name={name}", *overrides])
    result = run(cfg)
    return result.metrics["val"]["edge_balanced_accuracy"] * 100


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("learning")


@pytest.mark.integration
def test_small_model_learns_the_planted_signal(runs_dir):
    assert edge(runs_dir, "signal", *SMALL) >= 5.0


@pytest.mark.integration
def test_small_model_learns_nothing_without_signal(runs_dir):
    assert edge(runs_dir, "nosignal", *SMALL, "source.signal_strength=0") < 2.0


@pytest.mark.integration
def test_small_model_learns_nothing_from_shuffled_labels(runs_dir):
    assert edge(runs_dir, "shuffled", *SMALL, "training.shuffle_labels=true") < 2.0


@pytest.mark.slow
def test_default_run_beats_every_baseline_by_5_points(runs_dir):
    assert edge(runs_dir, "default") >= 5.0
    check_report_matches_metrics(runs_dir / "default")


@pytest.mark.slow
def test_default_run_without_signal_learns_nothing(runs_dir):
    assert edge(runs_dir, "default_nosignal", "source.signal_strength=0") < 2.0


@pytest.mark.slow
def test_default_run_with_shuffled_labels_learns_nothing(runs_dir):
    assert edge(runs_dir, "default_shuffled", "training.shuffle_labels=true") < 2.0
