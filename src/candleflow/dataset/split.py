"""Chronological splits by window end that purge training labels reaching a later period."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from candleflow.errors import DataError


@dataclass(frozen=True)
class Split:
    """Positions (into the dataset's window list) of each part, in time order, and what was purged."""

    parts: dict[str, np.ndarray]
    starts: dict[str, int]  # first bar of each part's period (by_time: its first instant, ns)
    purged: dict[str, int] = field(default_factory=dict)
    by_time: bool = False  # split at instants across many series (split_by_time), not at bars of one

    def __getitem__(self, name: str) -> np.ndarray:
        return self.parts[name]

    def summary(self) -> dict[str, dict[str, int | str]]:
        """Each part's windows, where it starts (its first bar, or its first instant as a UTC
        date and time for a split by time) and how many windows the purge removed."""

        def start(k: str) -> dict[str, int | str]:
            if self.by_time:
                return {"start": str(np.datetime64(int(self.starts[k]), "ns"))[:19]}
            return {"start_bar": self.starts[k]}

        return {k: {"windows": int(v.size), **start(k), "purged": self.purged.get(k, 0)} for k, v in self.parts.items()}


def chronological_split(
    ends: np.ndarray, t1: np.ndarray, val_fraction: float = 0.2, test_fraction: float = 0.0, embargo: int = 0
) -> Split:
    """Split windows (sorted by end bar) into train / val [/ test] periods.

    A window in an earlier part whose label interval [e+1, t1[e]], extended by `embargo` bars,
    reaches the first bar of the next part is dropped (purged), so no label sees a later period.
    """
    ends = np.asarray(ends)
    if ends.size and np.any(np.diff(ends) <= 0):
        raise DataError("window ends must be strictly increasing")
    n = ends.size
    n_train, n_val, n_test = _part_sizes(n, val_fraction, test_fraction)
    bounds = [("train", 0, n_train), ("val", n_train, n_train + n_val)]
    if n_test:
        bounds.append(("test", n_train + n_val, n))
    parts: dict[str, np.ndarray] = {}
    starts: dict[str, int] = {}
    purged: dict[str, int] = {}
    for k, (name, lo, hi) in enumerate(bounds):
        pos = np.arange(lo, hi)
        starts[name] = int(ends[lo])
        if k + 1 < len(bounds):
            pos, purged[name] = _purge(pos, ends, t1, int(ends[bounds[k + 1][1]]), embargo)
        parts[name] = pos
    _check_nonempty(parts, purged)
    return Split(parts=parts, starts=starts, purged=purged)


def _check_nonempty(parts: dict[str, np.ndarray], purged: dict[str, int], fold: str = "") -> None:
    """One line naming the part left empty by the purge and the keys that change it."""
    for name, pos in parts.items():
        if pos.size == 0:
            raise DataError(
                f"{fold}the {name} part has 0 windows after purging the {purged.get(name, 0):,} whose labels "
                "reach the next period; use more data, a shorter labels.horizon or dataset.embargo, "
                "or smaller dataset.val_fraction / dataset.test_fraction"
            )


def walk_forward_folds(
    ends: np.ndarray, t1: np.ndarray, n_folds: int = 3, embargo: int = 0, positions: np.ndarray | None = None
) -> list[Split]:
    """Expanding-window walk-forward validation (what `tune` scores trials on): the folds of
    `walk_forward_splits` without an inner validation period, each fold's next period named
    `val` (the trial is validated there, never tested)."""
    out = []
    for s in walk_forward_splits(ends, t1, n_folds, 0.0, embargo, False, positions):
        parts, starts = dict(s.parts), dict(s.starts)
        parts["val"], starts["val"] = parts.pop("test"), starts.pop("test")
        out.append(Split(parts=parts, starts=starts, purged=s.purged))
    return out


def walk_forward_splits(
    ends: np.ndarray,
    t1: np.ndarray,
    n_folds: int,
    val_fraction: float = 0.15,
    embargo: int = 0,
    rolling: bool = False,
    positions: np.ndarray | None = None,
) -> list[Split]:
    """Walk-forward evaluation folds: the windows (or `positions`, a time-ordered subset) cut
    into n_folds + 1 equal periods; fold k tests on period k + 1 and trains on periods 0..k
    (expanding) or on period k alone (`rolling`), the last `val_fraction` of which validates
    (checkpoints, early stopping; 0: no inner validation). Windows whose label interval (plus
    `embargo` bars) reaches the next part are purged, so no model is fitted or selected on a
    label that sees its test period."""
    ends = np.asarray(ends)
    pos_all = np.arange(ends.size) if positions is None else np.asarray(positions)
    inner = val_fraction > 0
    if n_folds < 1 or pos_all.size < (4 if inner else 2) * (n_folds + 1):
        raise DataError(f"{pos_all.size} windows are too few for {n_folds} walk-forward folds")
    cuts = np.linspace(0, pos_all.size, n_folds + 2).round().astype(int)
    folds = []
    for k in range(n_folds):
        fit = pos_all[(cuts[k] if rolling else 0) : cuts[k + 1]]
        test = pos_all[cuts[k + 1] : cuts[k + 2]]
        test_start = int(ends[test[0]])
        starts = {"train": int(ends[fit[0]]), "test": test_start}
        if inner:
            n_val = max(1, int(round(fit.size * val_fraction)))
            train, val = fit[:-n_val], fit[-n_val:]
            starts["val"] = val_start = int(ends[val[0]])
            val, purged_val = _purge(val, ends, t1, test_start, embargo)
            train, purged_train = _purge(train, ends, t1, val_start, embargo)
            parts = {"train": train, "val": val, "test": test}
            purged = {"train": purged_train, "val": purged_val}
        else:
            train, purged_train = _purge(fit, ends, t1, test_start, embargo)
            parts, purged = {"train": train, "test": test}, {"train": purged_train}
        _check_nonempty(parts, purged, f"walk-forward fold {k + 1} of {n_folds}: ")
        folds.append(Split(parts=parts, starts=dict(sorted(starts.items(), key=lambda kv: kv[1])), purged=purged))
    return folds


def walk_forward_by_time(
    end_times: np.ndarray, label_end_times: np.ndarray, folds: int, val_fraction: float
) -> list[Split]:
    """Walk-forward folds of windows from many series, cut at instants (as `split_by_time` cuts
    one split): the forecast times in `folds + 1` equal stretches; fold k trains on every stretch
    before k (expanding; its last `val_fraction` of times validate) and tests on stretch k.
    Training windows whose label reaches validation, and validation windows whose label reaches
    the test stretch, are purged, at the same instants for every series."""
    u = np.unique(end_times)
    if u.size < 3 * (folds + 1):
        raise DataError(f"{u.size} forecast times are too few for {folds} folds")
    edges = np.linspace(0, u.size, folds + 2).astype(int)
    out = []
    for k in range(1, folds + 1):
        test_start, test_end = int(u[edges[k]]), int(u[edges[k + 1] - 1])
        before = u[: edges[k]]
        val_start = int(before[int(before.size * (1 - val_fraction))])
        t, lab = np.asarray(end_times, np.int64), np.asarray(label_end_times, np.int64)
        train = np.flatnonzero((t < val_start) & (lab < val_start))
        val = np.flatnonzero((t >= val_start) & (t < test_start) & (lab < test_start))
        test = np.flatnonzero((t >= test_start) & (t <= test_end))
        if not (train.size and val.size and test.size):
            raise DataError(f"fold {k}: an empty part (train {train.size}, val {val.size}, test {test.size} windows)")
        parts = {
            p: pos[np.argsort(t[pos], kind="stable")] for p, pos in (("train", train), ("val", val), ("test", test))
        }
        purged = {"train": int(((t < val_start) & (lab >= val_start)).sum())}
        out.append(
            Split(
                parts=parts,
                starts={"train": int(u[0]), "val": val_start, "test": test_start},
                purged=purged,
                by_time=True,
            )
        )
    return out


def _purge(pos: np.ndarray, ends: np.ndarray, t1: np.ndarray, next_start: int, embargo: int) -> tuple[np.ndarray, int]:
    """Drop windows whose label interval, extended by `embargo` bars, reaches bar `next_start`."""
    keep = t1[ends[pos]] + embargo < next_start
    return pos[keep], int((~keep).sum())


def split_by_time(
    end_times: np.ndarray, label_end_times: np.ndarray, val_fraction: float = 0.2, test_fraction: float = 0.0
) -> Split:
    """Chronological split of windows from many series by the time of their last bar: every
    series' validation (and test) period starts at the same instant, so no series trains on a
    period another one validates on. Windows whose label ends (embargo included) at or after the
    next period's start are purged. Positions in each part are in time order; starts are times (ns)."""
    end_times = np.asarray(end_times, dtype=np.int64)
    order = np.argsort(end_times, kind="stable")
    t = end_times[order]
    n_train, n_val, n_test = _part_sizes(t.size, val_fraction, test_fraction)
    starts_at = [n_train, n_train + n_val][: 2 if n_test else 1]
    cuts = [int(t[i]) for i in starts_at]  # windows ending at a cut instant go to the later part
    edges = [0, *np.searchsorted(t, cuts), t.size]
    names = ["train", "val", "test"][: len(cuts) + 1]
    parts, starts, purged = {}, {"train": int(t[0])}, {}
    for k, name in enumerate(names):
        pos = order[edges[k] : edges[k + 1]]
        if k < len(cuts):
            keep = np.asarray(label_end_times)[pos] < cuts[k]
            purged[name] = int((~keep).sum())
            pos = pos[keep]
            starts[names[k + 1]] = cuts[k]
        parts[name] = pos
    _check_nonempty(parts, purged)
    return Split(parts=parts, starts=starts, purged=purged, by_time=True)


def _part_sizes(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """Windows in train, val and test for these fractions; an error when a part would be empty."""
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * val_fraction))
    n_train = n - n_val - n_test
    if n_train <= 0 or n_val <= 0 or (test_fraction > 0 and n_test <= 0):
        raise DataError(f"{n} windows are too few for val_fraction={val_fraction}, test_fraction={test_fraction}")
    return n_train, n_val, n_test
