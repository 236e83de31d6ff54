"""The Keras PyDataset adapter: exact batches, seeded reshuffle each epoch, sample weights."""

import numpy as np

from candleflow.dataset.sampling import class_weights
from candleflow.dataset.windows import WindowDataset
from candleflow.models.loaders import keras_loader


def dataset(n=100):
    feats = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    labels = (np.arange(n) % 3).astype(np.int8)
    return WindowDataset(feats, labels, np.arange(4, n), window=5)


def epoch_order(loader):
    return np.concatenate([loader[i][0][:, -1, 0] / 2 for i in range(len(loader))]).astype(int)


def test_batches_cover_every_window_once_in_order_without_shuffle():
    ds = dataset()
    loader = keras_loader(ds, batch_size=32)
    assert len(loader) == 3
    x, y = loader[2]
    assert x.shape == (32, 5, 2) and y.shape == (32, 3)
    assert epoch_order(loader).tolist() == list(range(4, 100))


def test_shuffle_changes_each_epoch_and_repeats_with_the_seed():
    ds = dataset()
    a, b = keras_loader(ds, 16, shuffle=True, seed=1), keras_loader(ds, 16, shuffle=True, seed=1)
    first = epoch_order(a)
    assert sorted(first) == list(range(4, 100)) and first.tolist() != list(range(4, 100))
    a.on_epoch_end()
    second = epoch_order(a)
    assert second.tolist() != first.tolist()
    assert epoch_order(b).tolist() == first.tolist()


def test_class_weights_become_sample_weights():
    y = np.array([0] * 10 + [1] * 30 + [2] * 60)
    w = class_weights(y)
    np.testing.assert_allclose(w, [100 / 30, 100 / 90, 100 / 180])
    ds = dataset()
    x, y1h, sw = keras_loader(ds, 8, weights=np.array([1.0, 2.0, 3.0]))[0]
    assert sw.tolist() == [1.0 + ds.labels_at(np.arange(8))[i] for i in range(8)]
