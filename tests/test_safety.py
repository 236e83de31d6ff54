"""Nothing deleted that the user did not ask for, nothing written outside its place, and hostile
mirrors, listings and stores held at arm's length."""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np
import pytest

from candleflow.config import BinanceSource
from candleflow.data.sources.binance.download import DownloadError
from candleflow.data.sources.binance.fetch import fetch_candles
from candleflow.data.sources.binance.listing import list_prefix
from candleflow.data.sources.binance.mirror import MirrorServer
from candleflow.errors import DataError, SourceError, StoreError
from candleflow.fs.atomic import atomic_dir, write_text
from candleflow.fs.guard import MARKER, check_name, check_output, inside
from candleflow.scale.store import SeriesStore, check_record

DAILY = "data/spot/daily/klines/BTCUSDT/1h/"
H1 = "data/spot/monthly/klines/BTCUSDT/1h/"


# --- never replace what candleflow did not write ----------------------------------------------


def test_check_output_refuses_what_the_user_owns(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "mine.txt").write_text("mine")
    (tmp_path / "file.npz").write_bytes(b"mine")
    (tmp_path / "empty").mkdir()
    for target, overwrite, message in [
        (".", True, "working folder"),
        ("..", True, "working folder or one of its parents"),
        ("/", True, "file system root"),
        (str(Path.home()), True, "home folder"),
        ("keep", False, "exists and is not empty"),
        ("keep", True, "was not written by candleflow"),
        ("file.npz", False, "exists; name a new one, or pass --overwrite"),
    ]:
        with pytest.raises(DataError, match=message):
            check_output(target, overwrite)
    assert check_output("new", False) == Path("new")
    assert check_output("empty", False) == Path("empty")
    assert check_output("file.npz", True) == Path("file.npz")
    (tmp_path / "keep" / MARKER).write_text("")
    assert check_output("keep", True) == Path("keep")
    assert (tmp_path / "keep" / "mine.txt").read_text() == "mine"  # checking deletes nothing


def test_atomic_dir_never_replaces_a_folder_it_did_not_write(tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    (user / "mine.txt").write_text("mine")
    with pytest.raises(DataError, match="not written by candleflow"):
        with atomic_dir(user, replace=True) as tmp:
            (tmp / "new").write_text("x")
    assert (user / "mine.txt").read_text() == "mine"
    ours = tmp_path / "ours"
    with atomic_dir(ours) as tmp:
        (tmp / "a").write_text("1")
    assert (ours / MARKER).is_file()
    with atomic_dir(ours, replace=True) as tmp:  # candleflow's own folder: replaced whole
        (tmp / "b").write_text("2")
    assert sorted(p.name for p in ours.iterdir()) == sorted([MARKER, "b"])
    with pytest.raises(FileExistsError):
        with atomic_dir(ours) as tmp:
            pass
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary leftovers


def test_overwrite_replaces_only_candleflows_output(tmp_path):
    from candleflow.rewards.samples import RewardSamples, load_samples, save_samples

    n = 4
    s = RewardSamples(
        np.zeros((n, 3, 5), np.float32),
        np.zeros((n, 6), np.float32),
        np.zeros((n, 4), np.float32),
        np.arange(n, dtype=np.float32),
        np.arange(n, dtype=np.int64),
        np.arange(n, dtype=np.int64),
    )
    out = tmp_path / "r.zarr"
    save_samples(s, out)
    with pytest.raises(DataError, match="exists and is not empty"):
        save_samples(s, out)
    save_samples(s, out, overwrite=True)
    assert load_samples(out).reward.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_atomic_writes_respect_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        write_text(tmp_path / "f.txt", "x")
        with atomic_dir(tmp_path / "d"):
            pass
    finally:
        os.umask(old)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o777 & ~umask


# --- names and paths from elsewhere -------------------------------------------------------------


@pytest.mark.parametrize("name", ["..", "../x", "/etc", "a/b", ".hidden", "", "x" * 129, "a..b", "[/]", "a b", None, 5])
def test_unsafe_names_are_refused(name):
    with pytest.raises(DataError, match="not a safe name"):
        check_name(name, "entry name")


def test_safe_names_pass():
    for name in ["BTCUSDT", "BTCUSD_PERP", "1000PEPEUSDT", "btc-usdt.v2", "x" * 128]:
        assert check_name(name, "symbol") == name


def test_inside_refuses_escapes(tmp_path):
    (tmp_path / "root").mkdir()
    os.symlink("/etc", tmp_path / "root" / "link")
    assert inside(tmp_path / "root", "a", "b") == (tmp_path / "root" / "a" / "b").resolve()
    for parts in (("..",), ("a", "../../x"), ("/etc/passwd",), ("link", "passwd")):
        with pytest.raises(DataError, match="outside"):
            inside(tmp_path / "root", *parts)


def test_store_records_are_checked_before_their_names_become_paths(tmp_path):
    files = {
        f: {"bytes": 1, "sha256": "0" * 64}
        for f in [*(f"{a}.npy" for a in ("features", "labels", "t1", "open_time", "segments")), "candles.parquet"]
    }
    good = {"name": "BTC", "version": "0" * 16 + "-" + "a" * 8, "files": files}
    assert check_record("s", "BTC", good) is good
    for name, rec, message in [
        ("../x", dict(good, name="../x"), "not a safe name"),
        ("BTC", dict(good, name="ETH"), "not a mapping with that name"),
        ("BTC", dict(good, version="../../tmp"), "version"),
        ("BTC", dict(good, files={**files, "../evil": files["t1.npy"]}), "lists files"),
        ("BTC", dict(good, files={**files, "t1.npy": {"bytes": 2**50, "sha256": "0" * 64}}), "bytes"),
        ("BTC", "not a dict", "not a mapping"),
    ]:
        with pytest.raises(StoreError, match=message):
            check_record("s", name, rec)
    store = tmp_path / "store"
    store.mkdir()
    (store / "manifest.json").write_text(
        json.dumps({"format": 1, "updated": None, "entries": {"../../x": dict(good, name="../../x")}})
    )
    with pytest.raises(StoreError, match="not a safe name"):
        SeriesStore(str(store)).manifest()


# --- a mirror serves only its own files ---------------------------------------------------------


def test_mirror_server_is_confined_to_its_root(tmp_path):
    root = tmp_path / "mirror"
    (root / "data").mkdir(parents=True)
    (root / "data" / "ok.txt").write_text("ok")
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path / "secret.txt", root / "data" / "link.txt")
    with MirrorServer(root) as srv, httpx.Client() as c:
        assert c.get(f"{srv.url}/data/ok.txt").text == "ok"
        for path in ["/%2Fetc%2Fpasswd", "/..%2Fsecret.txt", "/data/..%2F..%2Fsecret.txt", "/data/link.txt", "/%00"]:
            r = c.get(srv.url + path)
            assert r.status_code == 404 and b"secret" not in r.content and b"root:" not in r.content, path
        listing = c.get(f"{srv.url}/", params={"prefix": "../../", "delimiter": ""}).text
        assert "secret" not in listing and "<Contents>" not in listing


