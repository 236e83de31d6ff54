"""Preparing many series on a 2-worker Dask cluster into a store: the shared Binance months as
separate series, served on 127.0.0.1; retries, a worker killed mid-task, a writer killed mid-entry,
reruns that finish only what is missing, and the multi-series dataset read from the manifest."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from candleflow.config import load_config, validate_config
from candleflow.data.load import load_candles
from candleflow.data.sources.binance.mirror import MirrorServer
from candleflow.dataset.prepare import features_and_labels
from candleflow.dataset.split import split_by_time
from candleflow.dataset.windows import WindowDataset
from candleflow.errors import ConfigError
from candleflow.scale.cluster import BuildError, build_store, plan_tasks
from candleflow.scale.store import SeriesStore, StoreError, open_dataset

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.integration  # Dask clusters and CLI subprocesses

MONTHS = ["2024-01", "2024-02", "2024-03", "2024-04"]
KEY = "data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-{}.zip"


@pytest.fixture(scope="module")
def mirror():
    from conftest import BINANCE, needs

    needs(*(BINANCE.parents[1] / KEY.format(m) for m in MONTHS))  # 1m months: in the full shared tree only
    with MirrorServer(BINANCE.parents[1], stall_seconds=60) as srv:
        yield srv


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            scheduler_kwargs={"dashboard": False},
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def month_config(srv, tmp_path, months=MONTHS, store=None, **source):
    """Each month of BTCUSDT 1m as its own series."""
    src = {
        "kind": "binance",
        "symbol": "BTCUSDT",
        "interval": "1m",
        "base_url": srv.url,
        "cache_dir": str(tmp_path / "cache"),
        "timeout": 30.0,
    } | source
    return validate_config(
        {
            "labels": {"horizon": 30},
            "dataset": {"window": 60},
            "universe": {
                "store": str(store or tmp_path / "store"),
                "sources": {f"m{m}": src | {"start": m, "end": m} for m in months},
            },
            "cluster": {"retries": 2},
        }
    )


def reference(cfg, name):
    task = next(t for t in plan_tasks(cfg) if t.name == name)
    candles, _ = load_candles(task.config.source, task.config.validation)
    features, labels, _ = features_and_labels(task.config, candles)
    return candles, features, labels


def hidden(root: Path):
    return [p for p in root.rglob(".*")]


def test_plan_symbols_intervals_and_named_sources(tmp_path):
    cfg = load_config(None, ["universe.symbols=[AAA,BBB]", "universe.intervals=[1h,4h]"])
    tasks = plan_tasks(cfg)
    assert [t.name for t in tasks] == ["AAA-1h", "AAA-4h", "BBB-1h", "BBB-4h"]
    assert [t.config.source.seed for t in tasks] == [7, 7, 8, 8]  # each synthetic symbol its own market
    assert len({t.key for t in tasks}) == 4
    files = validate_config(
        {
            "source": {"paths": [str(tmp_path / "{symbol}" / "{interval}.csv")]},
            "universe": {"symbols": ["X"], "intervals": ["1h"], "sources": {"extra": {"n_bars": 500}}},
        }
    )
    (tmp_path / "X").mkdir()
    (tmp_path / "X" / "1h.csv").write_text("open_time,open,high,low,close,volume\n")
    named = plan_tasks(files)
    assert [t.name for t in named] == ["extra", "X-1h"]
    assert named[0].config.source.kind == "synthetic" and named[1].config.source.paths == [
        str(tmp_path / "X" / "1h.csv")
    ]
    with pytest.raises(ConfigError, match="universe.sources"):
        validate_config({"universe": {"sources": {"bad name": {"n_bars": 500}}}})
    with pytest.raises(ConfigError, match="named twice"):
        plan_tasks(validate_config({"universe": {"symbols": ["A"], "sources": {"A-1h": {"n_bars": 500}}}}))


def test_two_workers_prepare_months_as_series_equal_to_one_process(mirror, client, tmp_path):
    cfg = month_config(mirror, tmp_path, months=MONTHS[:3])
    report = build_store(cfg, client=client)
    assert report.workers == 2 and sorted(r["name"] for r in report.computed) == ["m2024-01", "m2024-02", "m2024-03"]
    assert len({r["worker"] for r in report.computed}) == 2  # both workers took tasks
    store = SeriesStore(cfg.universe.store)
    assert store.names() == [r["name"] for r in report.computed]  # listed in completion order
    for name in store.names():
        entry = store.open(name, verify=True)
        candles, features, labels = reference(cfg, name)
        assert isinstance(entry.features, np.memmap)
        np.testing.assert_array_equal(entry.features, features.values)
        np.testing.assert_array_equal(entry.arrays["labels"], labels.y)
        np.testing.assert_array_equal(entry.arrays["t1"], labels.t1)
        np.testing.assert_array_equal(entry.arrays["open_time"], candles.open_time)
        assert entry.meta["fingerprint"] == candles.fingerprint == entry.candles().fingerprint
        days = {"m2024-01": 31, "m2024-02": 29, "m2024-03": 31}[name]
        assert entry.meta["rows"] == len(candles) == days * 1440  # every minute of the month
    assert not hidden(Path(cfg.universe.store))

    # a rerun with one more month prepares only that month
    bigger = month_config(mirror, tmp_path)
    again = build_store(bigger, client=client)
    assert [r["name"] for r in again.computed] == ["m2024-04"]
    assert sorted(again.skipped) == ["m2024-01", "m2024-02", "m2024-03"]


def test_multi_series_dataset_reads_the_manifest_lazily_and_splits_by_time(mirror, client, tmp_path):
    cfg = month_config(mirror, tmp_path, months=MONTHS[:2])
    build_store(cfg, client=client)
    ds = open_dataset(cfg.universe.store, window=60)
    store = SeriesStore(cfg.universe.store)
    singles = {}
    for name in store.names():
        candles, features, labels = reference(cfg, name)
        singles[name] = WindowDataset.from_arrays(features.values, labels.y, candles.segments, 60)
    assert len(ds) == sum(len(s) for s in singles.values())
    assert all(isinstance(p.features, np.memmap) for p in ds.parts)
    idx = np.random.default_rng(0).choice(len(ds), 300, replace=False)
    batch = ds.gather(idx)
    for i, row in zip(idx, batch):
        single = singles[ds.names[ds.which[i]]]
        np.testing.assert_array_equal(row, single.window_view(int(ds.local[i])))
        assert ds.labels_at(np.array([i]))[0] == single.labels_at(np.array([ds.local[i]]))[0]
    split = split_by_time(ds.end_times(), ds.label_end_times(embargo=5), 0.3)
    train_end, val_start = ds.end_times()[split["train"]], split.starts["val"]
    assert train_end.max() < val_start <= ds.end_times()[split["val"]].min()
    assert ds.label_end_times(5)[split["train"]].max() < val_start and split.purged["train"] > 0
    assert {ds.names[k] for k in np.unique(ds.which[split["val"]])} == {"m2024-02"}  # January only trains
    mean, var = ds.subset(split["train"]).moments()
    assert mean.shape == (8,) and np.all(var > 0)
    train = ds.subset(split["train"])
    rows = np.concatenate(
        [p.features[p.subset(train.local[train.which == k]).covered_rows()] for k, p in enumerate(ds.parts)]
    ).astype(np.float64)  # pooled by hand
    np.testing.assert_allclose(mean, rows.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(var, rows.var(axis=0), rtol=1e-5)
    from candleflow.models.loaders import keras_loader

    x, y = keras_loader(ds.subset(split["train"]), 64)[0]  # the Keras loader takes the multi-series dataset as is
    np.testing.assert_array_equal(x, ds.gather(split["train"][:64]))
    np.testing.assert_array_equal(y.argmax(axis=1), ds.labels_at(split["train"][:64]))


def test_a_failed_task_is_retried_and_a_permanent_failure_names_its_entry(mirror, client, tmp_path):
    cfg = month_config(mirror, tmp_path, months=["2024-05"], retries=0)  # download retries off: the task fails
    mirror.add_fault(KEY.format("2024-05"), "500")
    before = mirror.count(KEY.format("2024-05"))
    report = build_store(cfg, client=client)
    assert [r["name"] for r in report.computed] == ["m2024-05"]
    assert mirror.count(KEY.format("2024-05")) - before == 2  # the failed attempt, then the retry

    missing = month_config(mirror, tmp_path, months=["2024-05", "2019-01"], retries=0)  # 2019-01 is not published
    with pytest.raises(
        BuildError,
        match=r"1 of 2 entries failed \(first: m2019-01: SourceError: .*no spot "
        r"BTCUSDT 1m files published",
    ):
        build_store(missing, client=client)
    assert SeriesStore(cfg.universe.store).names() == ["m2024-05"]


def test_a_worker_killed_mid_task_leaves_no_partial_entry(mirror, client, tmp_path):
    cfg = month_config(mirror, tmp_path, months=["2024-06", "2025-01"])
    key = KEY.format("2024-06")
    mirror.add_fault(key, "stall")  # the first download of June hangs half-way: the worker is mid-task
    before = mirror.count(key)
    result = {}
    runner = threading.Thread(target=lambda: result.update(report=build_store(cfg, client=client)))
    runner.start()
    deadline = time.monotonic() + 60
    while mirror.count(key) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    busy = None
    while busy is None and time.monotonic() < deadline:
        busy = next((w for w, keys in client.processing().items() if any("m2024-06" in str(k) for k in keys)), None)
        time.sleep(0.05)
    assert busy is not None, "the June task never started"
    pid = client.run(os.getpid, workers=[busy])[busy]
    os.kill(pid, signal.SIGKILL)
    runner.join(120)
    assert not runner.is_alive()
    report = result["report"]
    assert sorted(r["name"] for r in report.computed) == ["m2024-06", "m2025-01"]
    assert mirror.count(key) - before == 2  # the killed attempt and the rescheduled one
    store = SeriesStore(cfg.universe.store)
    assert sorted(store.names()) == ["m2024-06", "m2025-01"]
    for name in store.names():
        store.open(name, verify=True)
    assert not hidden(Path(cfg.universe.store))
    client.wait_for_workers(2, timeout=60)  # the nanny restarted the killed worker


KILL_WRITER = """
import sys, numpy as np, pyarrow as pa
from candleflow.scale.store import SeriesStore
n = 20_000_000
arrays = {"features": np.ones((n, 8), np.float32), "labels": np.zeros(n, np.int8), "t1": np.zeros(n, np.int32),
          "open_time": np.arange(n, dtype=np.int64), "segments": np.array([[0, n]])}
