"""Cache caps: least-recently-used eviction, hit/miss counts, and `candleflow cache` list/prune,
on the prepared-data cache, the Binance cache (file:// mirror of the shared data) and store copies."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from candleflow.config import BinanceSource
from candleflow.data.sources.binance.fetch import fetch_candles
from candleflow.dataset.cache import DatasetCache, cache_key
from candleflow.fs.caches import LEDGER, MARKER, entries, evict, read_stats, remember
from candleflow.scale.store import SeriesStore

H1 = "data/spot/monthly/klines/BTCUSDT/1h/"


def _arrays(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "features": rng.standard_normal((n, 8)).astype(np.float32),
        "labels": rng.integers(0, 3, n).astype(np.int8),
        "t1": np.arange(n, dtype=np.int64),
    }


NOW = time.time()


def _age(path, seconds_ago: float) -> None:
    """Set a last use explicitly (from one fixed instant, so equal ages are equal times)."""
    t = NOW - seconds_ago
    os.utime(path, (t, t))


def _snapshot(root: Path) -> dict[str, int]:
    """Every file under root (links too) with its size: what must survive untouched."""
    return {str(p.relative_to(root)): p.lstat().st_size for p in sorted(root.rglob("*")) if not p.is_dir()}


def test_prepared_cache_evicts_the_least_recently_used_entry_and_counts_hits(tmp_path):
    root = tmp_path / "prepared"
    one = DatasetCache(root)  # no cap while filling
    keys = [cache_key(f"fp{i}", {"i": i}) for i in range(3)]
    for i, key in enumerate(keys[:2]):
        one.save(key, _arrays(20_000, i), {"i": i})
    entry_bytes = entries("prepared", root)[0].bytes
    assert 20_000 * (32 + 1 + 8) < entry_bytes < 20_000 * (32 + 1 + 8) + 4096  # the three .npy and meta.json
    _age(root / keys[0], 3600)  # keys[0] saved first, used an hour ago ...
    _age(root / keys[1], 60)
    (root / "notes.txt").write_text("mine")  # not an entry: never removed
    users = root / ("ab" * 16)  # a user's folder with an entry's name and files, not written by candleflow
    users.mkdir()
    (users / "meta.json").write_text("{}")
    _age(users, 7200)  # older than every entry: the first to go, were it ours
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "meta.json").write_text("{}")
    (root / ("f" * 32)).symlink_to(outside, target_is_directory=True)  # a planted link: not followed

    capped = DatasetCache(root, max_bytes=int(2.5 * entry_bytes))
    assert capped.load(keys[0]) is not None  # ... and now: keys[1] becomes the least recently used
    capped.save(keys[2], _arrays(20_000, 2), {"i": 2})
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == sorted(
        [keys[0], keys[2], "notes.txt", "f" * 32, "ab" * 16]
    )
    assert (users / "meta.json").read_text() == "{}"
    assert (outside / "meta.json").is_file()
    assert capped.load(keys[1]) is None
    stats = read_stats(root)
    assert (stats["hits"], stats["misses"], stats["evicted"]) == (1, 1, 1)
    assert stats["evicted_bytes"] == entry_bytes


def test_eviction_keeps_entries_in_use_even_over_the_cap(tmp_path, caplog):
    root = tmp_path / "prepared"
    cache = DatasetCache(root, max_bytes=1000)
    key = cache_key("fp", {})
    cache.save(key, _arrays(5_000, 0), {})
    assert (root / key).is_dir()  # the entry just written is the one the caller uses
    assert "over its cap" in caplog.text
    assert [e.path.name for e in evict("prepared", root, 1000, dry_run=True)] == [key]
    assert (root / key).is_dir()
    assert evict("prepared", root, None) == []  # no cap: nothing goes


def test_binance_cache_cap_evicts_older_months_never_the_range_in_use(binance_dir, tmp_path):
    cache = tmp_path / "binance"
    base = dict(interval="1h", base_url=binance_dir.parents[1].as_uri(), cache_dir=str(cache))
    first = fetch_candles(BinanceSource(start="2024-01", end="2024-02", **base))
    assert first.download.count("downloaded") == 2
    zips = {e.path.name: e for e in entries("binance", cache) if e.path.suffix == ".zip"}
    assert sorted(zips) == ["BTCUSDT-1h-2024-01.zip", "BTCUSDT-1h-2024-02.zip"]
    assert all(e.companions[0].name.endswith(".zip.CHECKSUM") for e in zips.values())
    for e in zips.values():  # both months last used at the same instant, checksums too
        for p in (e.path, *e.companions):
            _age(p, 3600)
    on_mirror = {
        m: sum(
            (binance_dir / "monthly/klines/BTCUSDT/1h" / f"BTCUSDT-1h-2024-{m}.zip{x}").stat().st_size
            for x in ("", ".CHECKSUM")
        )
        for m in ("01", "02", "03", "04")
    }
    assert on_mirror["01"] == zips["BTCUSDT-1h-2024-01.zip"].bytes
    # room for the new range (two months and the candles Parquet) and one older month, not two
    slack = min(on_mirror["01"], on_mirror["02"]) // 2
    cap = (
        on_mirror["03"] + on_mirror["04"] + max(on_mirror["01"], on_mirror["02"]) + first.parquet.stat().st_size + slack
    )
    second = fetch_candles(BinanceSource(start="2024-03", end="2024-04", **base), max_cache_bytes=cap)
    assert second.download.count("downloaded") == 2
    left = sorted(e.path.name for e in entries("binance", cache))
    assert "BTCUSDT-1h-2024-03.zip" in left and "BTCUSDT-1h-2024-04.zip" in left and "BTCUSDT-1h.parquet" in left
    assert "BTCUSDT-1h-2024-01.zip" not in left and "BTCUSDT-1h-2024-02.zip" in left  # equally old: by name
    assert not (cache / H1 / "BTCUSDT-1h-2024-01.zip.CHECKSUM").exists()  # evicted with its ZIP
    third = fetch_candles(BinanceSource(start="2024-03", end="2024-04", **base), max_cache_bytes=cap)
    assert third.download.count("cached") == 2
    stats = read_stats(cache)
    assert (stats["misses"], stats["hits"], stats["evicted"]) == (4, 2, 1)


def _cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "candleflow.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_cache_command_lists_counts_and_prunes_only_what_it_is_asked(binance_dir, tmp_path):
    cache = tmp_path / "binance"
    src = BinanceSource(
        interval="1h", start="2024-01", end="2024-02", base_url=binance_dir.parents[1].as_uri(), cache_dir=str(cache)
    )
    fetch_candles(src)
    fetch_candles(src)
    (cache / "README.txt").write_text("my notes")
    listed = _cli(
        "cache", "list", "--kind", "binance", "--folder", str(cache), "--json", "--entries", "1", cwd=tmp_path
    )
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert (row["entries"], row["hits"], row["misses"], row["evicted"]) == (3, 2, 2, 0)
    assert len(row["lru_entries"]) == 1
    table = _cli("cache", "list", "--kind", "binance", "--folder", str(cache), cwd=tmp_path)
    assert table.returncode == 0 and "50%" in table.stdout  # hit rate

    dry = _cli(
        "cache", "prune", "--kind", "binance", "--folder", str(cache), "--max-gb", "0", "--dry-run", cwd=tmp_path
    )
    assert dry.returncode == 0 and "would remove 3 entries" in dry.stdout
    assert len(entries("binance", cache)) == 3
    old = _cli("cache", "prune", "--kind", "binance", "--folder", str(cache), "--older-than", "1", cwd=tmp_path)
    assert "removed 0 entries" in old.stdout  # all used today
    done = _cli("cache", "prune", "--kind", "binance", "--folder", str(cache), "--max-gb", "0", cwd=tmp_path)
    assert done.returncode == 0 and "removed 3 entries" in done.stdout
    assert entries("binance", cache) == [] and (cache / "README.txt").read_text() == "my notes"

    bad = _cli("cache", "list", "--kind", "bogus", cwd=tmp_path)
    assert bad.returncode != 0 and "--kind bogus: expected one of binance, yfinance, prepared, stores" in bad.stderr
    two = _cli("cache", "prune", "--kind", "binance", "--kind", "prepared", "--folder", str(cache), cwd=tmp_path)
    assert two.returncode != 0 and "--folder needs exactly one --kind" in two.stderr


def _store_entry(store: SeriesStore, name: str, n: int) -> dict:
    rng = np.random.default_rng(len(name))
    arrays = {
        "features": rng.standard_normal((n, 8)).astype(np.float32),
        "labels": rng.integers(0, 3, n).astype(np.int8),
        "t1": np.arange(n, dtype=np.int64),
        "open_time": np.arange(n, dtype=np.int64) * 3_600_000_000_000,
        "segments": np.array([[0, n]], dtype=np.int64),
    }
    table = pa.table({"open_time": arrays["open_time"], **{c: np.ones(n) for c in ("open", "high", "low", "close")}})
    return store.write_entry(name, "ab" * 16, arrays, table, {"rows": n})


def test_store_copies_are_capped_but_not_while_one_store_object_uses_them(tmp_path):
    url = f"memory://cf-cache-{tmp_path.name}"
    writer = SeriesStore(url)
    writer.commit([_store_entry(writer, name, 20_000) for name in ("AAA-1h", "BBB-1h")])
    copies = tmp_path / "copies"
    one = SeriesStore(url, cache_dir=copies, cache_max_bytes=100_000)  # smaller than one copy
    a, b = one.open("AAA-1h"), one.open("BBB-1h")
    assert a.folder.is_dir() and b.folder.is_dir()  # both in use by this object: kept over the cap
    _age(a.folder, 600)
    _age(b.folder, 60)
    other = SeriesStore(url, cache_dir=copies, cache_max_bytes=100_000)
    assert other.open("BBB-1h").folder == b.folder  # a hit: nothing copied, nothing evicted
    assert a.folder.is_dir()
    other.open("AAA-1h")  # a hit as well
    stats = read_stats(copies)
    assert (stats["misses"], stats["hits"]) == (2, 2)
    third = SeriesStore(url, cache_dir=copies, cache_max_bytes=1)
    (b_entry,) = [e for e in entries("stores", copies) if e.path == b.folder]
    b_entry.remove()  # BBB's copy gone: opening it again copies it and evicts AAA (not in use by `third`)
    third.open("BBB-1h")
    assert not a.folder.exists() and b.folder.is_dir()
    assert read_stats(copies)["evicted"] == 1


@pytest.mark.parametrize("kind", ["prepared", "stores", "binance", "yfinance"])
def test_eviction_never_leaves_the_cache_folder(tmp_path, kind):
    root = tmp_path / "cache"
    root.mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "BTCUSDT-1h-2024-01.zip").write_bytes(b"x" * 100)
    (victim / "meta.json").write_text("{}")
    (root / "data").symlink_to(victim, target_is_directory=True)
    (root / "0123456789abcdef").symlink_to(victim, target_is_directory=True)
    # even a ledger that names the links (planted, or a path once ours replaced by a link) frees nothing
    remember(kind, root, [root / "data" / "BTCUSDT-1h-2024-01.zip", root / "0123456789abcdef", root / "data"])
    assert evict(kind, root, 0) == []
    assert sorted(p.name for p in victim.iterdir()) == ["BTCUSDT-1h-2024-01.zip", "meta.json"]


def test_a_cache_folder_that_is_a_link_is_capped_through_it(tmp_path):
    real = tmp_path / "big-disk" / "prepared"
    real.mkdir(parents=True)
    link = tmp_path / "prepared"
    link.symlink_to(real, target_is_directory=True)  # e.g. ~/.cache/candleflow/prepared on another disk
    cache = DatasetCache(link, max_bytes=1)
    first, second = cache_key("a", {}), cache_key("b", {})
    cache.save(first, _arrays(1_000, 0), {})
    _age(link / first, 60)
    cache.save(second, _arrays(1_000, 1), {})  # kept although over the cap: the entry just written
    assert sorted(p.name for p in real.iterdir() if not p.name.startswith(".")) == [second]
    assert [e.path for e in entries("prepared", link)] == [real / second]


def test_prune_refuses_a_binance_tree_and_a_user_folder_it_never_wrote(binance_dir, tmp_path):
    """A copy of Binance's public tree has exactly the layout of the Binance cache, and a user's
    folder may hold a 32-hex folder with a meta.json: neither carries candleflow's marker, so prune
    refuses them in one line, --dry-run included, and every file stays as it was."""
    mirror = tmp_path / "mirror"
    shutil.copytree(binance_dir.parents[1], mirror)  # data/spot/... as published (200 files in the shared tree)
    before = _snapshot(mirror)
    assert len(before) >= 28 and all(name.endswith((".zip", ".CHECKSUM")) for name in before)
    for extra in (["--max-gb", "0"], ["--max-gb", "0", "--dry-run"], ["--older-than", "0"]):
        out = _cli("cache", "prune", "--kind", "binance", "--folder", str(mirror), *extra, cwd=tmp_path)
        assert out.returncode == 2, out.stdout
        assert out.stderr.strip() == (
            f"error: {mirror}: not a candleflow binance cache (no {MARKER} marker, which candleflow writes with "
            "the first entry it caches there); refusing to remove anything from it"
        )
    assert _snapshot(mirror) == before  # every file intact, nothing of ours written into it
    assert evict("binance", mirror, 0) == [] and _snapshot(mirror) == before  # the library call too

    user = tmp_path / "work"
    (user / ("0f" * 16)).mkdir(parents=True)
    (user / ("0f" * 16) / "meta.json").write_text('{"mine": true}')
    (user / "notes.txt").write_text("beside it")
    kept = _snapshot(user)
    out = _cli("cache", "prune", "--kind", "prepared", "--folder", str(user), "--max-gb", "0", cwd=tmp_path)
    assert out.returncode == 2 and "not a candleflow prepared cache" in out.stderr
    listed = _cli("cache", "list", "--kind", "prepared", "--folder", str(user), cwd=tmp_path)
    assert listed.returncode == 2 and "not a candleflow prepared cache" in listed.stderr
    missing = _cli("cache", "list", "--kind", "prepared", "--folder", str(tmp_path / "nope"), cwd=tmp_path)
    assert missing.returncode == 2 and "nope: not a candleflow prepared cache" in missing.stderr
    assert _snapshot(user) == kept


def test_a_marked_cache_evicts_only_what_its_ledger_records(binance_dir, tmp_path):
    """Files a user copies into candleflow's own Binance cache (same names, same layout) are not
    candleflow's: pruning removes the downloaded months and leaves the copied ones."""
    cache = tmp_path / "binance"
    src = BinanceSource(
        interval="1h", start="2024-01", end="2024-01", base_url=binance_dir.parents[1].as_uri(), cache_dir=str(cache)
    )
    fetch_candles(src)
    assert json.loads((cache / MARKER).read_text())["kind"] == "binance"
    copied = cache / H1 / "BTCUSDT-1h-2024-02.zip"
    for suffix in ("", ".CHECKSUM"):
        shutil.copy(binance_dir / "monthly/klines/BTCUSDT/1h" / f"BTCUSDT-1h-2024-02.zip{suffix}", f"{copied}{suffix}")
    assert sorted(e.path.name for e in entries("binance", cache)) == ["BTCUSDT-1h-2024-01.zip", "BTCUSDT-1h.parquet"]
    out = _cli("cache", "prune", "--kind", "binance", "--folder", str(cache), "--max-gb", "0", cwd=tmp_path)
    assert out.returncode == 0 and "removed 2 entries" in out.stdout, out.stderr
    assert copied.is_file() and Path(f"{copied}.CHECKSUM").is_file()
    assert not (cache / H1 / "BTCUSDT-1h-2024-01.zip").exists()
    assert (cache / LEDGER).read_text() == ""  # what was removed is forgotten


