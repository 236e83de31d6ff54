"""Datasets at scale: prepared-data cache, memory-mapped store, many symbols, stride and
sampling rate, balanced sampling, the real 2018-02 data with its gaps."""

import json
import multiprocessing as mp

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from candleflow.config import FilesSource, load_config
from candleflow.data.load import load_candles
from candleflow.dataset.cache import DatasetCache
from candleflow.dataset.prepare import prepare
from candleflow.dataset.sampling import balanced_indices
from candleflow.dataset.windows import WindowDataset, concat_datasets
from candleflow.fs.caches import LEDGER, MARKER, STATS, STATS_LOCK, entries
from conftest import TINY, needs

SMALL = TINY


def test_cache_miss_then_hit_memory_mapped_and_identical(tmp_path):
    cfg = load_config(None, SMALL)
    cache = DatasetCache(tmp_path / "cache")
    first = prepare(cfg, cache)
    second = prepare(cfg, cache)
    assert (cache.misses, cache.hits) == (1, 1) and (first.cache, second.cache) == ("miss", "hit")
    assert isinstance(second.features.values, np.memmap)
    assert np.array_equal(first.features.values, second.features.values, equal_nan=True)
    assert np.array_equal(first.labels.y, second.labels.y) and np.array_equal(first.labels.t1, second.labels.t1)
    assert np.array_equal(first.dataset.gather(np.arange(10)), second.dataset.gather(np.arange(10)))
    other = prepare(load_config(None, SMALL + ["labels.horizon=12"]), cache)  # another config: another key
    assert other.cache == "miss" and len(entries("prepared", tmp_path / "cache")) == 2


@pytest.mark.parametrize("damage", ["truncate", "flip", "foreign", "meta"])
def test_damaged_entry_is_detected_and_rebuilt(tmp_path, damage):
    cfg = load_config(None, SMALL)
    cache = DatasetCache(tmp_path)
    good = prepare(cfg, cache)
    entry = next(p for p in tmp_path.iterdir() if p.is_dir())
    feats = entry / "features.npy"
    if damage == "truncate":
        feats.write_bytes(feats.read_bytes()[:-100])
    elif damage == "flip":
        data = bytearray(feats.read_bytes())
        data[-5] ^= 0xFF
        feats.write_bytes(bytes(data))
    elif damage == "foreign":
        meta = json.loads((entry / "meta.json").read_text())
        meta["key"] = "0" * 32
        (entry / "meta.json").write_text(json.dumps(meta))
    else:
        (entry / "meta.json").write_text("{not json")
    again = prepare(cfg, cache)
    assert again.cache == "miss" and cache.rebuilt == 1
    assert np.array_equal(again.features.values, good.features.values, equal_nan=True)
    assert prepare(cfg, cache).cache == "hit"


def _prepare_into(root: str, q) -> None:
    p = prepare(load_config(None, SMALL), DatasetCache(root))
    q.put(float(np.nansum(np.asarray(p.features.values, dtype=np.float64))))


def test_two_processes_preparing_one_key_leave_one_good_entry(tmp_path):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_prepare_into, args=(str(tmp_path), q)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    sums = [q.get(timeout=5), q.get(timeout=5)]
    assert sums[0] == sums[1]
    entries = [
        p for p in tmp_path.iterdir() if p.name not in (STATS, STATS_LOCK, MARKER, LEDGER)
    ]  # not the cache's counts
    assert len(entries) == 1 and not entries[0].name.startswith(".")  # no temporary left behind
    cache = DatasetCache(tmp_path)
    assert prepare(load_config(None, SMALL), cache).cache == "hit"


