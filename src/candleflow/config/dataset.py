"""How windows are cut and batched (`dataset:`) and chart images rendered (`images:`)."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from candleflow.config.base import (
    Section,
)


class DatasetConfig(Section):
    """Sliding windows over the features and the purged chronological split into train/val/test."""

    window: int = Field(120, ge=2, description="bars per window (120 in the original design)")
    val_fraction: float = Field(0.2, gt=0, lt=1, description="share of windows (by end time) in the validation period")
    test_fraction: float = Field(0.0, ge=0, lt=1, description="share of windows in a final test period (0: none)")
    embargo: int = Field(0, ge=0, description="extra bars dropped before each later split")
    train_stride: int = Field(2, ge=1, description="keep every k-th training window (neighbours overlap almost fully)")
    stride: int = Field(1, ge=1, description="windows end every k-th valid bar (all parts)")
    sample_rate: int = Field(1, ge=1, description="a window takes every r-th bar: it spans (window - 1) * r + 1 bars")
    batch_size: int | Literal["auto"] = Field(
        256,
        description="windows per training batch; auto: the largest power of two whose predicted training memory "
        "fits training.memory_share of the memory available (the GPU's on a GPU), at least 8 steps an epoch, "
        "halved once if the first step still runs out of memory",
    )

    batch_probe: bool = Field(
        True,
        description="with batch_size auto: time training steps at the memory-based batch and smaller powers of two, "
        "and keep the one whose time per sample stopped falling (logged)",
    )

    @field_validator("batch_size")
    @classmethod
    def _batch(cls, v: int | str) -> int | str:
        if not isinstance(v, str) and v < 1:
            raise ValueError("expected a batch size >= 1 or 'auto'")
        return v

    balanced: bool = Field(
        False, description="training batches drawn with equal class odds each epoch (instead of training.class_weight)"
    )
    prefetch: int = Field(
        2,
        ge=0,
        le=64,
        description="batches a background thread makes ahead while the model trains (the same batches in the same "
        "order; 0: made on demand)",
    )
    layout: Literal["series", "panel"] = Field(
        "series",
        description="series: windows of one series at a time; panel (a universe): windows over all tickers side "
        "by side on one time axis, (window, tickers x features + tickers presence flags), one label per ticker",
    )
    asset_scaling: Literal["per_asset", "pooled"] = Field(
        "per_asset",
        description="a universe (one model over many assets' windows): per_asset standardises each asset's features "
        "by its own training rows' mean and deviation, so a model sees every asset on one scale; pooled leaves them "
        "as they are (the network's normalisation then fits one mean over all assets)",
    )
    asset_embedding: bool = Field(
        False,
        description="a universe: each window also carries its asset's one-hot identity (one column per asset), so a "
        "network's first layer learns an embedding of the asset and a tree can split on it; predict adds the same "
        "columns (an asset the run never saw gets zeros)",
    )
    panel_calendar: Literal["same", "union", "intersection"] = Field(
        "same",
        description="panel rows: same (every ticker must follow one calendar; rows are their bar times), "
        "union (tickers on different calendars; rows where any trades), intersection (rows where all trade)",
    )
    returns: bool = Field(
        False,
        description="panel runs: batches carry each ticker's forward return R beside its label, and the loss "
        "weights each ticker's cross-entropy by |R| over the batch mean (large moves count more)",
    )
    cache_dir: str | None = Field(
        None,
        description="prepared-data cache (features, labels as memory-mapped .npy), "
        "e.g. ~/.cache/candleflow/prepared; off when unset",
    )

    @model_validator(mode="after")
    def _fractions(self) -> DatasetConfig:
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("val_fraction + test_fraction must be < 1")
        return self


class ImagesConfig(Section):
    """Chart images rendered from windows (for `model.kind: cnn` and `candleflow images`)."""

    layout: Literal["bar4", "jkx"] = Field(
        "jkx",
        description="bar4: 4 pixels per bar, black on white; jkx: Jiang, Kelly & Xiu's 3 pixels per bar with volume",
    )
    bars: int = Field(20, ge=2, le=4096, description="bars per image (jkx sizes: 5, 20, 60); at most 4,096")
    height: int | None = Field(
        None, ge=4, le=8192, description="rows; default 500 for bar4, the paper's size for jkx; at most 8,192"
    )
    volume: bool = Field(True, description="jkx: volume bars in the bottom fifth")
    moving_average: bool = Field(True, description="jkx: moving average of close over `bars` bars")
    dtype: Literal["uint8", "float32"] = Field("uint8", description="uint8 0..255, or float32 0..1")
    device: Literal["auto", "cpu", "gpu"] = Field(
        "auto", description="auto: the GPU through CuPy when present, else the CPU"
    )
    format: Literal["hdf5", "npz", "zarr", "png", "jpeg"] = Field(
        "hdf5", description="`candleflow images` storage: hdf5, npz, zarr (arrays), png or jpeg (one file per image)"
    )
    mode: Literal["single", "batch"] = Field(
        "single", description="single: one file or store for all images; batch: files of images_per_file images"
    )
    images_per_file: int = Field(50_000, ge=1, le=10_000_000, description="images per file in mode 'batch'")
    compression: Literal["bits", "gzip", "lz4"] = Field(
        "bits",
        description="hdf5: bits (one bit per pixel, rows packed as np.packbits packs them: the fastest to "
        "write and to train from, 25 KB a 500 x 400 image; plain h5py reads it and np.unpackbits restores it), "
        "gzip (deflate level 1: the smallest files, which every HDF5 reader opens as images) or lz4 (needs the "
        "hdf5plugin filter outside candleflow)",
    )
    out: str = Field(
        "images",
        min_length=1,
        description="where `candleflow images` writes: a file (hdf5/npz) or folder; --out overrides",
    )


# the built-in families' options (model.options) and the flat keys they set; a family registered
# in Python declares its own schema (Family.options) and checks its options where it is looked up
