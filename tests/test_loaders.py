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


def test_prefetch_gives_the_same_batches_in_the_same_order():
    """A background thread makes the next batches; every epoch's batches equal those made on
    demand, across reshuffles (stale prefetched batches of the old order are dropped). How much
    waiting it saves is measured in benchmarks/bench_training.py, not asserted here."""
    from candleflow.models.loaders import batch_loader

    def make(idx):
        return idx.astype(np.float32)[:, None], idx % 3

    plain = batch_loader(103, make, 10, shuffle=True, seed=5)
    ahead = batch_loader(103, make, 10, shuffle=True, seed=5, prefetch=3)
    ahead[0]
    assert sorted(ahead._ahead) == [1, 2, 3]  # the next three batches are on their way
    ahead.set_epoch(0)
    for _ in range(3):  # epochs: the order reshuffles each time
        for i in range(len(plain)):
            a, b = plain[i], ahead[i]
            assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        plain.on_epoch_end()
        ahead.on_epoch_end()
    assert not ahead._ahead
