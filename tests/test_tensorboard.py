"""TensorBoard event files written without TensorFlow, read back by TensorBoard's own loader."""

import pytest

from candleflow.models.tensorboard import EventWriter, crc32c


def test_crc32c_known_value():
    assert crc32c(b"123456789") == 0xE3069283  # the standard CRC-32C check value


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
