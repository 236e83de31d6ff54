"""Atomic writes: a temporary name in the same folder, fsync, rename, so a crash never
leaves a file that looks complete."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from candleflow.errors import DataError


def current_umask() -> int:
    """The process umask, read without changing it (Linux /proc), else by setting and restoring it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def as_created(path: Path, folder: bool = False) -> None:
    """Give a temporary file (0600) or folder (0700) the mode a plain open() or mkdir() would."""
    os.chmod(path, (0o777 if folder else 0o666) & ~current_umask())


def full_disk(exc: OSError) -> bool:
    """A write that failed for want of space: ENOSPC, a quota, the file size limit, or NumPy's
    short write ('160000 requested and 49968 written', an OSError without an errno)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return True
    return exc.errno is None and " requested and " in str(exc) and str(exc).endswith(" written")


@contextlib.contextmanager
def naming_full_disks(path: Path) -> Iterator[None]:
    """A full disk (or quota) while writing `path` becomes one line naming it and the free space;
    the caller's cleanup still removes the temporary, and nothing under the real name changed."""
    try:
        yield
    except OSError as exc:
        if not full_disk(exc):
            raise
        try:
            free = f"{shutil.disk_usage(path.parent).free / 2**20:,.0f} MB free"
        except OSError:
            free = "free space unknown"
        raise DataError(
            f"{path}: no space left on the device while writing it ({free}); nothing was replaced"
        ) from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    as_created(tmp_path)
    try:
        with naming_full_disks(path):
            yield tmp_path
            with open(tmp_path, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 text atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON (indented, keys in insertion order) atomically."""
    write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; rename it to `path` only if the block succeeds.

    The folder gets candleflow's marker file. With `replace`, an existing `path` is replaced only
    when it is empty or candleflow wrote it (see `guard.check_output`); anything else is refused."""
    from candleflow.fs.guard import MARKER, check_output

    path = Path(path)
    if path.exists() or path.is_symlink():
        if not replace:
            raise FileExistsError(f"{path} exists")
        check_output(path, overwrite=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    as_created(tmp, folder=True)
    old: Path | None = None
    try:
        with naming_full_disks(path):
            yield tmp
        (tmp / MARKER).write_text("written by candleflow; a later --overwrite may replace this folder\n")
        if path.exists():  # move the old one aside first, so a failed rename can put it back
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
        try:
            os.replace(tmp, path)
        except OSError:
            if old is not None:
                os.replace(old / path.name, path)
            raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