# --- hostile mirrors ----------------------------------------------------------------------------


def _publish(root: Path, key: str, data: bytes) -> None:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    (root / (key + ".CHECKSUM")).write_text(f"{hashlib.sha256(data).hexdigest()}  {path.name}\n")


def _zip(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, data)
    return buf.getvalue()


def _source(srv, tmp_path, **kw) -> BinanceSource:
    base = dict(
        base_url=srv.url,
        cache_dir=str(tmp_path / "cache"),
        retries=0,
        timeout=2.0,
        interval="1h",
        start="2024-01-01",
        end="2024-01-01",
    )
    return BinanceSource(**(base | kw))


def test_a_zip_bomb_from_a_mirror_is_refused_before_it_expands(tmp_path):
    root = tmp_path / "mirror"
    bomb = _zip("BTCUSDT-1h-2024-01-01.csv", b"0" * 50_000_000)  # 50 MB of CSV in about 50 kB
    _publish(root, DAILY + "BTCUSDT-1h-2024-01-01.zip", bomb)
    with MirrorServer(root) as srv:
        with pytest.raises(SourceError, match="declares 50,000,000 bytes uncompressed; at most 10,496"):
            fetch_candles(_source(srv, tmp_path))


def test_a_file_larger_than_any_kline_file_is_not_downloaded_whole(tmp_path):
    root = tmp_path / "mirror"
    _publish(root, DAILY + "BTCUSDT-1h-2024-01-01.zip", os.urandom(3 << 20))
    with MirrorServer(root) as srv:
        with pytest.raises(DownloadError, match="more than 1,059,072 bytes, larger than any kline file"):
            fetch_candles(_source(srv, tmp_path))
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_a_huge_checksum_is_refused(tmp_path):
    root = tmp_path / "mirror"
    key = DAILY + "BTCUSDT-1h-2024-01-01.zip"
    _publish(root, key, _zip("BTCUSDT-1h-2024-01-01.csv", b"1,2,3\n"))
    (root / (key + ".CHECKSUM")).write_bytes(b"a" * (10 << 20))
    with MirrorServer(root) as srv:
        with pytest.raises(DownloadError, match="CHECKSUM: more than 4,096 bytes"):
            fetch_candles(_source(srv, tmp_path))


