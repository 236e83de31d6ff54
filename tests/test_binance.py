"""Binance bulk data against the shared mirror served on 127.0.0.1, with injected faults."""

import datetime as dt
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from candleflow.config import BinanceSource, load_config
from candleflow.data.sources.binance.download import DownloadError
from candleflow.data.sources.binance.fetch import fetch_candles
from candleflow.data.sources.binance.listing import list_files, list_symbols, parse_listing
from candleflow.data.sources.binance.mirror import MirrorServer
from candleflow.data.sources.binance.plan import plan_files
from candleflow.errors import ConfigError
from candleflow.fs.caches import LEDGER, MARKER, STATS, STATS_LOCK
from candleflow.fs.digest import sha256_file
from conftest import BINANCE, needs

M1 = "data/spot/monthly/klines/BTCUSDT/1m/"
H1 = "data/spot/monthly/klines/BTCUSDT/1h/"


@pytest.fixture
def mirror(binance_dir):
    with MirrorServer(binance_dir.parents[1], page_size=3, stall_seconds=3) as srv:
        yield srv


def cfg(srv, tmp_path, **kw):
    base = dict(base_url=srv.url, cache_dir=str(tmp_path / "cache"), retries=3, timeout=1.0)
    return BinanceSource(**(base | kw))


def leftovers(root: Path):
    """Temporaries left behind (the cache's own counts and their lock are not temporaries)."""
    keep = {STATS, STATS_LOCK, MARKER, LEDGER}
    return [p for p in root.rglob("*") if p.name.startswith(".") and p.is_file() and p.name not in keep]


def test_plan_monthly_then_daily_and_clipped_to_yesterday():
    refs = plan_files("spot", "BTCUSDT", "1m", "2025-01", "2025-03-10", today=dt.date(2025, 3, 5))
    assert [r.period for r in refs] == ["2025-01", "2025-02", "2025-03-01", "2025-03-02", "2025-03-03", "2025-03-04"]
    assert refs[0].key == M1 + "BTCUSDT-1m-2025-01.zip"
    assert refs[2].key == "data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2025-03-01.zip"
    um = plan_files("um", "BTCUSDT", "1h", "2024-01-15", "2024-02", today=dt.date(2025, 1, 1))
    assert um[0].key == "data/futures/um/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01-15.zip"
    assert um[-1].key == "data/futures/um/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-02.zip" and len(um) == 18
    cm = plan_files("cm", "BTCUSD_PERP", "1mo", "2024-01", "2024-01", today=dt.date(2025, 1, 1))
    assert cm[0].key == "data/futures/cm/monthly/klines/BTCUSD_PERP/1mo/BTCUSD_PERP-1mo-2024-01.zip"
    with pytest.raises(ConfigError, match="'1s' is published for spot only"):
        plan_files("um", "BTCUSDT", "1s", "2024-01", "2024-01")
    with pytest.raises(ConfigError, match="interval '7m'"):
        plan_files("spot", "BTCUSDT", "7m", "2024-01", "2024-01")


def test_listing_pages_follow_the_marker(mirror):
    assert list_symbols(mirror.url) == ["BTCUSDT"]
    keys = list_files(mirror.url, "spot", "BTCUSDT", "1h")
    published = sorted(p.name for p in (BINANCE / "monthly/klines/BTCUSDT/1h").glob("*.zip"))  # 84 in the shared tree
    assert len(published) > 3 and keys == [H1 + name for name in published]  # pages of 3, followed by the marker
    prefixes, keys, truncated, marker = parse_listing(
        '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><IsTruncated>true</IsTruncated>'
        "<NextMarker>b</NextMarker><Contents><Key>a</Key></Contents>"
        "<CommonPrefixes><Prefix>p/</Prefix></CommonPrefixes></ListBucketResult>"
    )
    assert (prefixes, keys, truncated, marker) == (["p/"], ["a"], True, "b")


