"""Prepare many series on Dask: one task per symbol x interval (read or download, validate,
features, labels), each writing one store entry; the manifest lists an entry once it is complete.

Local worker processes by default, a running cluster with `cluster.scheduler`. A failed task is
retried (`cluster.retries`); a worker that dies mid-task has its task rescheduled by Dask and
leaves at most a temporary folder, which the manifest never lists and the next prepare sweeps.
A rerun skips every entry already listed with the same key and finishes only what is missing.
Arguments and results cross the wire as JSON text and plain dicts; data moves only through the store.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from candleflow.config import RunConfig
from candleflow.dataset.universe import BuildTask, plan_tasks, task_key  # noqa: F401  (the cluster's API)
from candleflow.errors import BuildError, CandleflowError, DownloadError

log = logging.getLogger("candleflow")


@dataclass
class BuildReport:
    """What a prepare did: entries computed, reused, listed after an interrupted run, failed."""

    store: str
    computed: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    swept: list[str] = field(default_factory=list)
    seconds: float = 0.0
    workers: int = 0

    @property
    def rows(self) -> int:
        return sum(r["rows"] for r in self.computed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "workers": self.workers,
            "seconds": round(self.seconds, 2),
            "computed": [r["name"] for r in self.computed],
            "rows_computed": self.rows,
            "rows_per_second": round(self.rows / self.seconds) if self.seconds else None,
            "skipped": self.skipped,
            "adopted": self.adopted,
            "failed": self.failed,
            "swept": self.swept,
        }


def build_entry(name: str, config_json: str, key: str, store_url: str, threads: int = 1) -> dict[str, Any]:
    """Run on a worker: prepare one series and write its store entry; returns the entry's record."""
    from candleflow.data.load import load_candles
    from candleflow.dataset.prepare import features_and_labels
    from candleflow.scale.store import SeriesStore

    _limit_threads(threads)
    t0 = time.perf_counter()
    cfg = RunConfig.model_validate_json(config_json)
    candles, report = load_candles(cfg.source, cfg.validation, cfg.cache)
    features, labels, changed = features_and_labels(cfg, candles)
    t1 = labels.t1.astype(np.int32) if len(candles) < 2**31 else labels.t1  # 4 bytes a row where they fit
    arrays = {
        "features": features.values,
        "labels": labels.y,
        "t1": t1,
        "open_time": candles.open_time,
        "segments": candles.segments,
    } | ({} if labels.context is None else {"context": labels.context})
    meta = {
        "symbol": candles.symbol,
        "interval": candles.interval,
        "source": candles.source,
        "rows": len(candles),
        "fingerprint": candles.fingerprint,
        "feature_names": features.names,
        "warmup": features.warmup,
        "first": candles.time_str(0),
        "last": candles.time_str(len(candles) - 1),
        "segments": int(len(candles.segments)),
        "labels": labels.counts(),
        "fine_changed": changed,
        "validation": report.summary(),
        # what validation changed in the prices, per entry: a panel run and its report say it per ticker
        "changes": {
            "adjusted": report.adjusted,
            "suspected_splits": report.suspected_splits[:10],
            "bad_print_rows": report.bad_print_rows,
            "filled_bars": report.filled_bars,
            "repaired_rows": report.ohlc_repaired_rows + report.spike_repaired_rows,
            "dropped_rows": report.rows_in - report.rows_out,
        },
        "calendar": candles.calendar,
        "exchange": report.exchange,
        "seconds": round(time.perf_counter() - t0, 3),
        "worker": f"{socket.gethostname()}:{os.getpid()}",
    }
    return SeriesStore(store_url).write_entry(name, key, arrays, candles.to_arrow(), meta)


def build_entry_or_error(name: str, config_json: str, key: str, store_url: str, threads: int = 1) -> dict[str, Any]:
    """build_entry as a task: an error that would fail again (bad data, a validation rule, a
    config) comes back as the record {"name", "error"} and is not retried; a download error (the
    network may do better) or an unexpected one is raised, and Dask retries the task."""
    try:
        return build_entry(name, config_json, key, store_url, threads)
    except DownloadError:
        raise
    except CandleflowError as exc:
        text = str(exc).splitlines()[0] if str(exc) else ""
        return {"name": name, "error": f"{type(exc).__name__}: {text}"}


def _limit_threads(threads: int) -> None:
    """Numba and Arrow threads per task, so workers sharing a machine do not oversubscribe it."""
    import numba
    import pyarrow as pa

    most = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
    numba.set_num_threads(max(1, min(threads, most)))
    pa.set_cpu_count(max(1, threads))


