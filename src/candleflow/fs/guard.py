"""Guards for paths and names that come from users, configs, stores and mirrors.

candleflow writes only inside the folders it was given, never replaces a folder it did not write,
and treats every name read from a store, manifest, listing or archive as hostile until checked.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from candleflow.errors import DataError

# a file or folder candleflow wrote; only such a folder may be replaced (with --overwrite)
MARKER = ".candleflow-output"
# one path component: starts with a letter or digit, no separators, no "..", at most 128 characters
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_NAME = re.compile(NAME_PATTERN)


def check_name(value: object, what: str) -> str:
    """`value` if it is a safe single path component, else a one-line DataError naming `what`."""
    if not isinstance(value, str) or not _NAME.match(value) or ".." in value:
        shown = repr(value)[:80]
        raise DataError(
            f"{what} {shown} is not a safe name: expected letters, digits, '.', '_' or '-' "
            "(starting with a letter or digit, at most 128 characters, no '..')"
        )
    return value


def inside(root: str | os.PathLike, *parts: str) -> Path:
    """root/parts, refused (DataError) when it resolves outside root (`..`, absolute parts, links)."""
    base = Path(root).resolve()
    target = base.joinpath(*parts).resolve()
    if target != base and base not in target.parents:
        raise DataError(f"{'/'.join(parts)!r} resolves outside {str(base)!r}; refusing to use it")
    return target


def _protected(path: Path) -> str | None:
    """Why `path` may never be replaced, or None."""
    resolved = path.resolve()
    cwd = Path.cwd().resolve()
    home = Path.home().resolve()
    if resolved == Path(resolved.anchor):
        return "it is the file system root"
    if resolved == home:
        return "it is the home folder"
    if resolved == cwd or resolved in cwd.parents:
        return "it is the working folder or one of its parents"
    if resolved in home.parents:
        return "it holds the home folder"
    return None


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def local_path(value: str | os.PathLike, flag: str = "--out") -> Path:
    """`value` as a local path, or a one-line error where it is a URL (`s3://...`, `memory://...`):
    these outputs are local files and folders, and a URL taken as a path would silently become a
    local folder named after its scheme. (Prepared stores are the outputs that take URLs.)"""
    text = os.fspath(value)
    if _URL.match(text):
        raise DataError(
            f"{flag} {text!r}: a URL; this output is written to a local path only (write it locally and copy it, "
            "or use a prepared store, --store, which takes fsspec URLs)"
        )
    return Path(text)


def check_output(path: str | os.PathLike, overwrite: bool = False, flag: str = "--overwrite") -> Path:
    """Check that writing `path` loses nothing the user did not ask to replace.

    A missing path or an empty folder is fine. An existing file is replaced only with `overwrite`;
    an existing non-empty folder only with `overwrite` and only when candleflow wrote it (it holds
    the MARKER file). The root, the home folder and the working folder (or its parents) never."""
    p = Path(path)
    why = _protected(p)
    if why is not None:
        raise DataError(f"output {str(path)!r}: refusing to write there, {why}; name a new file or folder")
    if not p.exists() and not p.is_symlink():
        return p
    if p.is_symlink():
        raise DataError(f"output {str(path)!r} is a symbolic link; name a new file or folder")
    if p.is_dir():
        if not any(p.iterdir()):
            return p
        if not overwrite:
            raise DataError(
                f"output folder {str(path)!r} exists and is not empty; name a new one, or pass {flag} "
                "to replace one candleflow wrote"
            )
        if not (p / MARKER).is_file():
            raise DataError(
                f"output folder {str(path)!r} was not written by candleflow (no {MARKER} file in it); "
                "refusing to replace it: name a new folder"
            )
        return p
    if not overwrite:
        raise DataError(f"output file {str(path)!r} exists; name a new one, or pass {flag} to replace it")
    return p
