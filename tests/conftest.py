"""Shared helpers: small hand-made candle series and the shared Binance data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from candleflow.validate import RawCandles

HOUR = 3_600_000_000_000
T0 = int(np.datetime64("2024-01-01T00:00", "ns").astype(np.int64))
SHARED = Path(os.environ.get("CANDLEFLOW_SHARED", Path(__file__).resolve().parents[2] / "shared"))
BINANCE = SHARED / "data" / "binance-vision" / "data" / "spot"


def raw(times_h, o, h, l, c, v=None, source="test") -> RawCandles:
    """RawCandles from hour offsets and OHLC(V) lists."""
    n = len(times_h)
    cols = {"open_time": T0 + np.asarray(times_h, dtype=np.int64) * HOUR,
            "open": np.asarray(o, float), "high": np.asarray(h, float), "low": np.asarray(l, float),
            "close": np.asarray(c, float), "volume": np.ones(n) if v is None else np.asarray(v, float)}
    return RawCandles(columns=cols, symbol="TEST", source=source, interval="1h")


@pytest.fixture
def binance_dir() -> Path:
    if not BINANCE.is_dir():
        pytest.fail(f"shared Binance data not found at {BINANCE} (set CANDLEFLOW_SHARED)")
    return BINANCE
