"""The per-asset inputs of a pooled run: the feature scales (`dataset.asset_scaling: per_asset`), kept in
its run folder as `asset_scales.npz` (plain arrays, no pickle), so `predict` standardises a
new period's features exactly as training did: each asset by its own training rows' mean and
deviation, an asset the run never saw by the pooled training moments; and the assets' one-hot
identity columns (`dataset.asset_embedding`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from candleflow.errors import RegistryError

log = logging.getLogger("candleflow")
FILE = "asset_scales.npz"


@dataclass(frozen=True)
class AssetScales:
    """Entry names, their symbols, and (assets, features) means and deviations; `pooled` is the
    (mean, std) of every training row together."""

    names: list[str]
    symbols: list[str]
    mean: np.ndarray
    std: np.ndarray
    pooled: tuple[np.ndarray, np.ndarray]

    def save(self, folder: Path) -> Path:
        from candleflow.fs.atomic import atomic_path

        path = folder / FILE
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(
                tmp,
                names=np.array(self.names, dtype=str),
                symbols=np.array(self.symbols, dtype=str),
                mean=self.mean.astype(np.float32),
                std=self.std.astype(np.float32),
                pooled_mean=self.pooled[0].astype(np.float32),
                pooled_std=self.pooled[1].astype(np.float32),
            )
        return path

    @classmethod
    def load(cls, folder: Path) -> AssetScales | None:
        """The run's scales, or None where it has none (a series run, or asset_scaling pooled)."""
        path = folder / FILE
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as f:
                return cls(
                    [str(n) for n in f["names"]],
                    [str(s) for s in f["symbols"]],
                    f["mean"],
                    f["std"],
                    (f["pooled_mean"], f["pooled_std"]),
                )
        except (KeyError, ValueError, OSError) as exc:
            raise RegistryError(f"{path}: not a candleflow asset-scales file ({exc})") from None

    def of(self, symbol: str, interval: str) -> tuple[np.ndarray, np.ndarray]:
        """The (mean, std) of the asset `symbol` (its entry name or its symbol); the pooled one,
        said in the log, for an asset the run did not train on."""
        for k, (name, sym) in enumerate(zip(self.names, self.symbols, strict=True)):
            if name in (symbol, f"{symbol}-{interval}") or sym == symbol:
                return self.mean[k], self.std[k]
        log.warning("%s was not in the run's universe: its features take the pooled training scale", symbol)
        return self.pooled

    def apply(self, values: np.ndarray, symbol: str, interval: str) -> np.ndarray:
        """`values` (rows, features) standardised as the asset's training rows were (float32)."""
        mean, std = self.of(symbol, interval)
        return np.ascontiguousarray((values - mean) / std, dtype=np.float32)


def asset_columns(names: list[str]) -> list[str]:
    """The one-hot identity columns' names of `dataset.asset_embedding`: asset=NAME, in run order."""
    return [f"asset={n}" for n in names]


def asset_one_hot(names: list[str], symbol: str, interval: str, rows: int) -> np.ndarray:
    """(rows, len(names)) float32: the one-hot identity of the asset `symbol` (its entry name, or
    NAME-INTERVAL) among the run's `names`; zeros, said in the log, for an asset it never saw."""
    out = np.zeros((rows, len(names)), np.float32)
    for k, name in enumerate(names):
        if name in (symbol, f"{symbol}-{interval}"):
            out[:, k] = 1.0
            return out
    log.warning("%s was not in the run's universe: its asset identity columns are zeros", symbol)
    return out


__all__ = ["FILE", "AssetScales", "asset_columns", "asset_one_hot"]
