"""candleflow's caches on disk (Binance files, yfinance bars, prepared data, store copies): their
entries, a size cap with least-recently-used eviction, and hit/miss counts kept beside them.

Nothing is removed that candleflow did not write. A folder becomes a cache when candleflow first
writes an entry into it: it then carries a marker (`.candleflow-cache`, naming the cache's kind)
and a ledger (`.candleflow-entries`, one path per entry written). Eviction and `candleflow cache
prune` consider only entries that are in the ledger *and* match the cache's own layout; a folder
without the marker is refused (`CacheError`), so a copy of Binance's public tree or a user's
folder whose names happen to look like ours loses nothing. Links are never followed, and nothing
outside the folder is ever removed. "Used" is the entry's modification time, which a hit refreshes."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from filelock import FileLock

from candleflow.errors import CacheError
from candleflow.fs.guard import MARKER as OUTPUT_MARKER

log = logging.getLogger("candleflow")

CacheKind = Literal["binance", "yfinance", "prepared", "stores"]
KINDS: tuple[CacheKind, ...] = ("binance", "yfinance", "prepared", "stores")
STATS = ".candleflow-cache.json"
STATS_LOCK = ".candleflow-cache.lock"
MARKER = ".candleflow-cache"  # JSON {"kind": ..., "format": 1}: this folder is a candleflow cache
LEDGER = ".candleflow-entries"  # the entries candleflow wrote here, one relative path per line
_MAX_LEDGER_BYTES = 1 << 30  # a ledger larger than this is not ours
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
        """Delete the entry; a link is removed, never its target. A folder entry loses only the
        files an entry is made of (ENTRY_FILE: meta.json, arrays, candles); a file of anyone else's
        placed inside it stays, with its folder, and is said. Callers go through `evict`, which
        lists only the entries candleflow's ledger records."""
        for p in (self.path, *self.companions):
            if p.is_dir() and not p.is_symlink():
                _remove_entry_folder(p)
            else:
                p.unlink(missing_ok=True)


# what a folder entry is made of: its meta, arrays and candles, and atomic_dir's output marker
ENTRY_FILE = re.compile(rf"meta\.json|[a-z0-9_]{{1,40}}\.npy|candles\.parquet|{re.escape(OUTPUT_MARKER)}")


def _remove_entry_folder(folder: Path) -> None:
    kept = []
    for child in folder.iterdir():
        if ENTRY_FILE.fullmatch(child.name) and child.is_file() and not child.is_symlink():
            child.unlink(missing_ok=True)
        else:
            kept.append(child.name)
    if kept:
        log.warning(
            "%s: kept, with %s inside that candleflow did not write (its own files removed)",
            folder,
            ", ".join(sorted(kept)[:5]),
        )
        return
    try:
        folder.rmdir()
    except OSError:
        pass


def gb_to_bytes(gb: float | None) -> int | None:
    """A cap in GB (10^9 bytes) as bytes; None stays None (no cap)."""
    return None if gb is None else int(gb * 1e9)


def touch(path: Path) -> None:
    """Mark an entry used now (its modification time); a vanished entry is not an error."""
    try:
        os.utime(path, follow_symlinks=False)
    except OSError:
        pass


def marker_kind(root: str | os.PathLike) -> str | None:
    """The kind named by the folder's cache marker, or None where the folder carries none (it is
    not a cache candleflow wrote) or the marker is not ours."""
    path = Path(root).expanduser() / MARKER
    try:
        if path.is_symlink() or path.stat().st_size > 4096:
            return None
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    kind = data.get("kind") if isinstance(data, dict) else None
    return kind if kind in KINDS else None


def require_cache(kind: CacheKind, root: str | os.PathLike) -> None:
    """Raise CacheError (one line, naming the folder) unless `root` carries candleflow's marker for
    a cache of this kind: the check before anything is removed from a folder."""
    found = marker_kind(root)
    if found is None:
        raise CacheError(
            f"{root}: not a candleflow {kind} cache (no {MARKER} marker, which candleflow writes with the "
            "first entry it caches there); refusing to remove anything from it"
        )
    if found != kind:
        raise CacheError(f"{root}: candleflow's {found} cache, not a {kind} cache; refusing to remove anything from it")