def test_eviction_keeps_a_users_file_inside_an_entry_and_a_user_folder_is_not_made_a_cache(tmp_path, caplog):
    """Issue 42: `cache prune` removed a user's file placed inside an entry candleflow wrote (the
    entry went with rmtree), and naming a user's folder as dataset.cache_dir wrote candleflow's
    marker and ledger into it. An entry loses only its own files; a folder with files of someone
    else's is refused as a cache in one line."""
    import logging

    from candleflow.errors import CacheError

    root = tmp_path / "prepared"
    cache = DatasetCache(root)
    keys = [cache_key(f"fp{i}", {"i": i}) for i in range(2)]
    for i, key in enumerate(keys):
        cache.save(key, _arrays(1000, i), {"i": i})
    (root / keys[0] / "my-notes.txt").write_text("mine")
    with caplog.at_level(logging.WARNING, logger="candleflow"):
        gone = evict("prepared", root, 0)
    assert len(gone) == 2 and not (root / keys[1]).exists()
    assert sorted(p.name for p in (root / keys[0]).iterdir()) == ["my-notes.txt"]
    assert (root / keys[0] / "my-notes.txt").read_text() == "mine" and "candleflow did not write" in caplog.text

    mine = tmp_path / "my-project"
    mine.mkdir()
    (mine / "data.csv").write_text("x")
    with pytest.raises(CacheError, match=r"my-project: a folder with files candleflow did not write \(no "):
        DatasetCache(mine)
    assert sorted(p.name for p in mine.iterdir()) == ["data.csv"]  # no marker, no ledger
    DatasetCache(tmp_path / "new-cache")  # a new folder (or an empty one) is fine


def test_the_tests_never_touch_the_users_home():
    """A default cache folder resolves inside the temporary home."""
    from candleflow.config import load_config

    cfg = load_config(None, [])
    folders = cfg.cache_folders()
    assert all(str(p).startswith(os.environ["HOME"]) for p in folders.values() if p is not None), folders