def test_2018_02_with_real_gaps(mirror, tmp_path, caplog):
    import logging

    needs(BINANCE / "monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2018-02.zip")
    with caplog.at_level(logging.INFO, logger="candleflow"):
        r = fetch_candles(cfg(mirror, tmp_path, interval="1m", start="2018-02", end="2018-02"))
    # issue 41: what is about to be downloaded, in bytes, from the host's own figures (HEAD)
    size = (BINANCE / "monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2018-02.zip").stat().st_size
    assert f"1 file to download: {size / 2**20:.1f} MB" in caplog.text
    assert r.report.rows_in == 38_260 and r.report.missing_bars == 40_320 - 38_260 and r.report.gaps > 0
    h = fetch_candles(cfg(mirror, tmp_path, interval="1h", start="2018-02", end="2018-02"))
    assert h.report.rows_in == 639 and h.report.missing_bars == 672 - 639
    assert (
        r.download.count("downloaded") == 1
        and sha256_file(r.download.paths[0])
        == (tmp_path / "cache" / (M1 + "BTCUSDT-1m-2018-02.zip.CHECKSUM")).read_text().split()[0]
    )
    import pyarrow.parquet as pq

    table = pq.read_table(h.parquet)
    assert table.num_rows == len(h.candles) and table.schema.metadata[b"fingerprint"].decode() == h.candles.fingerprint


def test_microsecond_2025_files_on_the_same_time_scale_as_2024(mirror, tmp_path):
    needs(*(BINANCE / f"monthly/klines/BTCUSDT/1m/BTCUSDT-1m-{m}.zip" for m in ("2024-06", "2025-01")))
    r = fetch_candles(cfg(mirror, tmp_path, interval="1m", start="2024-06", end="2025-01"))
    c = r.candles
    i = int(np.searchsorted(c.open_time, np.datetime64("2025-01-01", "ns").astype(np.int64)))
    assert c.time_str(i) == "2025-01-01T00:00:00" and c.time_str(i - 1) == "2024-06-30T23:59:00"
    assert r.report.segments == 2  # July to December 2024 are not in the mirror
    assert r.download.count("downloaded") == 2


def test_daily_files_fill_a_month_without_monthly_file(mirror, tmp_path, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="candleflow"):
        r = fetch_candles(cfg(mirror, tmp_path, interval="1m", start="2025-03", end="2025-03"))
    assert "1 file to download; the host does not state their sizes" in caplog.text  # the month is not published
    monthly = [x for x in r.download.results if x.ref.monthly]
    assert monthly[0].status == "missing" and len(monthly[0].replaced_by) == 31
    assert r.download.count("downloaded") == 7 and r.report.rows_in == 7 * 1440
    assert mirror.count("data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2025-03.zip") == 1  # a 404 is not retried


def test_cached_files_are_not_downloaded_again_and_damage_is_repaired(mirror, tmp_path):
    c = cfg(mirror, tmp_path, interval="1h", start="2024-01", end="2024-03")
    fetch_candles(c)
    key = H1 + "BTCUSDT-1h-2024-02.zip"
    assert mirror.count(key) == 1
    r = fetch_candles(c)
    assert r.download.count("cached") == 3 and mirror.count(key) == 1
    damaged = tmp_path / "cache" / key
    data = bytearray(damaged.read_bytes())
    data[100] ^= 0xFF
    damaged.write_bytes(bytes(data))
    r = fetch_candles(c)
    assert mirror.count(key) == 2 and r.download.count("downloaded") == 1


def test_file_url_mirror(binance_dir, tmp_path):
    c = BinanceSource(
        interval="1h", start="2024-01", end="2024-02", base_url=binance_dir.parents[1].as_uri(), cache_dir=str(tmp_path)
    )
    r = fetch_candles(c)
    assert r.report.rows_in == (31 + 29) * 24 and r.download.count("downloaded") == 2


@pytest.mark.parametrize(
    "faults", [["500", "500"], ["stall"], ["truncate"], ["reset"], ["corrupt"], ["500", "truncate", "reset"]]
)
def test_faults_recovered(mirror, tmp_path, faults):
    key = H1 + "BTCUSDT-1h-2024-01.zip"
    mirror.add_fault(key, *faults)
    r = fetch_candles(cfg(mirror, tmp_path, interval="1h", start="2024-01", end="2024-01"))
    assert r.download.count("downloaded") == 1 and r.report.rows_in == 744
    assert mirror.count(key) == len(faults) + 1
    assert leftovers(tmp_path / "cache") == []


