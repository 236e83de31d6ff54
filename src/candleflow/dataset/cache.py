"""PreparedData-data cache: features, labels and label ends on disk as .npy, keyed by the data
fingerprint and the exact config that produced them, memory-mapped on load (never pickle).

An entry is written under a temporary name and renamed into place, so a reader never sees half
an entry and two processes preparing one key at once leave one good entry (the loser's copy is
discarded). Every file's size and sha256 are in the entry's meta.json; a truncated, corrupt or
foreign entry is detected on load, removed and rebuilt."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from candleflow._version import __version__
from candleflow.dataset.targets import CONTEXT
from candleflow.errors import CacheError, DataError
from candleflow.fs.atomic import as_created, naming_full_disks
from candleflow.fs.caches import MARKER, evict, marker_kind, owns, record, remember, touch
from candleflow.fs.digest import sha256_file

log = logging.getLogger("candleflow")
ARRAYS = ("features", "labels", "t1")
OPTIONAL_ARRAYS = ("context",)  # regression targets' baseline context


def cache_key(fingerprint: str, config: dict[str, Any]) -> str:
    """sha256 of the candle fingerprint, the config sections that shape the data, the version and the
    baselines' context columns (a new baseline input changes what an entry holds)."""
    blob = json.dumps(
        {"fingerprint": fingerprint, "config": config, "candleflow": __version__, "context": list(CONTEXT)},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


@dataclass
class DatasetCache:
    """A folder of prepared-data entries; `hits`, `misses` and `rebuilt` count this object's lookups
    (the folder keeps running totals for `candleflow cache`). With `max_bytes`, each save evicts the
    least recently used entries beyond it."""

    root: Path
    verify: bool = True  # hash every file on load (catches in-place corruption); size checks always run
    max_bytes: int | None = None
    hits: int = 0
    misses: int = 0
    rebuilt: int = 0

    def __post_init__(self) -> None:
        self.root = Path(self.root).expanduser()
        if self.root.is_file():
            raise CacheError(f"dataset.cache_dir {self.root}: a file, not a folder")
        if self.root.is_dir() and marker_kind(self.root) is None and any(self.root.iterdir()):
            raise CacheError(
                f"dataset.cache_dir {self.root}: a folder with files candleflow did not write (no {MARKER} marker); "
                "name a new or empty folder for the prepared cache, so that nothing of yours sits beside its entries"
            )

    def load(self, key: str) -> dict[str, Any] | None:
        """The entry's arrays (memory-mapped, read-only) and meta, or None (a miss). A damaged or
        foreign entry counts as a miss and is removed."""
        folder = self.root / key
        if not folder.is_dir():
            self._count("miss", key)
            return None
        try:
            return self._read(folder, key)
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
            if not owns("prepared", self.root, folder):
                raise DataError(
                    f"{folder}: in the prepared-data cache (dataset.cache_dir) but not an entry candleflow "
                    f"wrote ({exc}); move it away or choose another dataset.cache_dir"
                ) from None
            log.warning("prepared-data cache entry %s is damaged (%s): rebuilding it", folder, exc)
            shutil.rmtree(folder, ignore_errors=True)
            self.rebuilt += 1
            self._count("miss", key)
            return None

    def save(self, key: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
        """Write an entry atomically; if another process wrote the same key first, keep theirs."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", suffix=".tmp", dir=self.root))
        as_created(tmp, folder=True)
        try:
            with naming_full_disks(self.root / key):  # a full disk: one line naming the entry
                files = {}
                for name in (*ARRAYS, *(n for n in OPTIONAL_ARRAYS if n in arrays)):
                    path = tmp / f"{name}.npy"
                    with open(path, "wb") as fh:
                        np.save(fh, np.ascontiguousarray(arrays[name]), allow_pickle=False)
                        fh.flush()
                        os.fsync(fh.fileno())
                    files[name] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
                (tmp / "meta.json").write_text(json.dumps({"key": key, "files": files, **meta}, indent=2))
            try:
                os.rename(tmp, self.root / key)
                remember("prepared", self.root, [self.root / key])
            except OSError:  # the key exists: a concurrent writer won; its entry is as good as ours
                shutil.rmtree(tmp, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        evict("prepared", self.root, self.max_bytes, keep=[self.root / key])
        return self.root / key

    def _read(self, folder: Path, key: str) -> dict[str, Any]:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("key") != key:
            raise ValueError(f"meta.json names key {meta.get('key')!r}, the folder {key!r}")
        arrays = {}
        for name in (*ARRAYS, *(n for n in OPTIONAL_ARRAYS if n in meta["files"])):
            path = folder / f"{name}.npy"
            want = meta["files"][name]
            size = path.stat().st_size
            if size != want["bytes"]:
                raise ValueError(f"{path.name} has {size} bytes, expected {want['bytes']} (truncated?)")
            if self.verify and sha256_file(path) != want["sha256"]:
                raise ValueError(f"{path.name} does not match its sha256")
            arrays[name] = np.load(path, mmap_mode="r", allow_pickle=False)
        self._count("hit", key)
        return {"arrays": arrays, "meta": meta, "path": folder}

    def _count(self, what: str, key: str) -> None:
        if what == "hit":
            self.hits += 1
            touch(self.root / key)
            record("prepared", self.root, hits=1)
        else:
            self.misses += 1
            record("prepared", self.root, misses=1)
        log.info("prepared-data cache %s: %s", what, self.root / key)
