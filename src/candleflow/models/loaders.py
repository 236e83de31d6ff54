"""Keras adapters: one seeded, reshuffling PyDataset over any batch function, and the window,
image and label adapters built on it. Batches are gathered or rendered whole, never per sample."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from candleflow.dataset.labels import one_hot
from candleflow.dataset.sampling import balanced_indices, epoch_order
from candleflow.dataset.windows import Windows
from candleflow.errors import DataError
from candleflow.models.backend import keras


class BatchPyDataset(keras.utils.PyDataset):
    """A `keras.utils.PyDataset` of make_batch(indices) over n items. With shuffle, epoch k visits
    them in the order permutation(default_rng([seed, k])), so runs with one seed see the same
    batches; `order(epoch)` replaces that (e.g. balanced_indices). With `multiple_of` m > 1 (data
    parallel over m devices) every batch is padded to a multiple of m by `pad_batch`.

    With `prefetch` p > 0 a background thread makes the next p batches while the model trains on
    this one (a bounded queue: at most p batches ahead); the batches and their order are exactly
    those without it. `busy` counts the seconds spent making batches, `waited` the seconds the
    training loop actually waited for one."""

    def __init__(
        self,
        n: int,
        make_batch: Callable[[np.ndarray], Any],
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        order: Callable[[int], np.ndarray] | None = None,
        multiple_of: int = 1,
        prefetch: int = 0,
        **kwargs: Any,
    ) -> None:
        if multiple_of > 1 and batch_size % multiple_of:
            raise DataError(f"batch size {batch_size} is not a multiple of {multiple_of} devices")
        super().__init__(**kwargs)
        self.n, self.make_batch, self.batch_size = n, make_batch, batch_size
        self.shuffle, self.seed, self.order_fn, self.multiple_of = shuffle, seed, order, multiple_of
        self.prefetch = max(int(prefetch), 0)
        self.epoch = 0
        self.order = self._order()
        self.busy = 0.0  # seconds spent making batches (by whichever thread made them)
        self.waited = 0.0  # seconds the caller waited for a batch (equal to busy without prefetch)
        self._ahead: dict[int, Future] = {}
        self._producer: ThreadPoolExecutor | None = None

    def _order(self) -> np.ndarray:
        if self.order_fn is not None:
            return self.order_fn(self.epoch)
        return epoch_order(self.n, self.shuffle, self.seed, self.epoch)

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def _make(self, order: np.ndarray, i: int):
        t = time.perf_counter()
        batch = self.make_batch(order[i * self.batch_size : (i + 1) * self.batch_size])
        out = batch if self.multiple_of == 1 else pad_batch(batch, self.multiple_of)
        self.busy += time.perf_counter() - t
        return out

    def __getitem__(self, i: int):
        t = time.perf_counter()
        ahead = self._ahead.pop(i, None)
        out = ahead.result() if ahead is not None else self._make(self.order, i)
        self.waited += time.perf_counter() - t
        if self.prefetch:
            if self._producer is None:
                self._producer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="candleflow-prefetch")
            order = self.order  # the batches of this epoch's order, whatever happens to self.order later
            for j in range(i + 1, min(i + 1 + self.prefetch, len(self))):
                if j not in self._ahead:
                    self._ahead[j] = self._producer.submit(self._make, order, j)
        return out

    def on_epoch_end(self) -> None:
        self.set_epoch(self.epoch + 1)

    def set_epoch(self, epoch: int) -> None:
        """Visit epoch `epoch`'s order next (a resumed fit starts where the interrupted one stopped)."""
        for f in self._ahead.values():  # batches of the old order: dropped
            f.cancel()
        for f in self._ahead.values():
            if not f.cancelled():
                f.exception()  # wait for the one being made: no two threads make batches at once
        self._ahead = {}
        self.epoch = epoch
        self.order = self._order()


batch_loader = BatchPyDataset  # the name the loaders below and the reward model call


