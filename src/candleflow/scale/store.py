"""A prepared-data store of many series: one entry per symbol (features, labels, t1, open times and
segments as .npy; the candles as Parquet), at a path or fsspec URL, listed in `manifest.json`.

A worker writes an entry into a hidden temporary folder, `meta.json` (the size and sha256 of every
file) last, and renames it to `entries/NAME/VERSION/`. Only the process that runs the prepare
writes the manifest, atomically and only after an entry is complete, so the manifest never lists
an incomplete entry. Anything the manifest does not list (a killed worker's temporary folder, an
old version) is swept by the next prepare. On object stores, where a rename is a copy, the commit
is the manifest: an entry counts only once the manifest lists it, after its meta.json exists. Readers open entries memory-mapped, one at a time, as a
dataset asks for them; entries of a remote store are copied (verified) to a local cache first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from candleflow.data.candles import OHLCV, Candles
from candleflow.errors import StoreError
from candleflow.fs import caches
from candleflow.fs.digest import sha256_file

MANIFEST = "manifest.json"
ARRAYS = ("features", "labels", "t1", "open_time", "segments")
OPTIONAL = ("context",)  # a regression target's baseline context (targets.CONTEXT), where it has one
CANDLES = "candles.parquet"
FORMAT = 1
FILES = frozenset([*(f"{a}.npy" for a in ARRAYS), CANDLES])
FILE_SETS = (FILES, FILES | {f"{a}.npy" for a in OPTIONAL})
_VERSION = re.compile(r"^[0-9a-f]{16}-[0-9a-f]{8}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_FILE_BYTES = 1 << 40  # 1 TiB: a record claiming more is not one this code wrote


def check_record(url: str, name: object, record: object) -> dict[str, Any]:
    """A manifest or meta.json record, checked before any of its names becomes a path: a store
    written by someone else is untrusted (a name like '../x' must not escape the store or cache)."""
    from candleflow.errors import DataError
    from candleflow.fs.guard import check_name

    where = f"{url}/{MANIFEST}"
    try:
        check_name(name, "entry name")
    except DataError as exc:
        raise StoreError(f"{where}: {exc}") from None
    if not isinstance(record, dict) or record.get("name") != name:
        raise StoreError(f"{where}: the record of entry {name!r} is not a mapping with that name")
    version, files = record.get("version"), record.get("files")
    if not isinstance(version, str) or not _VERSION.match(version):
        raise StoreError(f"{where}: entry {name!r} has version {str(version)[:80]!r}; expected 16+8 hex digits")
    if not isinstance(files, dict) or set(files) not in FILE_SETS:
        got = sorted(str(f)[:40] for f in files) if isinstance(files, dict) else type(files).__name__
        raise StoreError(
            f"{where}: entry {name!r} lists files {got}; expected exactly {sorted(FILES)} (and context.npy for a "
            "regression target)"
        )
    for fname, want in files.items():
        ok = isinstance(want, dict) and isinstance(want.get("bytes"), int) and not isinstance(want["bytes"], bool)
        if not ok or not 0 <= want["bytes"] <= MAX_FILE_BYTES or not _SHA256.match(str(want.get("sha256", ""))):
            raise StoreError(f"{where}: entry {name!r} file {fname}: expected bytes (0..1 TiB) and a sha256")
    return record


class _Hashing:
    """A write-only file wrapper that counts and hashes what passes through it."""

    def __init__(self, fh: BinaryIO):
        self.fh, self.sha, self.bytes = fh, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.bytes += len(data)
        return self.fh.write(data)


@dataclass
class StoreEntry:
    """One prepared series: memory-mapped arrays and its manifest record."""

    name: str
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]
    folder: Path

    @property
    def features(self) -> np.ndarray:
        return self.arrays["features"]

    def candles(self) -> Candles:
        """The validated candles the entry was prepared from (for backtests, reports, images)."""
        table = pq.read_table(self.folder / CANDLES)
        cols = {n: table.column(n).to_numpy() for n in OHLCV}
        extra = {n: table.column(n).to_numpy() for n in table.column_names if n not in (*OHLCV, "open_time")}
        return Candles(
            open_time=np.asarray(self.arrays["open_time"]),
            segments=np.asarray(self.arrays["segments"]),
            symbol=self.meta["symbol"],
            interval=self.meta["interval"],
            source=self.meta["source"],
            extra=extra,
            calendar=self.meta.get("calendar", "24/7"),
            **cols,
        )


@dataclass
class SeriesStore:
    """A store at `url` (a folder path or an fsspec URL). `cache_dir` holds local copies of a
    remote store's entries, so they can be memory-mapped, kept under `cache_max_bytes` (least
    recently used copies go first)."""

    url: str
    cache_dir: str | Path = "~/.cache/candleflow/stores"
    cache_max_bytes: int | None = None
    fs: Any = field(init=False, repr=False)
    _in_use: set[Path] = field(init=False, repr=False, default_factory=set)  # copies this object opened
    root: str = field(init=False)

    def __post_init__(self) -> None:
        self.url = str(self.url)
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url)
        except (ImportError, ValueError) as exc:  # an unknown protocol, or its package (s3fs, gcsfs) missing
            raise StoreError(f"store {self.url!r}: {str(exc).splitlines()[0]}") from None
        self.root = self.root.rstrip("/")
        if self.fs.isfile(self.root):  # a store is a folder: an existing file is never written into
            raise StoreError(f"store {self.url!r}: a file, not a folder; name a folder (new or a candleflow store)")

    @classmethod
    def for_config(cls, cfg: Any) -> SeriesStore:
        """The store a RunConfig names (`universe.store`), with its copies capped by `cache`."""
        return cls(cfg.universe.store, cfg.cache.stores_dir, cfg.cache.max_bytes)

    @property
    def local(self) -> bool:
        """True when the store is a local folder (entries are memory-mapped in place)."""
        protocol = self.fs.protocol
        return "file" in (protocol if isinstance(protocol, (tuple, list)) else (protocol,))

    def _path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    # --- the manifest (written only by the process that runs the prepare) ---

    def manifest(self) -> dict[str, Any]:
        """{"format", "updated", "entries": {name: record}}; an empty one when the store is new."""
        path = self._path(MANIFEST)
        if not self.fs.exists(path):
            return {"format": FORMAT, "updated": None, "entries": {}}
        try:
            with self.fs.open(path, "rb") as fh:
                data = json.loads(fh.read())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise StoreError(f"{self.url}/{MANIFEST}: not valid JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("entries"), dict):
            raise StoreError(f"{self.url}/{MANIFEST}: expected a candleflow store manifest of format {FORMAT}")
        for name, record in data["entries"].items():
            check_record(self.url, name, record)
        return data

    def names(self) -> list[str]:
        """The complete entries, in manifest order."""
        return list(self.manifest()["entries"])

    def commit(self, records: list[dict[str, Any]]) -> None:
        """List complete entries in the manifest (replacing older records of the same names), atomically."""
        if not records:
            return
        for rec in records:
            if not self.fs.exists(self._path("entries", rec["name"], rec["version"], "meta.json")):
                raise StoreError(
                    f"{self.url}: entry {rec['name']} version {rec['version']} has no meta.json: "
                    f"not complete, not listed"
                )
        manifest = self.manifest()
        manifest["entries"].update({rec["name"]: rec for rec in records})
        manifest["updated"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self._replace(MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode())

    def _replace(self, rel: str, data: bytes) -> None:
        tmp = self._path(f".{rel}.{uuid.uuid4().hex[:8]}.tmp")
        with self._open_write(tmp) as fh:
            fh.write(data)
        self.fs.mv(tmp, self._path(rel))  # a rename on local disks; one PUT on object stores

    @contextmanager
    def _open_write(self, path: str) -> Iterator[BinaryIO]:
        if self.local:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
        else:
            with self.fs.open(path, "wb") as fh:
                yield fh

    # --- entries (written by workers) ---

    def write_entry(
        self, name: str, key: str, arrays: dict[str, np.ndarray], candles: pa.Table, meta: dict[str, Any]
    ) -> dict[str, Any]:
        """Write one entry under a temporary name and rename it into place; returns its record
        for `commit`. Nothing is listed until the caller commits it."""
        version = f"{key[:16]}-{uuid.uuid4().hex[:8]}"
        tmp = self._path("entries", name, f".{version}.tmp")
        files: dict[str, dict[str, Any]] = {}
        for arr_name in (a for a in (*ARRAYS, *OPTIONAL) if a in arrays):
            with self._open_write(f"{tmp}/{arr_name}.npy") as fh:
                w = _Hashing(fh)
                np.save(w, np.ascontiguousarray(arrays[arr_name]), allow_pickle=False)
            files[f"{arr_name}.npy"] = {"bytes": w.bytes, "sha256": w.sha.hexdigest()}
        buf = io.BytesIO()
        # no dictionary pages: prices rarely repeat, and dictionary building was 60% of an entry's write time
        pq.write_table(candles, buf, compression="zstd", compression_level=1, use_dictionary=False)
        data = buf.getvalue()
        with self._open_write(f"{tmp}/{CANDLES}") as fh:
            fh.write(data)
        files[CANDLES] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        record = {
            "name": name,
            "key": key,
            "version": version,
            "files": files,
            "bytes": sum(f["bytes"] for f in files.values()),
            **meta,
        }
        with self._open_write(f"{tmp}/meta.json") as fh:
            fh.write((json.dumps(record, indent=1) + "\n").encode())
        final = self._path("entries", name, version)
        self.fs.mv(tmp, final, recursive=True)
        return record

    def find_complete(self, name: str, key: str) -> dict[str, Any] | None:
        """A complete but unlisted version of `name` with this key (its prepare finished, the
        manifest update did not), so a rerun can list it instead of computing it again."""
        folder = self._path("entries", name)
        if not self.fs.exists(folder):
            return None
        for path in sorted(self.fs.ls(folder, detail=False)):
            version = path.rstrip("/").rsplit("/", 1)[-1]
            if version.startswith(".") or not version.startswith(key[:16]):
                continue
            try:
                with self.fs.open(f"{path}/meta.json", "rb") as fh:
                    record = check_record(self.url, name, json.loads(fh.read(16 << 20)))
                if record.get("key") == key and record["version"] == version and self._sizes_ok(record):
                    return record
            except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError, StoreError):
                continue
        return None

    def _sizes_ok(self, record: dict[str, Any]) -> bool:
        folder = self._path("entries", record["name"], record["version"])
        try:
            return all(self.fs.size(f"{folder}/{f}") == want["bytes"] for f, want in record["files"].items())
        except FileNotFoundError:
            return False

    def sweep(self) -> list[str]:
        """Remove every entry folder the manifest does not list (temporary folders of killed
        workers, superseded versions); returns what was removed. Run it only while no prepare
        writes to this store."""
        listed = {(n, r["version"]) for n, r in self.manifest()["entries"].items()}
        entries = self._path("entries")
        removed: list[str] = []
        if not self.fs.exists(entries):
            return removed
        for name_dir in self.fs.ls(entries, detail=False):
            name = name_dir.rstrip("/").rsplit("/", 1)[-1]
            for path in self.fs.ls(name_dir, detail=False):
                version = path.rstrip("/").rsplit("/", 1)[-1]
                if (name, version) not in listed:
                    self.fs.rm(path, recursive=True)
                    removed.append(f"{name}/{version}")
        return removed

    # --- reading ---

    def open(self, name: str, verify: bool = False, entries: dict[str, Any] | None = None) -> StoreEntry:
        """One listed entry, memory-mapped (sizes always checked; sha256 too with `verify`).
        `entries` is the manifest's, when the caller has read it already."""
        entries = self.manifest()["entries"] if entries is None else entries
        if name not in entries:
            raise StoreError(f"{self.url}: no entry {name!r} in the manifest (entries: {', '.join(entries) or 'none'})")
        record = entries[name]
        folder = Path(self._path("entries", name, record["version"])) if self.local else self._local_copy(record)
        for fname, want in record["files"].items():
            path = folder / fname
            size = path.stat().st_size if path.exists() else -1
            if size != want["bytes"]:
                raise StoreError(f"{self.url}: {name}/{fname} has {size} bytes, the manifest says {want['bytes']}")
            if verify and sha256_file(path) != want["sha256"]:
                raise StoreError(f"{self.url}: {name}/{fname} does not match its sha256 in the manifest")
        arrays = {
            a: np.load(folder / f"{a}.npy", mmap_mode="r", allow_pickle=False)
            for a in (*ARRAYS, *OPTIONAL)
            if f"{a}.npy" in record["files"]
        }
        return StoreEntry(name, record, arrays, folder)

    def _local_copy(self, record: dict[str, Any]) -> Path:
        from candleflow.fs.atomic import atomic_dir

        tag = hashlib.sha256(self.url.encode()).hexdigest()[:16]
        root = Path(self.cache_dir).expanduser()
        folder = root / tag / record["name"] / record["version"]
        self._in_use.add(folder)
        if folder.is_dir():
            caches.touch(folder)
            caches.record("stores", root, hits=1)
            return folder
        remote = self._path("entries", record["name"], record["version"])
        with atomic_dir(folder) as tmp:
            for fname, want in record["files"].items():
                self.fs.get_file(f"{remote}/{fname}", str(tmp / fname))
                if sha256_file(tmp / fname) != want["sha256"]:
                    raise StoreError(f"{self.url}: {record['name']}/{fname} does not match its sha256 after copying")
        caches.remember("stores", root, [folder])
        caches.record("stores", root, misses=1)
        caches.evict("stores", root, self.cache_max_bytes, keep=self._in_use)
        return folder

    def summary(self) -> dict[str, Any]:
        """Entries, rows and bytes, as `candleflow prepare` prints them."""
        entries = self.manifest()["entries"]
        return {
            "store": self.url,
            "entries": len(entries),
            "rows": sum(r["rows"] for r in entries.values()),
            "bytes": sum(r["bytes"] for r in entries.values()),
        }


