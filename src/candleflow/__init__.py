"""candleflow: exchange candles to leak-free datasets and trained, evaluated, versioned models.

The pipeline in stages, each a subpackage: ``data`` (sources, validated candles), ``dataset``
(features, labels, windows, purged splits), ``images``, ``models`` (Keras networks, training,
export), ``evaluation``, ``runs`` (run folders, registry, reports), ``rewards``, ``scale``
(stores of many series, Dask). The names below are the public API.

Example::

    import candleflow as cf

    cfg = cf.load_config(overrides=["training.epochs=1"])   # the embedded synthetic default
    data = cf.prepare(cfg)                    # candles -> features, labels -> windows -> split
    print(data.dataset.shape, data.split.summary())
    result = cf.run(cfg)                      # train, evaluate, write runs/NAME/
    model = cf.load_model(result.run_dir)     # reload it (safe mode, no pickle)
    study = cf.walkforward(cfg, folds=6, seeds=3, families=["lstm", "lightgbm", "linear"])
    print(study.summary["table"]["lstm"]["edge_over_lightgbm_ci95"])  # is the LSTM better? an interval

    # your own arrays: windows of 60 rows, labels looking 10 rows ahead, purged split
    ds = cf.dataset_from_arrays(features, labels, window=60, horizon=10, val_fraction=0.2)
    batch = ds.part("train").gather([0, 1, 2])  # (3, 60, F) float32

Entry points: load_config, load_candles, candles_from_table (a DataFrame or Arrow table of candles
you hold, validated like a file), prepare, dataset_from_arrays, open_dataset, run,
resume, tune, walkforward, load_model, Predictor (a run applied to fresh candles), register_feature,
register_family and register_target with Target (your own features, model families and targets); types RunConfig, Candles, ValidationReport, PreparedData,
WindowDataset, MultiWindowDataset, Split, ArrayDataset, RunResult; errors CandleflowError and
its subclasses. Importing candleflow does not import Keras; run, resume, tune, walkforward and
load_model load it when first used.
"""

from __future__ import annotations

from typing import Any

from candleflow._version import __version__
from candleflow.config import RunConfig, load_config
from candleflow.data.candles import Candles
from candleflow.data.load import candles_from_table, load_candles
from candleflow.data.validate import ValidationReport
from candleflow.dataset.arrays import ArrayDataset, dataset_from_arrays
from candleflow.dataset.prepare import PreparedData, prepare
from candleflow.dataset.split import Split, chronological_split
from candleflow.dataset.windows import MultiWindowDataset, WindowDataset
from candleflow.errors import (
    BuildError,
    CandleflowError,
    ConfigError,
    DataError,
    DownloadError,
    RegistryError,
    SourceError,
    StoreError,
    ValidationError,
)

# Keras-dependent entry points, imported on first use so the data side stays light
_LAZY = {
    "run": "candleflow.pipeline",
    "resume": "candleflow.pipeline",
    "RunResult": "candleflow.pipeline",
    "tune": "candleflow.studies.tune",
    "walkforward": "candleflow.studies.walkforward",
    "load_model": "candleflow.runs.registry",
    "open_dataset": "candleflow.scale.store",
    "Predictor": "candleflow.runs.predict",  # serving.json's own instructions: Predictor.from_run(FOLDER)
    "register_feature": "candleflow.dataset.features",
    "register_family": "candleflow.models.families",
    "register_target": "candleflow.dataset.targets",
    "Target": "candleflow.dataset.targets",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'candleflow' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "ArrayDataset",
    "BuildError",
    "CandleflowError",
    "Candles",
    "ConfigError",
    "DataError",
    "DownloadError",
    "MultiWindowDataset",
    "PreparedData",
    "Predictor",
    "RegistryError",
    "RunConfig",
    "RunResult",
    "SourceError",
    "Split",
    "StoreError",
    "Target",
    "ValidationError",
    "ValidationReport",
    "WindowDataset",
    "__version__",
    "candles_from_table",
    "chronological_split",
    "dataset_from_arrays",
    "load_candles",
    "load_config",
    "load_model",
    "open_dataset",
    "prepare",
    "register_family",
    "register_feature",
    "register_target",
    "resume",
    "run",
    "tune",
    "walkforward",
]
