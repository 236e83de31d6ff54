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
