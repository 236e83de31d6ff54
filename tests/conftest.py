"""Shared helpers: small hand-made candle series and the shared Binance data."""

from __future__ import annotations

import os
from pathlib import Path

if os.environ.get("PYTEST_XDIST_WORKER"):  # workers share the cores: one compute thread each, not N each
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import numpy as np
import pytest

from candleflow.config import RunConfig, load_config
from candleflow.data.validate import RawCandles
from candleflow.errors import MissingExtraError

HOUR = 3_600_000_000_000
T0 = int(np.datetime64("2024-01-01T00:00", "ns").astype(np.int64))
# the real market files: the full shared tree where CANDLEFLOW_SHARED points (CI sets it), else the
# small byte-exact sample committed beside the tests (tests/sample/README.md), so a fresh clone passes
SAMPLE = Path(__file__).resolve().parent / "sample"
SHARED = Path(os.environ["CANDLEFLOW_SHARED"]) if os.environ.get("CANDLEFLOW_SHARED") else SAMPLE
BINANCE = SHARED / "data" / "binance-vision" / "data" / "spot"
# the one tiny configuration tests prepare and train with (a run takes seconds); tests add overrides.
# No report.html (its six plots are a third of a tiny run's time): the tests that read a report
# ask for it with output.report=true (tests/test_report.py and the report checks of each layout)
TINY = [
    "source.n_bars=3000",
    "dataset.window=24",
    "model.lstm_units=[8]",
    "model.dense_units=[8]",
    "training.epochs=1",
    "dataset.batch_size=128",
    "training.verbose=0",
    "output.report=false",
]
REPORT = "output.report=true"  # a TINY run that writes its report.html


@pytest.fixture(autouse=True, scope="session")
def _log_dir(tmp_path_factory):
    """Commands' log files go to a temporary folder, not the user's state folder; the user's home
    (its ~/.cache/candleflow caches, config and state folders) is a temporary one too, for this
    process and every command a test starts, so no test reads or changes what the user keeps
    there, or depends on another process's use of it (issue 41)."""
    os.environ["CANDLEFLOW_LOG_DIR"] = str(tmp_path_factory.mktemp("logs"))
    home = tmp_path_factory.mktemp("home")
    os.environ["HOME"] = str(home)
    for var, sub in (("XDG_CACHE_HOME", ".cache"), ("XDG_CONFIG_HOME", ".config"), ("XDG_STATE_HOME", ".local/state")):
        os.environ[var] = str(home / sub)


@pytest.fixture
def tiny_config(tmp_path: Path):
    """make(*overrides) -> the TINY config with runs written under tmp_path, plus overrides."""

    def make(*overrides: str) -> RunConfig:
        return load_config(None, [*TINY, f"output.runs_dir={tmp_path}", *overrides])

    return make


def raw(times_h, o, h, l, c, v=None, source="test") -> RawCandles:
    """RawCandles from hour offsets and OHLC(V) lists."""
    n = len(times_h)
    cols = {
        "open_time": T0 + np.asarray(times_h, dtype=np.int64) * HOUR,
        "open": np.asarray(o, float),
        "high": np.asarray(h, float),
        "low": np.asarray(l, float),
        "close": np.asarray(c, float),
        "volume": np.ones(n) if v is None else np.asarray(v, float),
    }
    return RawCandles(columns=cols, symbol="TEST", source=source, interval="1h")


@pytest.fixture
def binance_dir() -> Path:
    if not BINANCE.is_dir():
        pytest.fail(f"Binance data not found at {BINANCE} (CANDLEFLOW_SHARED points at a folder without it)")
    return BINANCE


def needs(*paths: Path) -> None:
    """Skip the test where a real file it reads is not in the data at hand (the committed sample
    leaves out the 1 MB+ files: set CANDLEFLOW_SHARED to the full shared tree to run it)."""
    for p in paths:
        if not any(Path(p).parent.glob(Path(p).name)):
            pytest.skip(f"needs {p.relative_to(SHARED) if p.is_relative_to(SHARED) else p} (set CANDLEFLOW_SHARED)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """A test whose feature needs an extra that is not installed skips with the extra's name
    (MissingExtraError's one line: `pip install 'candleflow[tune]'`); CI installs every extra."""
    try:
        return (yield)
    except MissingExtraError as exc:
        pytest.skip(str(exc))