@contextlib.contextmanager
def dask_client(
    scheduler: str | None = None,
    workers: int = 2,
    threads_per_worker: int = 1,
    memory_limit: str = "auto",
    connect_timeout: float = 20.0,
) -> Iterator[Any]:
    """A Dask client of the running scheduler at `scheduler`, or of a new local cluster of worker
    processes (closed on exit)."""
    from candleflow.errors import require

    require("distributed", "a Dask cluster (cluster.scheduler, or more entries than cluster.in_process_up_to)")
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=f"{connect_timeout}s")
        except (OSError, TimeoutError) as exc:
            raise CandleflowError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        with client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=threads_per_worker,
            processes=True,
            memory_limit=memory_limit,
            dashboard_address=":0",
            scheduler_kwargs={"dashboard": False},
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def build_store(
    cfg: RunConfig,
    client: Any = None,
    force: bool = False,
    on_done: Callable[[str, dict[str, Any] | None, str | None], None] = lambda n, r, e: None,
) -> BuildReport:
    """Prepare every entry of the universe into `universe.store` on Dask (the given client, else
    `cluster.scheduler`, else local workers). Entries already listed with the same key are
    skipped unless `force`. Raises BuildError naming the entries that still failed after retries."""
    from candleflow.scale.store import SeriesStore

    t0 = time.perf_counter()
    store = SeriesStore.for_config(cfg)
    tasks = plan_tasks(cfg)
    report = BuildReport(store.url)
    listed = store.manifest()["entries"]
    todo, adopted = [], []
    for task in tasks:
        rec = listed.get(task.name)
        if not force and rec is not None and rec.get("key") == task.key:
            report.skipped.append(task.name)
            continue
        found = None if force else store.find_complete(task.name, task.key)
        if found is not None:
            adopted.append(found)
            report.adopted.append(task.name)
        else:
            todo.append(task)
    store.commit(adopted)
    report.swept += store.sweep()
    log.info(
        "store %s: %d entries to prepare, %d already listed, %d listed from an interrupted run, %d leftovers swept",
        store.url,
        len(todo),
        len(report.skipped),
        len(adopted),
        len(report.swept),
    )
    cl = cfg.cluster
    if todo and client is None and not cl.scheduler and _in_process(len(todo), cl.in_process_up_to):
        report.workers = 1
        _run_in_process(todo, store, cl.retries, report, on_done)
    elif todo:
        with (
            contextlib.nullcontext(client)
            if client is not None
            else dask_client(cl.scheduler, cl.workers, cl.threads_per_worker, cl.memory_limit, cl.connect_timeout)
        ) as c:
            report.workers = len(c.nthreads())
            _run_tasks(c, todo, store, cl.retries, cl.threads_per_worker, report, on_done)
        report.swept += store.sweep()
    report.seconds = time.perf_counter() - t0
    if report.failed:
        first = next(iter(report.failed.items()))
        raise BuildError(
            f"{len(report.failed)} of {len(tasks)} entries failed (first: {first[0]}: {first[1]}); "
            f"the other entries are in {store.url}, and a rerun prepares only what is missing"
        )
    return report


def _in_process(n: int, up_to: int) -> bool:
    """Whether n entries prepare in this process: few enough (`cluster.in_process_up_to`), or
    Dask not installed (the `scale` extra), which the log says."""
    if n <= up_to:
        log.info("preparing %d entries in this process (cluster.in_process_up_to: %d); no cluster started", n, up_to)
        return True
    from importlib.util import find_spec

    if find_spec("distributed") is None:
        log.info(
            "preparing %d entries in this process: Dask is not installed (pip install 'candleflow[scale]' "
            "prepares them on worker processes or a cluster)",
            n,
        )
        return True
    return False


def _run_in_process(
    todo: list[BuildTask],
    store: Any,
    retries: int,
    report: BuildReport,
    on_done: Callable[[str, dict[str, Any] | None, str | None], None],
) -> None:
    """The tasks one after another here, with the cluster's rules: a final error is reported by
    entry and not retried, a download error is tried `retries` more times; each entry is listed
    in the store's manifest as it finishes."""
    import os

    threads = os.cpu_count() or 1
    for task in todo:
        error = None
        for attempt in range(retries + 1):
            try:
                record = build_entry_or_error(task.name, task.config.model_dump_json(), task.key, store.url, threads)
            except Exception as exc:  # noqa: BLE001 - every failure is reported by entry, the rest go on
                error = _retried(exc, retries)
                if attempt < retries:
                    continue
            else:
                error = record.get("error")
            break
        if error is not None:
            _failed(report, task.name, error, on_done)
            continue
        log.info("entry %s: %s rows in %.2fs in this process", task.name, f"{record['rows']:,}", record["seconds"])
        store.commit([record])
        report.computed.append(record)
        on_done(task.name, record, None)


def _retried(exc: BaseException, retries: int) -> str:
    """A task's error that outlasted its retries, in one line."""
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{type(exc).__name__}: {msg} (after {retries} retries)"


def _failed(
    report: BuildReport, name: str, error: str, on_done: Callable[[str, dict[str, Any] | None, str | None], None]
) -> None:
    """An entry that failed: in the report, the log and the caller's progress."""
    report.failed[name] = error
    log.error("entry %s failed: %s", name, error)
    on_done(name, None, error)


class _FinalError(Exception):
    """A task's error that a retry cannot mend (returned by the task, not raised on the worker)."""


def _run_tasks(
    client: Any,
    todo: list[BuildTask],
    store: Any,
    retries: int,
    threads: int,
    report: BuildReport,
    on_done: Callable[[str, dict[str, Any] | None, str | None], None],
) -> None:
    from distributed import as_completed

    futures = {
        client.submit(
            build_entry_or_error,
            t.name,
            t.config.model_dump_json(),
            t.key,
            store.url,
            threads,
            key=f"prepare-{t.name}-{t.key[:12]}",
            retries=retries,
            pure=False,
        ): t
        for t in todo
    }
    for batch in as_completed(list(futures)).batches():  # one manifest write per batch of finished tasks
        records = []
        for fut in batch:
            task = futures[fut]
            try:
                record = fut.result()
                if "error" in record:  # final: not retried
                    raise _FinalError(record["error"])
            except Exception as exc:  # noqa: BLE001 - every failure is reported by entry, the rest go on
                _failed(
                    report, task.name, str(exc) if isinstance(exc, _FinalError) else _retried(exc, retries), on_done
                )
                continue
            records.append(record)
            log.info(
                "entry %s: %s rows in %.2fs on %s",
                task.name,
                f"{record['rows']:,}",
                record["seconds"],
                record["worker"],
            )
        store.commit(records)
        report.computed += records
        for record in records:
            on_done(record["name"], record, None)