def test_stride_and_sample_rate():
    f = np.arange(200, dtype=np.float32).reshape(100, 2)
    y = np.zeros(100, dtype=np.int8)
    segments = np.array([[0, 50], [50, 100]])
    ds = WindowDataset.from_arrays(f, y, segments, window=5, rate=3, stride=2)
    assert ds.span == 13
    starts = ds.ends - ds.span + 1
    assert np.all((starts // 50) == (ds.ends // 50))  # inside one segment
    assert np.diff(ds.ends)[0] == 2
    w = ds.gather(np.array([0]))[0]
    e = ds.ends[0]
    assert np.array_equal(w[:, 0], f[e - 12 : e + 1 : 3, 0])  # every 3rd bar, ending at e
    assert np.shares_memory(ds.window_view(0), f)


def test_many_symbols_in_one_dataset_on_disk(tmp_path):
    parts = []
    for k in range(3):
        f = np.full((40 + k, 2), k, dtype=np.float32)
        parts.append(WindowDataset.from_arrays(f, np.zeros(40 + k, np.int8), np.array([[0, 40 + k]]), window=10))
    ds, which = concat_datasets(parts, str(tmp_path / "all.npy"))
    assert isinstance(ds.features, np.memmap) and len(ds) == sum(len(p) for p in parts)
    batch = ds.gather(np.arange(len(ds)))
    # no window mixes symbols: every value in a window is its symbol's number
    assert np.all(batch == which[:, None, None])
    mem, which_mem = concat_datasets(parts)
    assert np.array_equal(mem.gather(np.arange(len(mem))), batch) and np.array_equal(which, which_mem)


def test_balanced_indices_equal_class_odds():
    y = np.array([0] * 900 + [1] * 90 + [2] * 10)
    idx = balanced_indices(y, seed=1, epoch=0)
    counts = np.bincount(y[idx], minlength=3) / idx.size
    assert np.allclose(counts, 1 / 3, atol=0.05)
    assert not np.array_equal(idx, balanced_indices(y, seed=1, epoch=1))
    assert np.array_equal(idx, balanced_indices(y, seed=1, epoch=0))


def test_real_2018_02_data_with_gaps_yields_no_window_across_a_gap(binance_dir):
    needs(binance_dir / "monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2018-02.zip")
    from candleflow.config.intervals import interval_ns
    from candleflow.dataset.features import compute_features
    from candleflow.dataset.labels import competitive_labels

    src = FilesSource(paths=[str(binance_dir / "monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2018-02.zip")])
    candles, report = load_candles(src)
    assert len(candles.segments) > 1  # the month has gaps
    feats = compute_features(candles)
    lab = competitive_labels(candles)
    for rate in (1, 3):
        ds = WindowDataset.from_arrays(feats.values, lab.y, candles.segments, 60, rate)
        starts = ds.ends - ds.span + 1
        step = interval_ns("1m")
        # every window's bars are consecutive minutes: its first and last bars are span-1 minutes apart
        assert np.all(candles.open_time[ds.ends] - candles.open_time[starts] == (ds.span - 1) * step)
        seg = np.searchsorted(candles.segments[:, 1], ds.ends, side="right")
        assert np.all(starts >= candles.segments[seg, 0])


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(20, 300),
    window=st.integers(2, 12),
    rate=st.integers(1, 3),
    stride=st.integers(1, 4),
    cuts=st.lists(st.integers(1, 299), max_size=5),
    seed=st.integers(0, 1000),
)
def test_windows_never_cross_segments_or_nonfinite_rows(n, window, rate, stride, cuts, seed):
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(n, 3)).astype(np.float32)
    f[rng.integers(0, n, 3)] = np.nan
    y = rng.integers(-1, 3, n).astype(np.int8)
    bounds = sorted({0, n, *[c for c in cuts if c < n]})
    segments = np.array(list(zip(bounds[:-1], bounds[1:])))
    ds = WindowDataset.from_arrays(f, y, segments, window, rate, stride)
    for e in ds.ends:
        s = e - ds.span + 1
        seg = segments[(segments[:, 0] <= e) & (e < segments[:, 1])][0]
        assert s >= seg[0] and np.isfinite(f[s : e + 1]).all() and y[e] >= 0


def test_inspect_reports_balance_checks_and_memory(tmp_path):
    from typer.testing import CliRunner

    from candleflow.cli import app
    from candleflow.dataset.inspect import inspect_dataset

    prep = prepare(load_config(None, SMALL))
    rep = inspect_dataset(prep)
    assert rep["problems"] == [] and rep["nonfinite_rows_in_windows"] == 0
    assert rep["split"]["train"]["batch"]["x"] == "(256, 24, 8) float32"
    total = sum(sum(p["classes"].values()) for p in rep["split"].values())
    assert total == sum(p["windows"] for p in rep["split"].values())
    assert rep["memory"]["materialised_windows_mb"] > rep["memory"]["features_mb"]
    prep.labels.t1[prep.dataset.ends[prep.split["train"][-1]]] = prep.split.starts["val"] + 5  # plant a leak
    assert any("look-ahead" in p for p in inspect_dataset(prep)["problems"])
    out = CliRunner().invoke(app, ["inspect", "--set", "source.n_bars=3000", "--set", "dataset.window=24"])
    assert out.exit_code == 0, out.output
    assert "all checks passed" in out.output and "materialised" in out.output


def test_the_generator_self_test_rates_what_it_draws(tiny_config):
    """N shuffled batches per part checked for shape, NaN/inf and one-hot labels, with memory
    growth and a rating; a NaN planted inside a window makes it fail, naming the batch."""
    from candleflow.dataset.inspect import test_generator

    prep = prepare(tiny_config())
    good = test_generator(prep, batches=3, batch_size=64)
    assert good["rating"] in ("good", "slow") and good["problems"] == [] and good["batches"] == 6
    assert set(good["parts"]) == {"train", "val"} and good["rss_growth_mb"] < 100
    features = np.array(prep.dataset.features)  # a writable copy, one value poisoned inside every window's span
    end = int(prep.dataset.ends[0])
    features[end] = np.nan
    prep.dataset.features = features
    prep.dataset._view = np.lib.stride_tricks.sliding_window_view(features, prep.dataset.window, axis=0).transpose(
        0, 2, 1
    )
    bad = test_generator(prep, batches=50, batch_size=64)
    assert bad["rating"] == "failing" and any("NaN/inf values" in p for p in bad["problems"])


def test_a_split_by_time_says_its_starts_as_dates():
    """issue 41: a universe's or panel's split is at instants; its summary gives dates, not
    nanosecond integers (a split of one series keeps its start bars)."""
    from candleflow.dataset.split import split_by_time

    hour = 3_600_000_000_000
    t0 = int(np.datetime64("2024-03-01T00:00", "ns").astype(np.int64))
    ends = t0 + np.arange(100, dtype=np.int64) * hour
    summary = split_by_time(ends, ends + hour, 0.2, 0.0).summary()
    assert summary["train"]["start"] == "2024-03-01T00:00:00" and summary["val"]["start"] == "2024-03-04T08:00:00"
    assert "start_bar" not in summary["val"]