def open_dataset(
    store: SeriesStore | str,
    window: int = 120,
    names: list[str] | None = None,
    rate: int = 1,
    stride: int = 1,
    cross_section: list[str] | None = None,
):  # -> MultiWindowDataset
    """Windows over the store's listed entries (all, or `names`), each series memory-mapped and
    opened only here: nothing is loaded beyond the labels and the valid-window scan. With
    `cross_section` (features.cross_section), each series' features get the cross-sectional
    columns across these entries appended (an in-memory copy of each series' feature matrix)."""
    from candleflow.dataset.windows import MultiWindowDataset, WindowDataset

    store = store if isinstance(store, SeriesStore) else SeriesStore(store)
    listed = store.manifest()["entries"]
    entries = [store.open(n, entries=listed) for n in (names or list(listed))]
    if not entries:
        raise StoreError(f"{store.url}: the manifest lists no entries (run candleflow prepare --store {store.url})")
    first = entries[0].meta["feature_names"]
    for e in entries[1:]:
        if e.meta["feature_names"] != first:
            raise StoreError(
                f"{store.url}: entry {e.name} has features {e.meta['feature_names']}, {entries[0].name} has {first}"
            )
    features = [e.features for e in entries]
    if cross_section:
        from candleflow.dataset.cross_features import cross_section_columns

        extra = cross_section_columns([e.arrays["open_time"] for e in entries], features, list(first), cross_section)
        features = [
            np.ascontiguousarray(np.hstack([f, x]), dtype=np.float32) for f, x in zip(features, extra, strict=True)
        ]
    parts = [
        WindowDataset.from_arrays(
            f, e.arrays["labels"], e.arrays["segments"], window, rate, stride, e.arrays.get("context")
        )
        for f, e in zip(features, entries, strict=True)
    ]
    return MultiWindowDataset.from_parts(
        parts, [e.name for e in entries], [e.arrays["open_time"] for e in entries], [e.arrays["t1"] for e in entries]
    )


def open_panel(store: SeriesStore | str, names: list[str], horizon: int, rule: str = "same"):  # -> Panel
    """The store's entries `names` side by side on one time axis (see dataset.panel.align_panel)."""
    from candleflow.dataset.panel import SeriesArrays, align_panel

    store = store if isinstance(store, SeriesStore) else SeriesStore(store)
    listed = store.manifest()["entries"]
    series = []
    for name in names:
        e = store.open(name, entries=listed)
        series.append(
            SeriesArrays(
                name,
                np.asarray(e.arrays["open_time"]),
                e.features,
                np.asarray(e.arrays["labels"]),
                np.asarray(e.arrays["t1"]),
                e.candles().close,
                np.asarray(e.arrays["segments"]),
                e.meta.get("calendar", "24/7"),
                str(e.meta.get("interval", "")),
                None if "context" not in e.arrays else np.asarray(e.arrays["context"]),
            )
        )
    return align_panel(series, horizon, rule)  # type: ignore[arg-type]
