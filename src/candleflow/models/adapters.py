"""Framework adapters over a WindowDataset, each assembling whole batches with one gather (no
per-sample Python): a PyTorch Dataset with `__getitems__` and a batch sampler, a tf.data
pipeline over batch indices, and a JAX iterator with device prefetch and fixed batch shapes.
Keras has its own (`candleflow.models.loaders.keras_loader`). torch and tensorflow are optional."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from typing import Any

import numpy as np

from candleflow.dataset.labels import one_hot
from candleflow.dataset.sampling import epoch_order
from candleflow.dataset.windows import WindowDataset


def torch_dataset(dataset: WindowDataset, labels: np.ndarray | None = None):
    """A `torch.utils.data.Dataset` whose `__getitems__` (used by DataLoader when batch_size is set)
    returns a whole batch (x float32 (B, W, F), y int64 class) from one gather."""
    import torch

    y_all = (dataset.labels_at() if labels is None else np.asarray(labels)).astype(np.int64)

    class WindowTorchDataset(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(dataset)

        def __getitem__(self, i: int):
            return torch.from_numpy(dataset.gather(np.array([i]))[0]), int(y_all[i])

        def __getitems__(self, idx: list[int]):
            rows = np.asarray(idx)
            return [(torch.from_numpy(dataset.gather(rows)), torch.from_numpy(y_all[rows]))]

    return WindowTorchDataset()


def torch_loader(
    dataset: WindowDataset,
    batch_size: int = 256,
    shuffle: bool = False,
    seed: int = 0,
    labels: np.ndarray | None = None,
    **kwargs,
):
    """A DataLoader yielding (x, y) batches assembled by `__getitems__`; `kwargs` go to DataLoader
    (num_workers, pin_memory, ...)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    sampler = torch.utils.data.RandomSampler(range(len(dataset)), generator=gen) if shuffle else None
    return torch.utils.data.DataLoader(
        torch_dataset(dataset, labels),
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=lambda items: items[0],
        **kwargs,
    )


def tf_dataset(
    dataset: WindowDataset,
    batch_size: int = 256,
    shuffle: bool = False,
    seed: int = 0,
    labels: np.ndarray | None = None,
    prefetch: int = 2,
    repeat: int | None = 1,
):
    """A `tf.data.Dataset` of (x (B, W, F) float32, one-hot y) batches: the pipeline maps over batch
    numbers and each step gathers a whole batch (tf.numpy_function), never one sample at a time.
    `repeat` epochs (None: endless), epoch k in the order permutation(default_rng([seed, k])), the
    same as the Keras loader's, so every epoch reshuffles."""
    import threading

    import tensorflow as tf

    y_all = dataset.labels_at() if labels is None else np.asarray(labels)
    n, (w, f) = len(dataset), dataset.shape[1:]
    steps = -(-n // batch_size)
    orders: dict[int, np.ndarray] = {}
    lock = threading.Lock()

    def order_of(epoch: int) -> np.ndarray:
        with lock:  # batches of two epochs may be in flight at once; keep the newest few orders
            if epoch not in orders:
                orders[epoch] = epoch_order(n, shuffle, seed, epoch)
                for old in [e for e in orders if e < epoch - 1]:
                    del orders[old]
            return orders[epoch]

    def batch(k):
        epoch, i = divmod(int(k), steps)
        idx = order_of(epoch)[i * batch_size : (i + 1) * batch_size]
        y = y_all[idx]
        return dataset.gather(idx), (
            y.astype(np.float32)[:, None] if np.issubdtype(y.dtype, np.floating) else one_hot(y)
        )

    counter = tf.data.Dataset.counter() if repeat is None else tf.data.Dataset.range(steps * repeat)
    ds = counter.map(
        lambda k: tf.numpy_function(batch, [k], (tf.float32, tf.float32)), num_parallel_calls=tf.data.AUTOTUNE
    )
    ds = ds.map(lambda x, y: (tf.ensure_shape(x, (None, w, f)), tf.ensure_shape(y, (None, 3))))
    return ds.prefetch(prefetch)


class JaxBatches:
    """Iterate (x, y, mask) batches as JAX device arrays with `prefetch` batches in flight
    (double buffering by default): the next batch is gathered and transferred while the current
    one trains. Every batch has the same shape; the last is padded and `mask` marks real rows, so
    a jitted step compiles once. `set_epoch(k)` reshuffles from (seed, k)."""

    def __init__(
        self,
        dataset: WindowDataset,
        batch_size: int = 256,
        shuffle: bool = False,
        seed: int = 0,
        labels: np.ndarray | None = None,
        prefetch: int = 2,
        device: Any = None,
    ) -> None:
        self.dataset, self.batch_size, self.shuffle, self.seed = dataset, batch_size, shuffle, seed
        self.y = (dataset.labels_at() if labels is None else np.asarray(labels)).astype(np.int32)
        self.prefetch, self.device, self.epoch = max(1, prefetch), device, 0

    def __len__(self) -> int:
        return -(-len(self.dataset) // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _host_batch(self, order: np.ndarray, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        idx = order[i * self.batch_size : (i + 1) * self.batch_size]
        real = idx.size
        if real < self.batch_size:  # pad with the first window; the mask hides it
            idx = np.concatenate([idx, np.full(self.batch_size - real, idx[0] if real else 0)])
        mask = np.zeros(self.batch_size, dtype=bool)
        mask[:real] = True
        return self.dataset.gather(idx), self.y[idx], mask

    def __iter__(self) -> Iterator[tuple[Any, Any, Any]]:
        import jax

        device = self.device or jax.devices()[0]
        order = epoch_order(len(self.dataset), self.shuffle, self.seed, self.epoch)
        queue: collections.deque = collections.deque()
        for i in range(len(self)):
            queue.append(jax.device_put(self._host_batch(order, i), device))  # asynchronous transfer
            if len(queue) > self.prefetch:
                yield queue.popleft()
        while queue:
            yield queue.popleft()
