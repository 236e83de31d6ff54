"""The --from / --to range of `predict`, as a mask over bar times."""

from __future__ import annotations

import numpy as np

from candleflow.errors import ConfigError


def in_range(times: np.ndarray, start: str | None, end: str | None) -> np.ndarray:
    """Mask of `times` (int64 ns) from `start` to `end` (dates as --from / --to take them, either
    may be None); a date that does not parse or a reversed range is one line naming the option."""
    keep = np.ones(times.size, bool)
    bounds = {}
    for bound, side in ((start, "from"), (end, "to")):
        if bound is None:
            continue
        try:
            bounds[side] = int(np.datetime64(bound, "ns").astype(np.int64))
        except ValueError:
            raise ConfigError(f"--{side} {bound!r}: expected a date such as 2024-07-01") from None
        keep &= times >= bounds[side] if side == "from" else times <= bounds[side]
    if len(bounds) == 2 and bounds["from"] > bounds["to"]:
        raise ConfigError(f"--from {start} is later than --to {end}: the range is reversed")
    return keep
