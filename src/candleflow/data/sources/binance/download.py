"""Concurrent, verified, resumable downloads of Binance bulk-data files into a local cache.

Each ZIP streams to a hidden temporary file beside its final path while its sha256 is computed;
it is renamed into place only after it matches the published `.CHECKSUM`. A file in the cache is
trusted only if it still matches its cached checksum. So a run killed at any moment leaves at
most a hidden `.part` file, which the next run deletes before finishing the job.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import httpx

from candleflow.config import BinanceSource
from candleflow.data.sources.binance.plan import FileRef, daily_files_for_month
from candleflow.data.sources.files import max_csv_bytes
from candleflow.errors import DownloadError
from candleflow.fs.atomic import as_created, write_text
from candleflow.fs.caches import owns, remember, touch
from candleflow.fs.digest import sha256_file

log = logging.getLogger("candleflow")

CHUNK = 1 << 16
MAX_CHECKSUM_BYTES = 4096  # '<sha256>  <name>\n' is about 110 bytes


class NotFound(Exception):
    """The server says the file does not exist (HTTP 404 or a missing local file)."""


class Retryable(Exception):
    """A failure worth another try: 5xx, timeout, connection error, truncated body."""


def _default(name: str) -> Any:
    return BinanceSource.model_fields[name].default


@dataclass
class DownloadOptions:
    """How files are fetched; the defaults are `source` (binance) config's, declared there once."""

    base_url: str = _default("base_url")
    cache_dir: Path = Path(_default("cache_dir")).expanduser()
    concurrency: int = _default("concurrency")
    verify: bool = _default("verify")
    retries: int = _default("retries")
    backoff: float = 0.5  # seconds before the first retry, doubled after each
    timeout: float = _default("timeout")
    deadline: float = _default("deadline")  # seconds one attempt at one file may take in all


@dataclass
class FileResult:
    ref: FileRef
    status: str  # downloaded | cached | missing | failed
    path: Path | None = None
    bytes: int = 0
    error: str = ""
    replaced_by: list[FileRef] = field(default_factory=list)
    superseded: int = 0  # cached daily files this monthly file replaced (removed from the cache)


def parse_checksum(text: str, ref: FileRef) -> str:
    """The hex digest from a '<sha256>  <name>' line."""
    parts = text.strip().split()
    if not parts or len(parts[0]) != 64 or any(c not in "0123456789abcdef" for c in parts[0].lower()):
        raise DownloadError(f"{ref.checksum_key}: not a sha256 checksum line: {text.strip()[:80]!r}")
    return parts[0].lower()