def test_faults_that_persist_fail_with_a_clear_message_and_leave_nothing(mirror, tmp_path):
    key = H1 + "BTCUSDT-1h-2024-01.zip"
    mirror.add_fault(key, *["500"] * 4)
    with pytest.raises(DownloadError, match=r"BTCUSDT-1h-2024-01.zip: failed after 4 attempts; last error: HTTP 500"):
        fetch_candles(cfg(mirror, tmp_path, interval="1h", start="2024-01", end="2024-01"))
    mirror.add_fault(key, "corrupt", "corrupt")
    with pytest.raises(
        DownloadError, match=r"BTCUSDT-1h-2024-01.zip: checksum mismatch twice; expected sha256 [0-9a-f]{64}"
    ):
        fetch_candles(cfg(mirror, tmp_path, interval="1h", start="2024-01", end="2024-01"))
    cache = tmp_path / "cache"
    assert not (cache / key).exists() and leftovers(cache) == []


def test_unverified_when_asked(mirror, tmp_path):
    key = H1 + "BTCUSDT-1h-2024-01.zip"
    mirror.add_fault(key + ".CHECKSUM", "404")
    with pytest.raises(DownloadError, match="no checksum published"):
        fetch_candles(cfg(mirror, tmp_path, interval="1h", start="2024-01", end="2024-01"))
    r = fetch_candles(cfg(mirror, tmp_path, interval="1h", start="2024-01", end="2024-01", verify=False))
    assert r.download.count("downloaded") == 1


