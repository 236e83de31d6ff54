"""TensorBoard event files written without TensorFlow (tensorboardX), read back by TensorBoard's own loader."""

import pytest

from candleflow.models.tensorboard import EventWriter


def test_events_read_by_tensorboard(tmp_path):
    ea_mod = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    w = EventWriter(tmp_path / "train")
    for step, (loss, lr) in enumerate([(1.1, 1e-3), (0.9, 5e-4), (0.8, 5e-4)]):
        w.scalars(step, {"epoch_loss": loss, "epoch_learning_rate": lr, "epoch_rss_mb": 900.0 + step})
    acc = ea_mod.EventAccumulator(str(tmp_path / "train"))
    acc.Reload()
    assert set(acc.Tags()["scalars"]) == {"epoch_loss", "epoch_learning_rate", "epoch_rss_mb"}
    loss = acc.Scalars("epoch_loss")
    assert [e.step for e in loss] == [0, 1, 2]
    assert [round(e.value, 5) for e in loss] == [1.1, 0.9, 0.8]
    assert acc.Scalars("epoch_rss_mb")[-1].value == 902.0


@pytest.mark.extended
def test_weight_histograms_and_a_profile_trace_read_back(tmp_path, tiny_config):
    """training.histogram_freq and profile_batch in a real run: TensorBoard's own loader reads a
    histogram of every weight per epoch, and the profiler trace of the chosen batch lands where
    TensorBoard's profile plugin looks (JAX; the model graph is not written: JAX builds no TF graph)."""
    import numpy as np

    import candleflow as cf

    ea_mod = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    cfg = tiny_config(
        "training.epochs=2",
        "training.histogram_freq=1",
        "training.profile_batch=2",
        "output.name=tb",
        "evaluation.reference_models=[]",
    )
    run = cf.run(cfg).run_dir
    acc = ea_mod.EventAccumulator(str(run / "tensorboard" / "train"), size_guidance={"histograms": 0})
    acc.Reload()
    tags = acc.Tags()["histograms"]
    model = cf.load_model(run)
    assert len(tags) == len(model.weights) and any("lstm" in t for t in tags)
    events = acc.Histograms(tags[0])
    assert [e.step for e in events] == [0, 1]
    h = events[-1].histogram_value
    assert h.num == float(np.prod(model.weights[0].shape)) and h.min <= h.max and sum(h.bucket) == h.num
    from candleflow.models.backend import keras

    if keras.backend.backend() == "jax":
        traces = list((run / "tensorboard" / "plugins" / "profile").rglob("*.xplane.pb"))
        assert traces and traces[0].stat().st_size > 0