class Fetcher:
    """Streams URLs under one base (https://, http:// or file://) with retries and backoff."""

    def __init__(self, opts: DownloadOptions, client: httpx.Client | None = None):
        self.opts = opts
        self.base = opts.base_url.rstrip("/")
        self.local = self.base.startswith("file://")
        self.client = client
        if not self.local and client is None:
            timeout = httpx.Timeout(opts.timeout, connect=min(opts.timeout, 10.0))
            limits = httpx.Limits(max_connections=opts.concurrency, max_keepalive_connections=opts.concurrency)
            self.client = httpx.Client(timeout=timeout, limits=limits, follow_redirects=True)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    REACH_SECONDS = 10.0  # a host that does not answer within this is unreachable: one line, at once

    def check_reachable(self) -> None:
        """One request to the host before the downloads (a local mirror needs none): a host that
        cannot be reached is one DownloadError naming it and the ways to work offline, within
        seconds, instead of every file's retries and timeouts one after another."""
        if self.local or self.client is None:
            return
        try:
            self.client.head(self.base + "/", timeout=httpx.Timeout(self.REACH_SECONDS))
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout) as exc:
            host = httpx.URL(self.base).host
            raise DownloadError(
                f"cannot reach {host} ({type(exc).__name__}: {str(exc)[:120] or 'no answer'}); offline? read a local "
                "copy of Binance's tree with source.base_url: file:///path/to/mirror (download --base-url), or your "
                "own files with source.kind: files"
            ) from None
        except httpx.HTTPError:  # it answered (any status): the downloads say what is missing
            return

    def url(self, key: str) -> str:
        return f"{self.base}/{key}"

    def local_path(self, key: str) -> Path:
        """The file behind `key` in a file:// mirror."""
        return Path(unquote(urlparse(self.url(key)).path))

    def size(self, key: str) -> int | None:
        """The file's size in bytes as the host states it (one HEAD request; a local mirror's
        stat), or None where it does not say (a missing month, a host without HEAD, an error)."""
        if self.local:
            path = self.local_path(key)
            return path.stat().st_size if path.is_file() else None
        if self.client is None:
            return None
        try:
            resp = self.client.head(self.url(key), timeout=httpx.Timeout(self.REACH_SECONDS))
        except httpx.HTTPError:
            return None
        length = resp.headers.get("content-length", "")
        return int(length) if resp.status_code == 200 and length.isdigit() else None

    def _stream_once(self, key: str) -> Iterator[bytes]:
        """The body of key in chunks; an attempt that outlasts `deadline` is cut off (retryable),
        so a server that drips a byte at a time cannot hold a download forever."""
        start = time.monotonic()
        chunks = self._chunks(key)
        try:
            for chunk in chunks:
                yield chunk
                if time.monotonic() - start > self.opts.deadline:
                    raise Retryable(f"no complete file within {self.opts.deadline:g} s (deadline)")
        finally:
            chunks.close()  # hang up now, not when the generator is collected

    def _chunks(self, key: str) -> Generator[bytes, None, None]:
        if self.local:
            path = self.local_path(key)
            try:
                fh = open(path, "rb")
            except FileNotFoundError:
                raise NotFound(key) from None
            with fh:
                yield from iter(lambda: fh.read(CHUNK), b"")
            return
        assert self.client is not None  # only a file:// mirror has no client
        try:
            with self.client.stream("GET", self.url(key)) as resp:
                if resp.status_code == 404:
                    raise NotFound(key)
                if resp.status_code >= 500:
                    raise Retryable(f"HTTP {resp.status_code}")
                if resp.status_code != 200:
                    raise DownloadError(f"{self.url(key)}: HTTP {resp.status_code}; expected 200")
                yield from resp.iter_bytes()  # as data arrives, so the deadline is checked often
        except httpx.TimeoutException as exc:
            raise Retryable(f"timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise Retryable(f"{type(exc).__name__}: {exc}") from None

    def with_retries(self, key: str, consume: Callable[[Iterator[bytes]], object]) -> object:
        """Run consume(stream of key) until it succeeds, retrying retryable failures with backoff."""
        last = ""
        for attempt in range(self.opts.retries + 1):
            try:
                return consume(self._stream_once(key))
            except Retryable as exc:
                last = str(exc)
                if attempt < self.opts.retries:
                    time.sleep(self.opts.backoff * (2**attempt) * (0.5 + random.random()))
        raise DownloadError(f"{self.url(key)}: failed after {self.opts.retries + 1} attempts; last error: {last}")

    def get_text(self, key: str, limit: int = MAX_CHECKSUM_BYTES) -> str:
        """A small text file, refused (DownloadError) beyond `limit` bytes."""
        data = self.with_retries(key, lambda chunks: read_limited(chunks, limit, self.url(key)))
        assert isinstance(data, bytes)
        return data.decode("utf-8", "replace")


def read_limited(chunks: Iterator[bytes], limit: int, what: str) -> bytes:
    """Join chunks, refusing more than `limit` bytes (the rest is never read)."""
    out, size = [], 0
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise DownloadError(f"{what}: more than {limit:,} bytes; expected a small file (refusing the rest)")
        out.append(chunk)
    return b"".join(out)


def _cached_checksum(sum_path: Path, ref: FileRef) -> str | None:
    """The cached checksum's digest, or None when it is missing, oversized or damaged."""
    try:
        if sum_path.stat().st_size > MAX_CHECKSUM_BYTES:
            return None
        return parse_checksum(sum_path.read_text(errors="replace"), ref)
    except (OSError, DownloadError):
        return None


def _remove_stale_parts(dest: Path) -> None:
    for stale in dest.parent.glob(f".{dest.name}.*.part"):
        stale.unlink(missing_ok=True)


def fetch_file(fetcher: Fetcher, ref: FileRef, on_bytes: Callable[[int], None] = lambda n: None) -> FileResult:
    """Bring one ZIP into the cache, verified; never leaves a partial file under its real name."""
    opts = fetcher.opts
    dest = opts.cache_dir / ref.key
    sum_path = opts.cache_dir / ref.checksum_key
    if dest.exists():
        reused = _reuse_cached(fetcher, ref, dest, sum_path)
        if reused is not None:
            return reused
    max_bytes = max_csv_bytes(ref.name) + (1 << 20)  # a ZIP is never much larger than its CSV
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_parts(dest)
    try:
        expected = None
        for _attempt in (1, 2):
            tmp, digest, size = _download_to_temp(fetcher, ref, dest, max_bytes, on_bytes)
            if not opts.verify:
                os.replace(tmp, dest)
                remember("binance", opts.cache_dir, [dest])
                return FileResult(ref, "downloaded", dest, size)
            if expected is None:
                try:
                    checksum_text = fetcher.get_text(ref.checksum_key)
                except NotFound:
                    tmp.unlink(missing_ok=True)
                    raise DownloadError(
                        f"{ref.checksum_key}: no checksum published; cannot verify "
                        f"{ref.name} (use --no-verify to accept it unverified)"
                    ) from None
                expected = parse_checksum(checksum_text, ref)
            if digest == expected:
                write_text(sum_path, checksum_text)
                os.replace(tmp, dest)
                remember("binance", opts.cache_dir, [dest, sum_path])
                return FileResult(ref, "downloaded", dest, size)
            tmp.unlink(missing_ok=True)
        raise DownloadError(f"{ref.name}: checksum mismatch twice; expected sha256 {expected}, got {digest}")
    except NotFound:
        return FileResult(ref, "missing")
    except DownloadError as exc:
        return FileResult(ref, "failed", error=str(exc))


def _reuse_cached(fetcher: Fetcher, ref: FileRef, dest: Path, sum_path: Path) -> FileResult | None:
    """A cached ZIP that still matches its checksum (or any, unverified) is used again; one that
    does not is removed (where candleflow wrote it) so it is fetched again (None), or reported
    as failed (where it did not)."""
    opts = fetcher.opts
    if not opts.verify:
        touch(dest)  # used now: the least recently used files are evicted first
        return FileResult(ref, "cached", dest)
    cached = _cached_checksum(sum_path, ref)
    if cached is not None and sha256_file(dest) == cached:
        touch(dest)
        return FileResult(ref, "cached", dest)
    if not owns("binance", opts.cache_dir, dest):  # not ours to replace: say so, remove nothing
        return FileResult(
            ref,
            "failed",
            error=f"{dest}: does not match its checksum and was not written by candleflow; "
            "move it out of the cache folder (binance cache_dir) and run again",
        )
    dest.unlink()  # damaged or unverifiable (or its checksum is): fetch both again
    sum_path.unlink(missing_ok=True)
    return None


def _download_to_temp(
    fetcher: Fetcher, ref: FileRef, dest: Path, max_bytes: int, on_bytes: Callable[[int], None]
) -> tuple[Path, str, int]:
    """One download (with the fetcher's retries) into a hidden temporary file beside `dest`,
    fsynced: (its path, sha256, size). Larger than `max_bytes` is refused mid-stream."""

    def consume(chunks: Iterator[bytes]) -> tuple[Path, str, int]:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        as_created(Path(tmp))
        h, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as fh:
                for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise DownloadError(
                            f"{ref.name}: more than {max_bytes:,} bytes, larger than any kline file of this "
                            "name can be; refusing it"
                        )
                    fh.write(chunk)
                    h.update(chunk)
                    on_bytes(len(chunk))
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return Path(tmp), h.hexdigest(), size

    return fetcher.with_retries(ref.key, consume)  # type: ignore[return-value]


def drop_superseded_dailies(cache_dir: Path, monthly: FileRef) -> int:
    """Remove the cached daily files (and checksums) of a month whose verified monthly file is in
    the cache: they were fetched while the monthly file was not yet published. Only files candleflow
    downloaded there are removed. Returns how many."""
    removed = 0
    for ref in daily_files_for_month(monthly):
        path = cache_dir / ref.key
        if path.is_file() and owns("binance", cache_dir, path):
            path.unlink()
            removed += 1
            check = cache_dir / ref.checksum_key
            if owns("binance", cache_dir, check):
                check.unlink(missing_ok=True)
    return removed


@dataclass
class DownloadReport:
    results: list[FileResult]
    seconds: float

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def superseded(self) -> int:
        """Cached daily files replaced by their month's file in this download."""
        return sum(r.superseded for r in self.results)

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.results)

    @property
    def paths(self) -> list[Path]:
        """Files on disk, in time order (the key sorts by period within a series)."""
        done = [r for r in self.results if r.status in ("downloaded", "cached") and r.path is not None]
        return [Path(r.path) for r in sorted(done, key=lambda r: r.ref.period) if r.path is not None]

    @property
    def failures(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "failed"]


