"""Framework adapters: whole batches, the same windows as gather, fixed JAX shapes."""

import importlib.util

import numpy as np
import pytest

from candleflow.dataset.windows import WindowDataset
from candleflow.models.adapters import JaxBatches

HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_TF = importlib.util.find_spec("tensorflow") is not None


def _dataset(n=103):
    f = np.arange(n * 8 * 3, dtype=np.float32).reshape(n * 8, 3)
    y = (np.arange(n * 8) % 3).astype(np.int8)
    return WindowDataset(f, y, np.arange(9, 9 + n * 5, 5), window=10)


def test_jax_iterator_fixed_shapes_padded_last_batch_and_mask():
    ds = _dataset(103)
    it = JaxBatches(ds, batch_size=32, shuffle=True, seed=3, prefetch=2)
    batches = list(it)
    assert len(batches) == 4 and all(x.shape == (32, 10, 3) and m.shape == (32,) for x, _, m in batches)
    masks = np.concatenate([np.asarray(m) for _, _, m in batches])
    assert masks.sum() == 103 and not masks[-(128 - 103) :].any()
    xs = np.concatenate([np.asarray(x) for x, _, _ in batches])[masks]
    order = np.random.default_rng([3, 0]).permutation(103)
    assert np.array_equal(xs, ds.gather(order))
    ys = np.concatenate([np.asarray(y) for _, y, _ in batches])[masks]
    assert np.array_equal(ys, ds.labels_at(order))
    it.set_epoch(1)
    assert not np.array_equal(np.asarray(next(iter(it))[0]), np.asarray(batches[0][0]))


def test_jax_step_compiles_once_over_an_epoch():
    import jax
    import jax.numpy as jnp

    traces = []

    @jax.jit
    def step(x, y, m):
        traces.append(1)
        return jnp.sum(jnp.where(m, x.mean(axis=(1, 2)), 0.0))

    total = sum(float(step(*b)) for b in JaxBatches(_dataset(103), batch_size=32))
    assert len(traces) == 1
    assert total == pytest.approx(float(_dataset(103).gather(np.arange(103)).mean(axis=(1, 2)).sum()), rel=1e-5)


@pytest.mark.skipif(not HAS_TORCH, reason="torch not installed (optional)")
def test_torch_loader_fetches_whole_batches():
    from candleflow.models.adapters import torch_dataset, torch_loader

    ds = _dataset(103)
    calls = []
    tds = torch_dataset(ds)
    original = tds.__getitems__
    tds.__class__.__getitems__ = lambda self, idx: (calls.append(len(idx)), original(idx))[1]
    import torch

    loader = torch.utils.data.DataLoader(tds, batch_size=32, collate_fn=lambda items: items[0])
    batches = list(loader)
    assert calls == [32, 32, 32, 7] and batches[0][0].shape == (32, 10, 3)
    assert np.array_equal(torch.cat([b[0] for b in batches]).numpy(), ds.gather(np.arange(103)))
    xs, ys = next(iter(torch_loader(ds, 16, shuffle=True, seed=1)))
    assert xs.shape == (16, 10, 3) and ys.dtype == torch.int64


@pytest.mark.skipif(not HAS_TF, reason="tensorflow not installed (optional)")
def test_tf_dataset_batches():
    from candleflow.models.adapters import tf_dataset

    ds = _dataset(103)
    batches = list(tf_dataset(ds, 32).as_numpy_iterator())
    assert [b[0].shape[0] for b in batches] == [32, 32, 32, 7]
    assert np.array_equal(np.concatenate([b[0] for b in batches]), ds.gather(np.arange(103)))


@pytest.mark.skipif(not HAS_TF, reason="tensorflow not installed (optional)")
def test_tf_dataset_reshuffles_every_epoch_like_the_keras_loader():
    from candleflow.dataset.sampling import epoch_order
    from candleflow.models.adapters import tf_dataset

    ds = _dataset(103)
    batches = list(tf_dataset(ds, 32, shuffle=True, seed=5, repeat=3).as_numpy_iterator())
    assert len(batches) == 12  # 3 epochs of 4 batches
    for epoch in range(3):
        x = np.concatenate([b[0] for b in batches[4 * epoch : 4 * epoch + 4]])
        assert np.array_equal(x, ds.gather(epoch_order(103, True, 5, epoch)))
    first, second = (np.concatenate([b[0] for b in batches[k : k + 4]]) for k in (0, 4))
    assert not np.array_equal(first, second)
    endless = iter(tf_dataset(ds, 32, shuffle=True, seed=5, repeat=None).as_numpy_iterator())
    assert all(next(endless)[0].shape[1:] == (10, 3) for _ in range(9))  # past the end of epoch 1