def remember(kind: CacheKind, root: str | os.PathLike, paths: Iterable[str | os.PathLike]) -> None:
    """Record entries candleflow has just written under `root` (marking the folder as a cache of
    this kind on its first entry); only recorded entries are ever evicted. A path outside `root` is
    ignored. Best effort, like the counts: a read-only cache still serves, its entries just stay."""
    root = Path(root).expanduser()
    base = os.path.abspath(root)
    rels = []
    for p in paths:
        rel = os.path.relpath(os.path.abspath(Path(p).expanduser()), base)
        if rel != "." and not rel.startswith(".."):
            rels.append(rel.replace(os.sep, "/"))
    if not rels:
        return
    try:
        root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(root / STATS_LOCK), timeout=10):
            found = marker_kind(root)
            if found is None:
                if (root / MARKER).exists() or (root / MARKER).is_symlink():
                    log.warning("%s: %s is not candleflow's marker; entries not recorded", root, MARKER)
                    return
                tmp = root / f".{MARKER}.{os.getpid()}.tmp"
                tmp.write_text(json.dumps({"kind": kind, "format": 1}) + "\n")
                os.replace(tmp, root / MARKER)
            elif found != kind:
                log.warning("%s is candleflow's %s cache; %s entries not recorded there", root, found, kind)
                return
            if (root / LEDGER).is_symlink():
                return
            with open(root / LEDGER, "a", encoding="utf-8") as fh:
                fh.write("".join(r + "\n" for r in rels))
    except (OSError, TimeoutError) as exc:
        log.debug("%s cache %s: entries not recorded (%s)", kind, root, exc)


def recorded(root: str | os.PathLike) -> set[str]:
    """The relative paths of the entries candleflow's ledger records under `root` (empty for a
    folder without one)."""
    path = Path(root).expanduser() / LEDGER
    try:
        if path.is_symlink() or path.stat().st_size > _MAX_LEDGER_BYTES:
            return set()
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    return {line for line in text.splitlines() if line and not line.startswith("/") and ".." not in line.split("/")}


def owns(kind: CacheKind, root: str | os.PathLike, path: str | os.PathLike) -> bool:
    """Whether `path` is an entry candleflow wrote into this cache (so it may remove it)."""
    if marker_kind(root) != kind:
        return False
    rel = os.path.relpath(os.path.abspath(Path(path).expanduser()), os.path.abspath(Path(root).expanduser()))
    return rel.replace(os.sep, "/") in recorded(root)


def _forget(root: Path, gone: list[CacheEntry]) -> None:
    """Drop removed entries from the ledger (rewritten atomically under the lock)."""
    real = str(root.resolve())
    drop = {os.path.relpath(p, real).replace(os.sep, "/") for e in gone for p in (e.where, *e.also)}
    try:
        with FileLock(str(root / STATS_LOCK), timeout=10):
            keep = [line for line in sorted(recorded(root)) if line not in drop]
            tmp = root / f".{LEDGER}.{os.getpid()}.tmp"
            tmp.write_text("".join(r + "\n" for r in keep), encoding="utf-8")
            os.replace(tmp, root / LEDGER)
    except (OSError, TimeoutError) as exc:
        log.debug("cache %s: ledger not compacted (%s)", root, exc)


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
    """The entries candleflow wrote into this cache (recorded in its ledger, matching the cache's
    layout), least recently used first, under the folder's real path (the cache folder itself may
    be a link, e.g. to a larger disk; links inside it are never followed). A folder without
    candleflow's marker for this kind has none."""
    if kind not in KINDS:
        raise ValueError(f"unknown cache kind {kind!r}; expected one of {', '.join(KINDS)}")
    root = Path(root).expanduser().resolve()
    if not root.is_dir() or marker_kind(root) != kind:
        return []
    ours = recorded(root)
    real = str(root)
    return [e for e in _layout_entries(kind, root) if os.path.relpath(e.where, real).replace(os.sep, "/") in ours]


def _layout_entries(kind: CacheKind, root: Path) -> list[CacheEntry]:
    """Every name under root that matches the cache's layout, least recently used first."""
    found: list[CacheEntry] = []
    if kind == "binance":
        for folder, files in _scan(root / "data"):
            for name, st in files.items():
                if _BINANCE_ZIP.fullmatch(name):
                    check = files.get(name + ".CHECKSUM")
                    also = (f"{folder}/{name}.CHECKSUM",) if check is not None else ()  # written with its ZIP
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
    using) stay even when that leaves the cache over its cap. Only entries candleflow recorded are
    considered; a folder without its marker has none. Returns what was (or would be) removed."""
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
        _forget(root, removed)
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


def prune(
    targets: Iterable[tuple[CacheKind, str | os.PathLike]],
    max_bytes: int | None,
    older_than: float | None = None,
    dry_run: bool = False,
) -> list[tuple[CacheKind, Path, list[CacheEntry]]]:
    """`candleflow cache prune`: every folder is checked to be candleflow's cache of its kind
    before anything is removed from any (`require_cache`), then each is evicted down to
    `max_bytes` (and of entries unused for `older_than` seconds). Returns what went per folder."""
    checked = [(kind, Path(root).expanduser()) for kind, root in targets]
    for kind, root in checked:
        require_cache(kind, root)
    return [
        (kind, root, evict(kind, root, max_bytes, older_than=older_than, dry_run=dry_run)) for kind, root in checked
    ]


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
    "LEDGER",
    "MARKER",
    "CacheEntry",
    "CacheSummary",
    "entries",
    "evict",
    "gb_to_bytes",
    "marker_kind",
    "owns",
    "prune",
    "recorded",
    "remember",
    "require_cache",
    "read_stats",
    "record",
    "summarize",
    "touch",
]