SIZE_ALL_UP_TO = 64  # up to this many files every size is asked; above it, a spread sample's
SIZE_SAMPLE = 32


def _download_size(fetcher: Fetcher, wanted: list[FileRef], concurrency: int) -> str:
    """What the download will bring, said before it starts: the files' total size from the
    host's own figures (HEAD, concurrently), every file's where there are few, else an estimate
    from a spread sample of them."""
    exact = len(wanted) <= SIZE_ALL_UP_TO
    picks = wanted if exact else [wanted[i * (len(wanted) - 1) // (SIZE_SAMPLE - 1)] for i in range(SIZE_SAMPLE)]
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        sizes = [s for s in pool.map(lambda ref: fetcher.size(ref.key), picks) if s is not None]
    files = f"{len(wanted)} file{'' if len(wanted) == 1 else 's'} to download"
    if not sizes:
        return f"{files}; the host does not state their sizes"
    unknown = len(picks) - len(sizes)
    if exact:
        why = f" ({unknown} not stated: a month not yet published comes as its days)" if unknown else ""
        return f"{files}: {_mb(sum(sizes))}{why}"
    total = sum(sizes) / len(sizes) * len(wanted)
    return f"{files}: about {_mb(total)} (from the sizes of {len(sizes)} of them)"


def _mb(n: float) -> str:
    return f"{n / 2**30:.2f} GB" if n >= 2**30 else f"{n / 2**20:.1f} MB"


def download_files(
    refs: list[FileRef],
    opts: DownloadOptions,
    on_bytes: Callable[[int], None] = lambda n: None,
    on_done: Callable[[FileResult], None] = lambda r: None,
    on_more: Callable[[int], None] = lambda n: None,
) -> DownloadReport:
    """Fetch refs concurrently; a missing monthly file is replaced by its month's daily files."""
    t0 = time.perf_counter()
    fetcher = Fetcher(opts)
    results: list[FileResult] = []
    lock = threading.Lock()
    try:
        wanted = [ref for ref in refs if not (opts.cache_dir / ref.key).exists()]
        if wanted:
            log.info(
                "downloading %d of %d files from %s (%d in the cache)",
                len(wanted),
                len(refs),
                fetcher.base,
                len(refs) - len(wanted),
            )
            fetcher.check_reachable()  # seconds, not retries x timeouts x files, when offline
            log.info("%s", _download_size(fetcher, wanted, opts.concurrency))
        with ThreadPoolExecutor(max_workers=max(1, opts.concurrency)) as pool:
            pending = [pool.submit(fetch_file, fetcher, ref, on_bytes) for ref in refs]
            while pending:
                fut = pending.pop(0)
                res = fut.result()
                if res.status == "missing" and res.ref.monthly:
                    res.replaced_by = daily_files_for_month(res.ref)
                    on_more(len(res.replaced_by))
                    pending.extend(pool.submit(fetch_file, fetcher, r, on_bytes) for r in res.replaced_by)
                elif res.ref.monthly and res.status in ("downloaded", "cached"):
                    res.superseded = drop_superseded_dailies(opts.cache_dir, res.ref)
                with lock:
                    results.append(res)
                on_done(res)
    finally:
        fetcher.close()
    return DownloadReport(results, time.perf_counter() - t0)
