"""File digests: the sha256 that checks Binance downloads and prepared-data cache entries."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def binding(model_sha256: str, feature_names: object) -> str:
    """One digest over a model file's digest and the features it reads, in their order: a run
    folder whose config and metadata were both edited to list the features in another order no
    longer matches what it recorded (the model would read its inputs in the wrong columns)."""
    text = model_sha256 + "\n" + json.dumps(feature_names, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
