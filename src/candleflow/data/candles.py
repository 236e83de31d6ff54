"""The canonical Candles table: int64-ns open times, float64 OHLCV, segments and a fingerprint."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa

OHLCV = ("open", "high", "low", "close", "volume")
OPTIONAL_COLUMNS = ("quote_volume", "trades", "taker_buy_base", "taker_buy_quote")


@dataclass(frozen=True, eq=False)
class Candles:
    """A validated, strictly increasing candle series split into gap-free segments.

    `segments` is an (S, 2) int64 array of [start, stop) row ranges; no window, label or reward
    path may cross from one segment into the next. Build one with `validate_candles`.
    """

    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    segments: np.ndarray
    symbol: str = "UNKNOWN"
    interval: str = "1h"
    source: str = "unknown"
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    calendar: str = "24/7"  # where bars are expected (validation.calendar)

    def __len__(self) -> int:
        return int(self.open_time.shape[0])

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of the canonical bytes (open_time int64 and OHLCV float64, little-endian)."""
        h = hashlib.sha256()
        h.update(f"candles-v1|{self.interval}|".encode())
        h.update(np.ascontiguousarray(self.open_time, dtype="<i8").tobytes())
        for name in OHLCV:
            h.update(np.ascontiguousarray(getattr(self, name), dtype="<f8").tobytes())
        return h.hexdigest()

    @cached_property
    def segment_id(self) -> np.ndarray:
        """Per-row segment index (int32)."""
        lengths = self.segments[:, 1] - self.segments[:, 0]
        return np.repeat(np.arange(len(self.segments), dtype=np.int32), lengths)

    def column(self, name: str) -> np.ndarray:
        """A column by name, OHLCV or optional."""
        if name in OHLCV or name == "open_time":
            return getattr(self, name)
        return self.extra[name]

    def to_arrow(self) -> pa.Table:
        """Zero-copy Arrow table with symbol, interval, source and fingerprint as metadata."""
        cols: dict[str, Any] = {"open_time": pa.array(self.open_time.astype("datetime64[ns]"))}
        cols.update({n: pa.array(getattr(self, n)) for n in OHLCV})
        cols.update({n: pa.array(v) for n, v in self.extra.items()})
        meta = {
            "symbol": self.symbol,
            "interval": self.interval,
            "source": self.source,
            "fingerprint": self.fingerprint,
        }
        return pa.table(cols).replace_schema_metadata({k: str(v) for k, v in meta.items()})

    def to_pandas(self):  # -> pandas.DataFrame
        """A pandas DataFrame indexed by UTC open time (needs pandas)."""
        df = self.to_arrow().to_pandas()
        df["open_time"] = df["open_time"].dt.tz_localize("UTC")
        return df.set_index("open_time")

    def time_str(self, i: int) -> str:
        """ISO time of row i, for messages."""
        return str(np.datetime64(int(self.open_time[i]), "ns"))[:19]
