"""Framework adapters over a WindowDataset; batches are gathered in one vectorised copy."""

from __future__ import annotations

import numpy as np

from .backend import keras
from .labels import one_hot
from .windows import WindowDataset


def class_weights(y: np.ndarray, n_classes: int = 3) -> np.ndarray:
    """'Balanced' weights n / (k * count_c), as scikit-learn computes them; 0 for absent classes."""
    counts = np.bincount(y[y >= 0], minlength=n_classes).astype(np.float64)
    w = np.zeros(n_classes)
    present = counts > 0
    w[present] = counts.sum() / (present.sum() * counts[present])
    return w


def keras_loader(dataset: WindowDataset, batch_size: int = 256, shuffle: bool = False, seed: int = 0,
                 labels: np.ndarray | None = None, weights: np.ndarray | None = None, **kwargs):
    """A `keras.utils.PyDataset` of (x, one-hot y[, sample weight]) batches.

    With shuffle, each epoch visits the windows in a new order drawn from (seed, epoch), so two
    runs with one seed see the same batches. `labels` replaces the dataset's labels (one per
    window); `weights` is a per-class weight turned into sample weights.
    """
    k = keras()

    class WindowPyDataset(k.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__(**kwargs)
            self.dataset = dataset
            self.batch_size = batch_size
            self.y = dataset.labels_at() if labels is None else np.asarray(labels)
            if self.y.shape[0] != len(dataset):
                raise ValueError(f"{self.y.shape[0]} labels for {len(dataset)} windows")
            self.epoch = 0
            self._order = self._make_order()

        def _make_order(self) -> np.ndarray:
            if not shuffle:
                return np.arange(len(self.dataset))
            return np.random.default_rng([seed, self.epoch]).permutation(len(self.dataset))

        def __len__(self) -> int:
            return -(-len(self.dataset) // self.batch_size)

        def __getitem__(self, i: int):
            idx = self._order[i * self.batch_size:(i + 1) * self.batch_size]
            x = self.dataset.gather(idx)
            y = self.y[idx]
            if weights is None:
                return x, one_hot(y)
            return x, one_hot(y), weights[y].astype(np.float32)

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self._order = self._make_order()

    return WindowPyDataset()


def image_loader(images, labels: np.ndarray, batch_size: int = 128, shuffle: bool = False, seed: int = 0,
                 weights: np.ndarray | None = None, **kwargs):
    """A `keras.utils.PyDataset` rendering chart images inside the loader, batch by batch:
    (B, H, W, 1) float32 in [0, 1] and one-hot labels [and sample weights]."""
    k = keras()

    class ImagePyDataset(k.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__(**kwargs)
            self.epoch = 0
            self.order = self._order()

        def _order(self) -> np.ndarray:
            n = len(images)
            return np.random.default_rng([seed, self.epoch]).permutation(n) if shuffle else np.arange(n)

        def __len__(self) -> int:
            return -(-len(images) // batch_size)

        def __getitem__(self, i: int):
            idx = self.order[i * batch_size:(i + 1) * batch_size]
            x = images.render(idx)
            x = (x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x)[..., None]
            y = labels[idx]
            if weights is None:
                return x, one_hot(y)
            return x, one_hot(y), weights[y].astype(np.float32)

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self.order = self._order()

    return ImagePyDataset()
