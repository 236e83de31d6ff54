"""candleflow's caches on disk (Binance files, yfinance bars, prepared data, store copies): their
entries, a size cap with least-recently-used eviction, and hit/miss counts kept beside them.

A cache folder may hold other things (a user's notes, links planted by someone else): only names
that match the cache's own layout are entries, links are never followed, and nothing outside the
folder is ever removed. "Used" is the entry's modification time, which a hit refreshes."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from filelock import FileLock

log = logging.getLogger("candleflow")

CacheKind = Literal["binance", "yfinance", "prepared", "stores"]
KINDS: tuple[CacheKind, ...] = ("binance", "yfinance", "prepared", "stores")
STATS = ".candleflow-cache.json"
STATS_LOCK = ".candleflow-cache.lock"
_PREPARED = re.compile(r"[0-9a-f]{32}")
_STORE_TAG = re.compile(r"[0-9a-f]{16}")
_BINANCE_ZIP = re.compile(r"[A-Z0-9]{1,40}-[0-9a-z]{1,4}-\d{4}-\d{2}(-\d{2})?\.zip")
_BINANCE_CANDLES = re.compile(r"[A-Z0-9]{1,40}-[0-9a-z]{1,4}\.parquet")
_YFINANCE = re.compile(r".{1,40}-[0-9a-z]{1,4}-[0-9a-f]{16}\.parquet")
_MAX_DEPTH = 12  # deeper folders are not ours (Binance's layout is 8 deep)


@dataclass(frozen=True)
class CacheEntry:
    """One unit of eviction: a file with its companions (a ZIP and its .CHECKSUM) or a folder.
    Paths are kept as strings (a cache may list a million of them) and made Paths on demand."""

    where: str
    also: tuple[str, ...]
    bytes: int
    last_used: float  # seconds since the epoch

    @property
    def path(self) -> Path:
        return Path(self.where)

    @property
    def companions(self) -> tuple[Path, ...]:
        return tuple(Path(p) for p in self.also)

    def remove(self) -> None:
        """Delete the entry; a link is removed, never its target."""
        for p in (self.path, *self.companions):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


def gb_to_bytes(gb: float | None) -> int | None:
    """A cap in GB (10^9 bytes) as bytes; None stays None (no cap)."""
    return None if gb is None else int(gb * 1e9)


def touch(path: Path) -> None:
    """Mark an entry used now (its modification time); a vanished entry is not an error."""
    try:
        os.utime(path, follow_symlinks=False)
    except OSError:
        pass


def _scan(root: Path) -> Iterator[tuple[str, dict[str, os.stat_result]]]:
    """Each folder under root with its regular files' stats (links, hidden temporaries and
    folders deeper than _MAX_DEPTH skipped); one scandir per folder, no second stat per file."""
    if root.is_symlink() or not root.is_dir():
        return
    stack = [(str(root), 0)]
    while stack:
        folder, depth = stack.pop()
        files: dict[str, os.stat_result] = {}
        try:
            with os.scandir(folder) as it:
                for d in it:
                    if d.name.startswith("."):  # temporaries of writes under way, our counts
                        continue
                    if d.is_dir(follow_symlinks=False):
                        if depth + 1 < _MAX_DEPTH:
                            stack.append((d.path, depth + 1))
                    elif d.is_file(follow_symlinks=False):
                        files[d.name] = d.stat(follow_symlinks=False)
        except OSError:
            continue
        yield folder, files


def _folder_entry(path: Path) -> CacheEntry | None:
    if path.is_symlink() or not path.is_dir():
        return None
    size = sum(st.st_size for _, files in _scan(path) for st in files.values())
    return CacheEntry(str(path), (), size, path.lstat().st_mtime)


def entries(kind: CacheKind, root: str | os.PathLike) -> list[CacheEntry]:
    """The cache's entries, least recently used first, under the folder's real path (the cache
    folder itself may be a link, e.g. to a larger disk; links inside it are never followed)."""
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        return []
    found: list[CacheEntry] = []
    if kind == "binance":
        for folder, files in _scan(root / "data"):
            for name, st in files.items():
                if _BINANCE_ZIP.fullmatch(name):
                    check = files.get(name + ".CHECKSUM")
                    also = (f"{folder}/{name}.CHECKSUM",) if check is not None else ()
                    size = st.st_size + (check.st_size if check is not None else 0)
                    found.append(CacheEntry(f"{folder}/{name}", also, size, st.st_mtime))
                elif name.endswith(".CHECKSUM") and _BINANCE_ZIP.fullmatch(name[: -len(".CHECKSUM")]):
                    if name[: -len(".CHECKSUM")] not in files:  # a checksum without its ZIP
                        found.append(CacheEntry(f"{folder}/{name}", (), st.st_size, st.st_mtime))
        for folder, files in _scan(root / "candles"):
            found += [
                CacheEntry(f"{folder}/{n}", (), st.st_size, st.st_mtime)
                for n, st in files.items()
                if _BINANCE_CANDLES.fullmatch(n)
            ]
    elif kind == "yfinance":
        for folder, files in _scan(root):
            if Path(folder).parent.parent == root:  # ticker/interval/file
                found += [
                    CacheEntry(f"{folder}/{n}", (), st.st_size, st.st_mtime)
                    for n, st in files.items()
                    if _YFINANCE.fullmatch(n)
                ]
    elif kind == "prepared":
        for p in root.iterdir():
            if _PREPARED.fullmatch(p.name) and (p / "meta.json").is_file():
                e = _folder_entry(p)
                if e is not None:
                    found.append(e)
    elif kind == "stores":
        for tag in root.iterdir():
            if not _STORE_TAG.fullmatch(tag.name) or tag.is_symlink() or not tag.is_dir():
                continue
            for series in tag.iterdir():
                if series.is_symlink() or not series.is_dir():
                    continue
                for version in series.iterdir():
                    e = _folder_entry(version)
                    if e is not None:
                        found.append(e)
    else:
        raise ValueError(f"unknown cache kind {kind!r}; expected one of {', '.join(KINDS)}")
    return sorted(found, key=lambda e: (e.last_used, e.where))


def evict(
    kind: CacheKind,
    root: str | os.PathLike,
    max_bytes: int | None,
    keep: Iterable[str | os.PathLike] = (),
    older_than: float | None = None,
    dry_run: bool = False,
) -> list[CacheEntry]:
    """Remove least-recently-used entries until the cache is within `max_bytes` (and, with
    `older_than` seconds, every entry unused for longer). Entries in `keep` (those the caller is
    using) stay even when that leaves the cache over its cap. Returns what was (or would be) removed."""
    root = Path(root).expanduser()
    if max_bytes is None and older_than is None:
        return []
    keep_set = {str(Path(k).expanduser().resolve()) for k in keep}
    listed = entries(kind, root)
    total = sum(e.bytes for e in listed)
    cutoff = None if older_than is None else time.time() - older_than
    removed: list[CacheEntry] = []
    for e in listed:
        over = max_bytes is not None and total > max_bytes
        stale = cutoff is not None and e.last_used < cutoff
        if not (over or stale):
            continue
        if e.where in keep_set:  # both real paths: entries() lists under the resolved root
            continue
        if not dry_run:
            e.remove()
        removed.append(e)
        total -= e.bytes
    if removed and not dry_run:
        record(kind, root, evicted=len(removed), evicted_bytes=sum(e.bytes for e in removed))
        log.info(
            "%s cache %s: evicted %d entries, %.1f MB", kind, root, len(removed), sum(e.bytes for e in removed) / 1e6
        )
    if max_bytes is not None and total > max_bytes and not dry_run:
        log.warning(
            "%s cache %s holds %.2f GB, over its cap of %.2f GB (cache.max_gb), in entries this run uses",
            kind,
            root,
            total / 1e9,
            max_bytes / 1e9,
        )
    return removed


def record(kind: CacheKind, root: str | os.PathLike, **counts: int) -> None:
    """Add to the cache's persistent counts (hits, misses, evicted, evicted_bytes); never fails a run."""
    root = Path(root).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(root / STATS_LOCK), timeout=10):
            stats = read_stats(root)
            for k, v in counts.items():
                stats[k] = int(stats.get(k, 0)) + int(v)
            stats["kind"] = kind
            tmp = root / f".{STATS}.{os.getpid()}.tmp"
            tmp.write_text(json.dumps(stats, indent=2, sort_keys=True))
            os.replace(tmp, root / STATS)
    except (OSError, TimeoutError) as exc:  # a read-only or contended cache still serves
        log.debug("%s cache %s: counts not recorded (%s)", kind, root, exc)