def pad_batch(batch: tuple, multiple_of: int) -> tuple:
    """(x, y[, w]) padded to a multiple of `multiple_of` rows with zero-weight copies of row 0, the
    real weights scaled by padded/real size so that Keras' loss (a sum over the padded batch size)
    and weighted metrics equal those of the unpadded batch; weights are always returned."""
    x, y, *w = batch
    real = x.shape[0]
    size = -(-real // multiple_of) * multiple_of
    weights = (w[0] if w else np.ones(real, dtype=np.float32)) * np.float32(size / real)
    if size == real:
        return x, y, weights.astype(np.float32)
    extra = size - real
    pad = lambda a: np.concatenate([a, np.repeat(a[:1], extra, axis=0)])  # noqa: E731
    return pad(x), pad(y), np.concatenate([weights, np.zeros(extra, np.float32)]).astype(np.float32)


def _labelled(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None):
    """(x, one-hot classes [, per-class weights]) or, for a real-valued target, (x, y as (B, 1))."""
    if np.issubdtype(y.dtype, np.floating):
        return x, y.astype(np.float32).reshape(-1, 1)
    return (x, one_hot(y)) if weights is None else (x, one_hot(y), weights[y].astype(np.float32))


def keras_loader(
    dataset: Windows,
    batch_size: int = 256,
    shuffle: bool = False,
    seed: int = 0,
    labels: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    balanced: bool = False,
    multiple_of: int = 1,
    **kwargs,
):
    """(x, one-hot y[, sample weight]) batches of windows. `labels` replaces the dataset's labels
    (one per window); `weights` is a per-class weight turned into sample weights; `balanced`
    draws each epoch's windows with equal class odds instead."""
    y = dataset.labels_at() if labels is None else np.asarray(labels)
    if y.shape[0] != len(dataset):
        raise DataError(f"{y.shape[0]} labels for {len(dataset)} windows")
    order = (lambda epoch: balanced_indices(y, seed, epoch)) if balanced else None
    return batch_loader(
        len(dataset),
        lambda idx: _labelled(dataset.gather(idx), y[idx], weights),
        batch_size,
        shuffle,
        seed,
        order,
        multiple_of,
        **kwargs,
    )


def unit_float(images: np.ndarray) -> np.ndarray:
    """uint8 images as float32 in [0, 1], in one pass (no float64 or second temporary)."""
    out = np.empty(images.shape, np.float32)
    np.divide(images, np.float32(255), out=out, dtype=np.float32)
    return out


def image_loader(
    images,
    labels: np.ndarray,
    batch_size: int = 128,
    shuffle: bool = False,
    seed: int = 0,
    weights: np.ndarray | None = None,
    balanced: bool = False,
    multiple_of: int = 1,
    **kwargs,
):
    """Chart images rendered inside the loader, batch by batch: (B, H, W, 1) float32 in [0, 1],
    one-hot labels [and sample weights]."""

    def make(idx: np.ndarray):
        x = images.render(idx)
        x = (unit_float(x) if x.dtype == np.uint8 else x)[..., None]
        return _labelled(x, labels[idx], weights)

    order = (lambda epoch: balanced_indices(labels, seed, epoch)) if balanced else None
    return batch_loader(len(images), make, batch_size, shuffle, seed, order, multiple_of, **kwargs)


def stored_image_loader(
    store,
    batch_size: int = 128,
    shuffle: bool = True,
    seed: int = 0,
    **kwargs,
):
    """Batches from a stored image dataset (an `ImageReader` or its path: HDF5, Zarr, NPZ or a
    PNG/JPEG folder): (B, H, W, 1) float32 in [0, 1] and one-hot labels, in a new order every
    epoch; each batch's images are read in file order (one chunk each in HDF5 and Zarr)."""
    from candleflow.images.store import ImageReader

    reader = store if isinstance(store, ImageReader) else ImageReader(store)

    def make(idx: np.ndarray):
        images, labels = reader.unit_float(np.sort(idx))  # bit-packed stores decode straight to float
        return images[..., None], one_hot(labels)

    return batch_loader(len(reader), make, batch_size, shuffle, seed, **kwargs)
