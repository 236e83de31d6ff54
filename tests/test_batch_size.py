"""dataset.batch_size auto: the largest batch the memory prediction fits, at least 8 steps an
epoch, and one back-off when the first step still runs out of memory."""

from __future__ import annotations

import logging

import pytest

from candleflow.models.backend import keras
from candleflow.models.memory import auto_batch_size, suggest_batch_size


def small_model():
    from candleflow.config import ModelConfig
    from candleflow.models.networks import build_lstm

    return build_lstm(ModelConfig(lstm_units=[8], dense_units=[8]), 24, 8, [0.0] * 8, [1.0] * 8)


def test_auto_batch_is_the_largest_that_fits_with_enough_steps(monkeypatch):
    import candleflow.models.memory as memory

    model = small_model()
    monkeypatch.setattr(memory, "available_memory_mb", lambda: (1000.0, "test RAM"))
    fits = suggest_batch_size(model, 1000.0, 0.5)
    bs, why = auto_batch_size(model, 10**7, 0.5)
    assert bs == fits and f"fits 50% of 1,000 MB test RAM is {fits}" in why
    few, why_few = auto_batch_size(model, 1000, 0.5)  # 1000 windows: at most 125 a batch -> 64
    assert few == 64 and "so an epoch of 1,000 windows has at least 8 steps" in why_few
    tight, _ = auto_batch_size(model, 10**7, 0.05)
    assert tight < fits


class OutOfMemoryOnce(keras.callbacks.Callback):
    """Raises MemoryError at the first training batch it sees, once: what an allocation failure
    in the first step looks like to the training loop."""

    def __init__(self):
        super().__init__()
        self.raised = False

    def on_train_batch_begin(self, batch, logs=None):
        if not self.raised:
            self.raised = True
            raise MemoryError("simulated: the first step ran out of memory")


@pytest.mark.integration
def test_a_run_with_auto_batch_backs_off_once_after_running_out_of_memory(tiny_config, caplog):
    import candleflow as cf

    cfg = tiny_config("dataset.batch_size=auto", "output.name=auto", "evaluation.reference_models=[]")
    oom = OutOfMemoryOnce()
    with caplog.at_level(logging.INFO, logger="candleflow"):
        result = cf.run(cfg, callbacks=[oom])
    bs = result.metadata["batch_size"]
    assert oom.raised and isinstance(bs, int) and bs >= 1
    assert "dataset.batch_size auto: batch size" in caplog.text
    assert f"out of memory at batch {2 * bs} (MemoryError); backing off once to {bs}" in caplog.text
    fixed = tiny_config("output.name=fixed", "evaluation.reference_models=[]")
    with pytest.raises(MemoryError):  # a fixed batch size is the user's choice: no silent change
        cf.run(fixed, callbacks=[OutOfMemoryOnce()])


def test_batch_size_from_measured_step_time():
    """Larger batches while the time per sample falls by more than 5%; a forced-slow larger step
    (or a plateau) stops the search and keeps the smaller batch."""
    from candleflow.models.memory import choose_batch_size

    falling = {64: 1.0, 128: 0.6, 256: 0.58, 512: 0.3}  # 256 gains under 5% over 128: the search stops there
    bs, trials = choose_batch_size([64, 128, 256, 512], falling.__getitem__)
    assert bs == 128 and [t["batch_size"] for t in trials] == [64, 128, 256]
    assert trials[1]["ms_per_sample"] == 600.0
    slow = {64: 1.0, 128: 2.0, 256: 0.1}  # the larger step forced slow: the first candidate stays
    assert choose_batch_size([64, 128, 256], slow.__getitem__)[0] == 64
    steady = {32: 2.0, 64: 1.0, 128: 0.5, 256: 0.25}
    assert choose_batch_size([32, 64, 128, 256], steady.__getitem__) == (
        256,
        [{"batch_size": b, "ms_per_sample": 1000 * steady[b]} for b in (32, 64, 128, 256)],
    )


@pytest.mark.extended
def test_an_auto_run_probes_step_times_and_logs_its_choice(tiny_config, caplog):
    """In a run: the step-time probe logs each candidate's time per sample and the batch kept, and
    the run records the batch it trained with (fix dataset.batch_size to it to repeat the run)."""
    import candleflow as cf

    cfg = tiny_config("dataset.batch_size=auto", "output.name=probe", "evaluation.reference_models=[]")
    with caplog.at_level(logging.INFO, logger="candleflow"):
        result = cf.run(cfg)
    line = next(r.getMessage() for r in caplog.records if "step time per sample" in r.getMessage())
    chosen = result.metadata["batch_size"]
    assert f"; batch {chosen} (the fastest per sample" in line and " ms" in line


@pytest.mark.integration
@pytest.mark.extended
def test_an_auto_batch_shrinks_when_memory_climbs_past_the_limit(tiny_config, caplog):
    """A 1 MB limit is passed in the first epoch: every later epoch runs at half the batch of the
    one before, the log says when and why, and the fit still runs every epoch to the end."""
    import candleflow as cf

    cfg = tiny_config(
        "dataset.batch_size=auto",
        "dataset.batch_probe=false",
        "training.memory_limit_mb=1",
        "training.epochs=3",
        "training.patience=5",
        "output.name=watched",
        "evaluation.reference_models=[]",
    )
    with caplog.at_level(logging.INFO, logger="candleflow"):
        result = cf.run(cfg)
    shrinks = result.metadata["batch_shrinks"]
    assert [s["epoch"] for s in shrinks] == [1, 2]  # the last epoch needs no smaller batch after it
    first = shrinks[0]["batch_from"]
    assert [(s["batch_from"], s["batch_to"]) for s in shrinks] == [(first, first // 2), (first // 2, first // 4)]
    assert result.metadata["batch_size"] == first // 4 and result.metadata["epochs_run"] == 3
    assert result.metadata["resumed_from_epoch"] == 0
    assert "resident memory reached" in caplog.text and "past the limit of 1 MB" in caplog.text
    assert f"batch {first} -> {first // 2} from epoch 2" in caplog.text
    history = (result.run_dir / "history.csv").read_text().splitlines()
    assert len(history) == 4  # a header and one row per epoch, none lost or repeated
    fixed = cf.run(tiny_config("training.memory_limit_mb=1", "output.name=fixed", "evaluation.reference_models=[]"))
    assert fixed.metadata["batch_shrinks"] == []  # a fixed batch size is the user's choice: never changed
