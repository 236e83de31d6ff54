"""Where results go (`output:`), the prepared-data cache (`cache:`), universes (`universe:`) and clusters (`cluster:`)."""

from __future__ import annotations

import os
import re
from typing import Annotated, Literal

from pydantic import (
    Field,
    field_validator,
)

from candleflow.config.base import (
    Interval,
    SafeName,
    Section,
)
from candleflow.config.sources import (
    SourceConfig,
)

TRACKING_URI = re.compile(
    r"(sqlite:///\S+|https?://[A-Za-z0-9.\-\[\]:]+(/\S*)?|(postgresql|mysql|mssql)(\+\w+)?://\S+|databricks(://\S*)?"
    r"|file:\S+)"
)


class OutputConfig(Section):
    """Where run folders and log files go."""

    runs_dir: str = Field("runs", description="folder that holds the run folders")
    name: SafeName | None = Field(None, description="run folder name (inside runs_dir); default: time and symbol")
    report: bool = Field(
        True,
        description="write report.html when the run finishes (its plots take a few seconds); false: skip it, e.g. "
        "in a sweep of many runs: `candleflow report RUN` writes it later from the figures the run stored",
    )
    log_dir: str | None = Field(
        None,
        description="log files of commands other than run/train (those log into their run folder); default "
        "$CANDLEFLOW_LOG_DIR, else $XDG_STATE_HOME/candleflow/logs (~/.local/state/candleflow/logs)",
    )
    tags: list[SafeName] = Field(
        default_factory=list,
        max_length=32,
        description="labels kept in the run's metadata.json, shown by `models list` and filtered by its --tag",
    )
    notes: str = Field("", max_length=2000, description="free text kept in the run's metadata.json and its report")
    equity_scale: Literal["auto", "log", "linear"] = Field(
        "auto",
        description="the report's equity curves: log, linear, or auto (log when a curve moves by more than a "
        "factor of 2, so a model's small moves stay visible beside a large buy and hold)",
    )
    tracking_uri: str | None = Field(
        None,
        description="MLflow tracking URI (e.g. sqlite:///mlflow.db or http://host:5000): log each run's params, "
        "metrics and files there as well (the tracking extra); file: stores only with MLFLOW_ALLOW_FILE_STORE=true "
        "(MLflow 3 wants a database); null: off",
    )
    tracking_experiment: str = Field("candleflow", description="MLflow experiment the runs are logged under")

    @field_validator("tracking_uri")
    @classmethod
    def _tracking_uri(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not TRACKING_URI.fullmatch(v):
            raise ValueError(
                "expected an MLflow tracking URI: sqlite:///PATH, http(s)://HOST[:PORT], postgresql:// or mysql:// "
                "URLs, databricks, or file:PATH"
            )
        if v.startswith("file:") and os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() not in ("1", "true"):
            raise ValueError(
                "MLflow 3 refuses its plain-file store; use sqlite:///mlflow.db (the tracking extra installs what it "
                "needs), or set MLFLOW_ALLOW_FILE_STORE=true to keep the file store"
            )
        return v


class CacheConfig(Section):
    """Size caps of candleflow's caches (Binance files, yfinance bars, prepared data, store copies)."""

    max_gb: float | None = Field(
        50.0,
        gt=0,
        description="each cache folder is kept under this many GB (10^9 bytes): after a write, its least recently "
        "used entries are removed (never those the command is using); null: no cap. `candleflow cache` lists "
        "and prunes them",
    )
    stores_dir: str = Field(
        "~/.cache/candleflow/stores", description="local copies of remote stores' entries (so they can be mmapped)"
    )

    @property
    def max_bytes(self) -> int | None:
        """max_gb in bytes, or None (no cap)."""
        from candleflow.fs.caches import gb_to_bytes

        return gb_to_bytes(self.max_gb)


_ENTRY_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


class UniverseConfig(Section):
    """Many symbols and intervals prepared into one store, one task per symbol x interval.

    `symbols` and `intervals` each replace the source's own (a files source may use {symbol} and
    {interval} in its paths; synthetic symbols get seed + their position); `sources` adds named
    sources of any kind (e.g. months of one market as separate series)."""

    symbols: list[SafeName] | Literal["*"] = Field(
        default_factory=list,
        description="e.g. [BTCUSDT, ETHUSDT]; empty: the source's; '*': every file a files source's {symbol} "
        "template matches (e.g. data/{symbol}-1d.csv)",
    )
    intervals: list[Interval] = Field(default_factory=list, description="e.g. [1m, 1h]; empty: the source's")
    sources: dict[Annotated[str, Field(pattern=_ENTRY_NAME)], SourceConfig] = Field(
        default_factory=dict, description="name -> source, each prepared as its own entry"
    )
    store: str = Field("prepared", description="path or fsspec URL (file://, s3://, gs://, memory://) of the store")

    @property
    def active(self) -> bool:
        """True when the universe names series: `run` and `prepare` then work over the store."""
        return bool(self.symbols or self.intervals or self.sources)


class ClusterConfig(Section):
    """Where prepare tasks run: local worker processes, or a running Dask scheduler."""

    scheduler: str | None = Field(
        None,
        description="address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786; "
        "unset: a local cluster of `workers` processes",
    )
    workers: int = Field(2, ge=1, le=512, description="local worker processes (one task each at a time)")
    threads_per_worker: int = Field(1, ge=1, le=64, description="threads for numba and Arrow inside each task")
    memory_limit: str = Field("auto", description="per local worker, e.g. 4GiB; auto: the machine's share")
    retries: int = Field(
        2,
        ge=0,
        le=20,
        description="times a failed task is run again (a killed worker's tasks are rescheduled by Dask on top of this)",
    )
    connect_timeout: float = Field(20.0, gt=0, description="seconds to wait for the scheduler")
    in_process_up_to: int = Field(
        8,
        ge=0,
        le=100_000,
        description="a prepare of at most this many entries runs in this process, starting no cluster "
        "(0: always a cluster); without the scale extra (Dask) every prepare runs in this process",
    )