@pytest.mark.integration
def test_killed_mid_download_then_rerun_finishes_clean(binance_dir, tmp_path):
    key = M1 + "BTCUSDT-1m-2024-01.zip"
    needs(binance_dir.parents[1] / key)
    cache = tmp_path / "cache"
    with MirrorServer(binance_dir.parents[1], slow_chunk=16_384, slow_delay=0.05) as srv:
        srv.add_fault(key, "slow")
        args = [
            sys.executable,
            "-m",
            "candleflow.cli",
            "download",
            "--symbol",
            "BTCUSDT",
            "--interval",
            "1m",
            "--start",
            "2024-01",
            "--end",
            "2024-01",
            "--base-url",
            srv.url,
            "--cache-dir",
            str(cache),
        ]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline and not list((cache / M1).glob(".*.part")):
            time.sleep(0.05)
        part = list((cache / M1).glob(".*.part"))
        assert part, "the download never started"
        time.sleep(0.3)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not (cache / key).exists()  # nothing under the real name
        done = subprocess.run(args, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "44,640" in done.stdout
    assert (cache / key).exists() and leftovers(cache) == []
    assert sha256_file(cache / key) == (cache / (key + ".CHECKSUM")).read_text().split()[0]


def test_binance_source_in_run_config(mirror, tmp_path):
    c = load_config(
        None,
        [
            "source.kind=binance",
            f"source.base_url={mirror.url}",
            f"source.cache_dir={tmp_path}",
            "source.start=2024-01",
            "source.end=2024-03",
        ],
    )
    from candleflow.dataset.prepare import prepare

    prep = prepare(c)
    assert prep.candles.symbol == "BTCUSDT" and len(prep.candles) == (31 + 29 + 31) * 24
    assert len(prep.dataset) > 1000


@pytest.mark.integration
def test_download_cli_table_and_list(mirror, tmp_path):
    base = [sys.executable, "-m", "candleflow.cli", "download", "--base-url", mirror.url]
    env = dict(os.environ, COLUMNS="200")
    out = subprocess.run(
        base
        + [
            "--symbol",
            "BTCUSDT",
            "--interval",
            "1h",
            "--start",
            "2018-01",
            "--end",
            "2018-03",
            "--cache-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert "downloaded" in out.stdout and "2,127" in out.stdout and ".parquet" in out.stdout
    listing = subprocess.run(
        base + ["--list", "--symbol", "BTCUSDT", "--interval", "1h"], capture_output=True, text=True, env=env
    )
    published = len(list((BINANCE / "monthly/klines/BTCUSDT/1h").glob("*.zip")))  # 84 in the shared tree
    intervals = " ".join(sorted(p.name for p in (BINANCE / "monthly/klines/BTCUSDT").iterdir()))  # 1h 1m in shared
    assert f"{published} files" in listing.stdout and f"intervals {intervals}" in listing.stdout


def test_monthly_file_once_published_replaces_the_cached_daily_files(binance_dir, tmp_path):
    """March 2025 has no monthly file: its days come as daily files. When the mirror publishes the
    month, the next download fetches it, drops the daily files it covers from the cache, and the
    candles (the same bars) leave the Parquet untouched; a third download fetches nothing."""
    import io
    import zipfile

    from candleflow.data.sources.binance.mirror import MirrorServer

    days = [f"2025-03-{d:02d}" for d in range(1, 8)]
    src = binance_dir / "daily" / "klines" / "BTCUSDT" / "1m"
    mirror_daily = tmp_path / "mirror" / "data/spot/daily/klines/BTCUSDT/1m"
    mirror_daily.mkdir(parents=True)
    for day in days:
        for suffix in ("", ".CHECKSUM"):
            shutil.copy(src / f"BTCUSDT-1m-{day}.zip{suffix}", mirror_daily / f"BTCUSDT-1m-{day}.zip{suffix}")
    with MirrorServer(tmp_path / "mirror") as srv:
        c = cfg(srv, tmp_path, interval="1m", start="2025-03", end="2025-03")
        first = fetch_candles(c)
        assert first.download.count("downloaded") == 7 and first.download.superseded == 0
        cache_daily = tmp_path / "cache" / "data/spot/daily/klines/BTCUSDT/1m"
        assert len(list(cache_daily.glob("*.zip"))) == 7
        before = first.parquet.stat().st_ino  # a rewrite renames a new file into place

        # the month's file: the same rows as the seven days (this copy of the tree stops there)
        csv = b"".join(zipfile.ZipFile(src / f"BTCUSDT-1m-{d}.zip").read(f"BTCUSDT-1m-{d}.csv") for d in days)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("BTCUSDT-1m-2025-03.csv", csv)
        monthly = tmp_path / "mirror" / "data/spot/monthly/klines/BTCUSDT/1m"
        monthly.mkdir(parents=True)
        (monthly / "BTCUSDT-1m-2025-03.zip").write_bytes(buf.getvalue())
        digest = hashlib.sha256(buf.getvalue()).hexdigest()
        (monthly / "BTCUSDT-1m-2025-03.zip.CHECKSUM").write_text(f"{digest}  BTCUSDT-1m-2025-03.zip\n")

        second = fetch_candles(c)
        assert second.download.count("downloaded") == 1 and second.download.superseded == 7
        assert list(cache_daily.glob("*")) == []  # daily ZIPs and their checksums are gone
        assert second.candles.fingerprint == first.candles.fingerprint
        assert second.parquet.stat().st_ino == before  # the same bars: not rewritten
        third = fetch_candles(c)
        assert third.download.count("downloaded") == 0 and third.download.count("cached") == 1
        assert third.download.superseded == 0


def test_an_unreachable_host_is_one_line_at_once_naming_it_and_the_offline_ways(tmp_path, caplog):
    """Issue 41: the first try offline sat for minutes (retries x connect timeout x 84 files) with
    no word. It says what it is about to download, then fails on one request, naming the host."""
    import logging

    from candleflow.config import BinanceSource
    from candleflow.data.sources.binance.fetch import fetch_candles
    from candleflow.errors import DownloadError

    src = BinanceSource(
        symbol="BTCUSDT",
        interval="1h",
        start="2024-01",
        end="2024-03",
        base_url="http://127.0.0.1:9",
        cache_dir=str(tmp_path),
    )  # nothing listens on port 9: refused at once
    with caplog.at_level(logging.INFO, logger="candleflow"), pytest.raises(DownloadError) as info:
        fetch_candles(src)
    assert str(info.value).startswith("cannot reach 127.0.0.1 (ConnectError") and "file:///path/to/mirror" in str(
        info.value
    )
    assert "downloading 3 of 3 files from http://127.0.0.1:9 (0 in the cache)" in caplog.text