def test_a_slow_drip_is_cut_off_by_the_deadline(binance_dir, tmp_path):
    key = H1 + "BTCUSDT-1h-2024-01.zip"
    with MirrorServer(binance_dir.parents[1], slow_chunk=256, slow_delay=0.2) as srv:
        srv.add_fault(key, "slow")
        src = _source(srv, tmp_path, start="2024-01", end="2024-01", deadline=1.0)
        with pytest.raises(DownloadError, match=r"no complete file within 1 s \(deadline\)"):
            fetch_candles(src)


def test_a_damaged_cached_checksum_is_fetched_again(binance_dir, tmp_path):
    key = H1 + "BTCUSDT-1h-2024-01.zip"
    with MirrorServer(binance_dir.parents[1]) as srv:
        src = _source(srv, tmp_path, start="2024-01", end="2024-01")
        fetch_candles(src)
        (tmp_path / "cache" / (key + ".CHECKSUM")).write_bytes(b"\xff\xfe garbage")
        r = fetch_candles(src)
        assert srv.count(key) == 2 and r.download.count("downloaded") == 1 and r.report.rows_in == 744


class _Listing(BaseHTTPRequestHandler):
    body = b""

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)


def _serve_listing(body: bytes):
    handler = type("H", (_Listing,), {"body": body})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.mark.parametrize(
    "body, message",
    [
        (
            b"<ListBucketResult><IsTruncated>true</IsTruncated><NextMarker>data/a</NextMarker>"
            b"<Contents><Key>data/a</Key></Contents></ListBucketResult>",
            "marker did not advance",
        ),
        (
            b"<ListBucketResult><IsTruncated>false</IsTruncated>"
            b"<Contents><Key>../../etc/passwd</Key></Contents></ListBucketResult>",
            "outside the prefix",
        ),
        (
            b"<ListBucketResult>" + b"<Contents><Key>data/x</Key></Contents>" * 300_000 + b"</ListBucketResult>",
            "more than 8,388,608 bytes",
        ),
    ],
)
def test_hostile_listings_end_in_a_clear_error(body, message):
    server, url = _serve_listing(body)
    try:
        with pytest.raises(DownloadError, match=message):
            list_prefix(url, "data/")
    finally:
        server.shutdown()


def test_a_full_disk_is_one_line_naming_the_file_and_nothing_is_replaced(tmp_path):
    """ENOSPC while writing (simulated: the write raises it, as a full disk or quota does) names
    the file and the free space; the existing file keeps its bytes and no temporary is left."""
    import errno

    from candleflow.errors import DataError
    from candleflow.fs.atomic import atomic_dir, atomic_path

    target = tmp_path / "signals.parquet"
    target.write_bytes(b"the old signals")
    with pytest.raises(DataError, match=r"signals.parquet: no space left on the device while writing it \(.* free\)"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert target.read_bytes() == b"the old signals" and sorted(p.name for p in tmp_path.iterdir()) == [
        "signals.parquet"
    ]
    with pytest.raises(DataError, match=r"bundle: no space left on the device"):
        with atomic_dir(tmp_path / "bundle") as tmp:
            raise OSError(errno.ENOSPC, "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["signals.parquet"]


@pytest.mark.integration
def test_a_build_stopped_by_sigterm_leaves_no_temporary_file(tmp_path):
    """Issue 42: a reward build killed by a signal left an 843 MB hidden temporary file beside its
    target. SIGTERM now unwinds like Ctrl-C: the temporary goes, nothing looks complete. The signal
    is sent once the temporary file exists (no timing), and the build is large enough to be running."""
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "candleflow.cli",
            "rewards",
            "--set",
            "source.n_bars=3000",
            "--n",
            "5000000",
            "--out",
            "r.npz",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240  # a bound for a broken build, not a timing the test depends on
        while not [p for p in tmp_path.iterdir() if p.name.startswith(".r.npz")]:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no temporary file appeared"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert sorted(p.name for p in tmp_path.iterdir()) == [], err  # no temporary, no r.npz


@pytest.mark.integration
def test_a_full_disk_is_one_line_naming_what_was_being_written(tmp_path):
    """Issue 42: a full disk was reported without its path (NumPy's '160000 requested and 49968
    written'). A file size limit stands in for the full disk (the same short write): one line
    naming the cache entry, and no temporary left."""
    import subprocess
    import sys

    cache = tmp_path / "prepared"
    # the limit is set inside the child, before candleflow loads (no preexec_fn: a fork of this
    # process, which runs JAX's threads, could deadlock); SIGXFSZ ignored: the write fails, no kill
    code = (
        "import resource, runpy, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))\n"
        f"sys.argv = ['candleflow', 'prepare', '--set', 'source.n_bars=20000', '--set', 'dataset.cache_dir={cache}']\n"
        "runpy.run_module('candleflow.cli', run_name='__main__')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error: ")]
    assert f"{cache}/" in line and "no space left on the device" in line and "nothing was replaced" in line
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]