def read_stats(root: str | os.PathLike) -> dict[str, int | str]:
    """The cache's counts so far (zeros for a new cache or an unreadable counts file)."""
    path = Path(root).expanduser() / STATS
    try:
        if path.is_symlink() or path.stat().st_size > 65536:
            return {}
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, (int, str)) and not isinstance(v, bool)}


@dataclass
class CacheSummary:
    """What `candleflow cache list` shows for one cache folder."""

    kind: CacheKind
    root: Path
    entries: int
    bytes: int
    oldest: float | None
    newest: float | None
    hits: int
    misses: int
    evicted: int


def summarize(kind: CacheKind, root: str | os.PathLike) -> CacheSummary:
    """Entries, size, use times and counts of one cache folder."""
    root = Path(root).expanduser()
    listed = entries(kind, root)
    stats = read_stats(root)
    return CacheSummary(
        kind,
        root,
        len(listed),
        sum(e.bytes for e in listed),
        listed[0].last_used if listed else None,
        listed[-1].last_used if listed else None,
        int(stats.get("hits", 0)),
        int(stats.get("misses", 0)),
        int(stats.get("evicted", 0)),
    )


__all__ = [
    "KINDS",
    "CacheEntry",
    "CacheSummary",
    "entries",
    "evict",
    "gb_to_bytes",
    "read_stats",
    "record",
    "summarize",
    "touch",
]