print("writing", flush=True)
SeriesStore(sys.argv[1]).write_entry("big", "k" * 64, arrays, pa.table({"a": [1]}), {"rows": n})
"""


def test_a_writer_killed_mid_entry_is_never_listed_and_the_rerun_sweeps_it(mirror, client, tmp_path):
    cfg = month_config(mirror, tmp_path, months=["2024-01"])
    build_store(cfg, client=client)
    root = Path(cfg.universe.store)
    proc = subprocess.Popen([sys.executable, "-c", KILL_WRITER, str(root)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    deadline = time.monotonic() + 60
    while not list((root / "entries").glob("big/.*.tmp/features.npy")) and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(hidden(root / "entries" / "big")) == 1  # its temporary folder, half written
    store = SeriesStore(str(root))
    assert store.names() == ["m2024-01"]
    with pytest.raises(StoreError, match="no entry 'big' in the manifest"):
        store.open("big")
    leftover = hidden(root / "entries" / "big")[0].name
    again = build_store(cfg, client=client)
    assert again.skipped == ["m2024-01"] and again.computed == [] and again.swept == [f"big/{leftover}"]
    assert not any((root / "entries" / "big").iterdir())


def test_a_finished_but_unlisted_entry_is_listed_not_recomputed(mirror, client, tmp_path):
    cfg = month_config(mirror, tmp_path, months=["2024-02"])
    build_store(cfg, client=client)
    store = SeriesStore(cfg.universe.store)
    manifest = Path(cfg.universe.store) / "manifest.json"
    data = json.loads(manifest.read_text())
    data["entries"] = {}  # the prepare process died after the entry was written, before it was listed
    manifest.write_text(json.dumps(data))
    again = build_store(cfg, client=client)
    assert again.adopted == ["m2024-02"] and again.computed == []
    assert store.names() == ["m2024-02"]
    # a damaged entry is caught on open, by size always and by sha256 on request
    entry = store.open("m2024-02")
    labels = entry.folder / "labels.npy"
    labels.write_bytes(labels.read_bytes()[:-1])
    with pytest.raises(StoreError, match=r"m2024-02/labels.npy has \d+ bytes, the manifest says \d+"):
        store.open("m2024-02")


def test_a_remote_store_is_copied_verified_then_memory_mapped(tmp_path):
    cfg = load_config(
        None,
        ["universe.symbols=[AAA,BBB]", "source.n_bars=3000", "universe.store=memory://cf-test", "dataset.window=30"],
    )
    with (
        distributed.LocalCluster(
            n_workers=1, processes=False, dashboard_address=":0", scheduler_kwargs={"dashboard": False}
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        report = build_store(cfg, client=c)
    assert sorted(r["name"] for r in report.computed) == ["AAA-1h", "BBB-1h"]
    store = SeriesStore("memory://cf-test", cache_dir=tmp_path / "cache")
    entry = store.open("AAA-1h")
    assert isinstance(entry.features, np.memmap) and str(tmp_path / "cache") in str(entry.folder)
    ds = open_dataset(store, window=30)
    assert len(ds.parts) == 2 and ds.shape[1:] == (30, 8)


def test_cli_prepares_on_a_running_scheduler_and_reruns_only_what_is_missing(mirror, client, tmp_path):
    cfg = month_config(mirror, tmp_path, months=["2024-03", "2024-04"])
    path = tmp_path / "universe.yaml"
    path.write_text(cfg.to_yaml())
    store = tmp_path / "cli-store"
    args = [
        sys.executable,
        "-m",
        "candleflow.cli",
        "prepare",
        "--config",
        str(path),
        "--store",
        str(store),
        "--scheduler",
        client.scheduler.address,
        "--json",
    ]
    first = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    out = json.loads(first.stdout)
    assert sorted(out["computed"]) == ["m2024-03", "m2024-04"] and out["workers"] == 2
    assert out["manifest"]["entries"] == 2 and out["manifest"]["rows"] == (31 + 30) * 1440
    second = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0 and sorted(json.loads(second.stdout)["skipped"]) == ["m2024-03", "m2024-04"]
    # nothing is missing: no scheduler is needed; a new store needs one
    fresh = [a if a != str(store) else str(tmp_path / "fresh") for a in args[:-3]]
    unknown = subprocess.run(args[:-3] + ["--store", "nope://x"], capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 2 and unknown.stderr.strip() == "error: store 'nope://x': Protocol not known: nope"
    bad = subprocess.run(
        fresh + ["--scheduler", "tcp://127.0.0.1:9", "-s", "cluster.connect_timeout=2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in bad.stderr


def test_run_on_a_universe_trains_one_model_over_every_series_of_the_store(tmp_path):
    from candleflow.pipeline import run
    from candleflow.runs.registry import load_model

    cfg = load_config(
        None,
        [
            "universe.symbols=[AAA,BBB]",
            "source.n_bars=2500",
            f"universe.store={tmp_path / 'store'}",
            f"output.runs_dir={tmp_path / 'runs'}",
            "output.name=u",
            "training.epochs=1",
            "model.lstm_units=[8]",
            "model.dense_units=[4]",
            "dataset.window=24",
            "training.verbose=0",
            "cluster.workers=1",
        ],
    )
    result = run(cfg)
    ds = open_dataset(cfg.universe.store, 24)
    split = split_by_time(ds.end_times(), ds.label_end_times(0), 0.2)
    val = result.metrics["val"]
    assert val["n"] == split["val"].size and sum(s["windows"] for s in val["series"].values()) == val["n"]
    assert set(val["series"]) == {"AAA-1h", "BBB-1h"}
    data = json.loads((result.run_dir / "data.json").read_text())
    records = SeriesStore(cfg.universe.store).manifest()["entries"]
    assert data["fingerprints"] == {n: records[n]["fingerprint"] for n in ("AAA-1h", "BBB-1h")}
    assert result.metadata["series"] == ["AAA-1h", "BBB-1h"] and result.metadata["symbol"] == ["AAA", "BBB"]
    model = load_model(result.run_dir)
    assert tuple(model.input_shape[1:]) == (24, 8)
    with pytest.raises(ConfigError, match="model.kind 'cnn'"):
        run(
            load_config(
                None,
                [
                    "universe.symbols=[AAA]",
                    "model.kind=cnn",
                    f"universe.store={tmp_path / 'store'}",
                    f"output.runs_dir={tmp_path / 'runs'}",
                    "output.name=c",
                ],
            )
        )


def test_split_by_time_cuts_every_series_at_one_instant_by_hand():
    end = np.array([0, 1, 2, 3, 4, 0, 1, 2, 3, 4])  # two series with the same bar times
    split = split_by_time(end, end + 1, val_fraction=0.4)
    # sorted times 0 0 1 1 2 2 | 3 3 4 4: the cut is t=3; both t=2 windows see t=3 in their label: purged
    assert split["train"].tolist() == [0, 5, 1, 6] and split.purged["train"] == 2
    assert split["val"].tolist() == [3, 8, 4, 9] and split.starts == {"train": 0, "val": 3}
    three = split_by_time(end, end, val_fraction=0.2, test_fraction=0.2)
    assert (
        three["val"].tolist() == [3, 8] and three["test"].tolist() == [4, 9] and three.purged == {"train": 0, "val": 0}
    )
    with pytest.raises(ValueError, match="10 windows are too few"):
        split_by_time(end, end, val_fraction=0.96)


def test_an_error_a_retry_cannot_mend_is_not_retried_nor_printed_by_workers(client, tmp_path, capfd):
    """A universe with an empty ticker file: the entry fails once (not cluster.retries times), the
    error is one line naming the entry and the file, and no worker prints a traceback."""
    import pyarrow.parquet as pq

    from candleflow.config import SyntheticSource
    from candleflow.data.load import load_candles

    candles, _ = load_candles(SyntheticSource(n_bars=600))
    pq.write_table(candles.to_arrow(), tmp_path / "AAA.parquet")
    (tmp_path / "BBB.csv").write_bytes(b"")
    cfg = validate_config(
        {
            "labels": {"horizon": 10},
            "dataset": {"window": 16},
            "universe": {
                "store": str(tmp_path / "store"),
                "sources": {n: {"paths": [str(tmp_path / f)]} for n, f in (("a", "AAA.parquet"), ("b", "BBB.csv"))},
            },
            "cluster": {"retries": 2},
        }
    )
    capfd.readouterr()
    with pytest.raises(BuildError, match=r"^1 of 2 entries failed \(first: b: SourceError: .*BBB.csv") as err:
        build_store(cfg, client=client)
    assert "retries" not in str(err.value) and "\n" not in str(err.value)
    assert "Traceback" not in capfd.readouterr().err
    assert SeriesStore(cfg.universe.store).names() == ["a"]
