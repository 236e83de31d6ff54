"""The time grid of a series: its interval (given, the source's or inferred), rows off the grid,
the calendar's expected bars, and gaps filled by policy."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from candleflow.config import ValidationPolicy
from candleflow.config.intervals import interval_name, interval_ns
from candleflow.data.candles import OHLCV
from candleflow.data.rows import Rows, ValidationReport, iso
from candleflow.errors import ValidationError

log = logging.getLogger("candleflow")
FILLED_SHARE_WARNING = 0.01  # filling more than this share of the bars is said, never "all checks passed"


def check_grid(rows: Rows, policy: ValidationPolicy, interval: str | None) -> tuple[str, int]:
    """The interval (given, the source's, or the most common step) and rows off its grid: an
    error or dropped. Returns the interval's name and length in ns."""
    t = rows.cols["open_time"]
    if len(t) < 2:
        raise ValidationError(f"{rows.raw.source}: {len(t)} valid rows left; need at least 2 to form a series")
    iv_name = interval_of(rows, interval)
    iv = interval_ns(iv_name)
    if t.size >= 10 and not (np.diff(t) == iv).any():  # no two bars one interval apart ...
        step = _infer_interval(t)
        if interval_ns(step) >= 2 * iv:  # ... the interval given is not the bars' (every bar would be a gap)
            where = ", ".join(dict.fromkeys(name for _, name, _ in rows.raw.parts)) or rows.raw.source
            raise ValidationError(
                f"{where[:200]}: the bars are {step} apart, not {iv_name}: set the interval to {step} (or leave it unset)"
            )
    aligned = (t - t[0]) % iv == 0
    rows.report.misaligned_rows = int((~aligned).sum())
    if rows.report.misaligned_rows:
        if policy.misaligned == "error":
            i = int(np.argmin(aligned))
            rows.fail(
                i,
                f"open_time {iso(t[i])} is not on the {iv_name} grid that starts at {iso(t[0])}",
                "misaligned",
                "'drop' removes such rows",
            )
        rows.keep(aligned, "misaligned")
    return iv_name, iv


@dataclass
class Grid:
    """Where each surviving row sits among the expected bars: `slot` (int64, non-decreasing; an
    out-of-hours row carries the slot of the regular row before it), the slots' open times, and
    the session of each row (None: 24/7, one endless session)."""

    slot: np.ndarray
    slot_time: Callable[[np.ndarray], np.ndarray]
    session: np.ndarray | None = None

    def keep(self, mask: np.ndarray | None) -> Grid:
        """The grid of the rows where mask is True (all rows when None)."""
        if mask is None:
            return self
        return Grid(self.slot[mask], self.slot_time, None if self.session is None else self.session[mask])


def always_open_grid(t: np.ndarray, iv: int) -> Grid:
    """24/7: a bar every interval from the first one."""
    t0 = int(t[0])
    return Grid((t - t0) // iv, lambda k: t0 + k * iv)


def check_calendar(rows: Rows, policy: ValidationPolicy, iv_name: str) -> Grid:
    """Rows against the exchange's sessions: daily bars take their session's open as open time;
    intraday rows outside the session are out-of-hours (dropped or kept by `extended_hours`),
    inside it but off the bar grid misaligned; rows on days without a session off-calendar."""
    from candleflow.data.calendar import calendar_slots, daily_session_of

    cols, rep = rows.cols, rows.report
    rep.calendar = policy.calendar
    t = cols["open_time"]
    slots = calendar_slots(policy.calendar, iv_name, int(t[0]), int(t[-1]))
    if slots.daily:
        s = daily_session_of(t, slots)
        rep.off_calendar_rows = int((s < 0).sum())
        if rep.off_calendar_rows:
            if policy.misaligned == "error":
                i = int(np.argmax(s < 0))
                rows.fail(
                    i,
                    f"a daily bar at {iso(t[i])}, a day without a {policy.calendar} session",
                    "misaligned",
                    "'drop' removes such rows, or set validation.calendar to the series' exchange",
                )
            rows.keep(s >= 0, "off_calendar")
            s = s[s >= 0]
        rows.cols["open_time"] = slots.times[s]  # a daily bar opens at its session's open
        same = np.concatenate([[False], s[1:] == s[:-1]])
        if same.any():  # two rows of one session: the first counts
            rep.duplicate_rows += int(same.sum())
            rows.keep(~same, "duplicates")
            s = s[~same]
        return Grid(s.astype(np.int64), lambda k: slots.times[k], s)
    nxt = np.searchsorted(slots.times, t)
    on_slot = (nxt < slots.times.size) & (slots.times[np.minimum(nxt, slots.times.size - 1)] == t)
    j = np.searchsorted(slots.opens, t, side="right") - 1
    in_session = (j >= 0) & (t < slots.closes[np.maximum(j, 0)])
    out_of_hours = ~on_slot & ~in_session
    off_grid = ~on_slot & in_session
    rep.extended_hours_rows = int(out_of_hours.sum())
    if off_grid.any():
        if policy.misaligned == "error":
            i = int(np.argmax(off_grid))
            rows.fail(
                i,
                f"open_time {iso(t[i])} is inside a {policy.calendar} session but not on its {iv_name} grid "
                "(bars start at the session's open)",
                "misaligned",
                "'drop' removes such rows",
            )
        rep.misaligned_rows = int(off_grid.sum())
    keep = ~off_grid & (~out_of_hours if policy.extended_hours == "drop" else True)
    dropped_hours = out_of_hours & ~keep
    if dropped_hours.any():
        rep.dropped_rows["extended_hours"] = int(dropped_hours.sum())
    if off_grid.any():
        rep.dropped_rows["misaligned"] = rep.dropped_rows.get("misaligned", 0) + int(off_grid.sum())
    cols2 = {k: v[keep] for k, v in cols.items()}
    rows.cols, rows.where = cols2, rows.where[keep]
    t, nxt, on_slot = t[keep], nxt[keep], on_slot[keep]
    if t.size < 2:
        step = _infer_interval(cols["open_time"]) if cols["open_time"].size > 1 else None
        hint = (
            f"; the bars are {step} apart, not {iv_name}: set the interval to {step} (or leave it unset)"
            if (step is not None and step != iv_name)
            else ""
        )
        where = ", ".join(dict.fromkeys(name for _, name, _ in rows.raw.parts)) or rows.raw.source
        raise ValidationError(
            f"{where[:200]}: {t.size} rows inside {policy.calendar} sessions on its {iv_name} grid{hint}; "
            "need at least 2 to form a series"
        )
    # an out-of-hours row carries the slot of the regular row before it, so the slots a session
    # misses still count as missing when out-of-hours rows sit between
    carried = np.maximum.accumulate(np.where(on_slot, nxt, -1))
    slot = np.where(on_slot, nxt, np.where(carried >= 0, carried, nxt - 1)).astype(np.int64)
    session = np.where(on_slot, slots.session[np.minimum(nxt, slots.times.size - 1)], 0)
    if (~on_slot).any():
        session = np.where(on_slot, session, slots.session_of_extended(t, nxt))
    return Grid(slot, lambda k: slots.times[k], session)


def interval_of(rows: Rows, interval: str | None) -> str:
    """The interval given, the source's, or the most common step between rows (recorded)."""
    t = rows.cols["open_time"]
    if len(t) < 2:
        raise ValidationError(f"{rows.raw.source}: {len(t)} valid rows left; need at least 2 to form a series")
    name = interval or rows.raw.interval or _infer_interval(t)
    interval_ns(name)
    rows.report.interval = name
    return name


def fill_gaps(
    rows: Rows, policy: ValidationPolicy, iv_name: str, grid: Grid
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Missing bars (expected slots without a row): an error, short gaps filled with flat bars at
    the previous close (repair), and segments split at the rest (and, with session_breaks:
    segment, at every new session). Returns the output columns, the segments (K, 2) and a mask of
    the real (not filled) output rows."""
    cols, rep = rows.cols, rows.report
    t = cols["open_time"]
    missing = np.maximum(np.diff(grid.slot) - 1, 0)
    new_session = np.zeros(missing.size, dtype=bool)
    if grid.session is not None and policy.session_breaks == "segment":
        new_session = grid.session[1:] != grid.session[:-1]
    gap_at = np.flatnonzero(missing > 0)
    rep.gaps = int(gap_at.size)
    rep.missing_bars = int(missing[gap_at].sum()) if gap_at.size else 0
    if rep.gaps and policy.gaps == "error":
        i = int(gap_at[0]) + 1
        rows.fail(
            i,
            f"{int(missing[gap_at[0]])} missing {iv_name} bars before {iso(t[i])}",
            "gaps",
            "'repair' fills short gaps and splits at long ones, 'split' splits at every gap",
        )
    fill = np.zeros_like(missing)
    if policy.gaps == "repair":
        # a missing slot is filled only where it falls between its neighbours in time (not where
        # kept out-of-hours rows already follow it)
        in_order = grid.slot_time(grid.slot[:-1] + 1) > t[:-1]
        small = (missing > 0) & (missing <= policy.gap_tolerance) & ~new_session & in_order
        fill[small] = missing[small]
    split_after = np.flatnonzero(((missing > 0) & (fill == 0)) | new_session)  # split between i and i+1
    rep.filled_bars = int(fill.sum())
    rep.session_splits = int(new_session.sum())
    rep.segment_splits = int(split_after.size)

    pos = np.empty(len(t), dtype=np.int64)  # output row of each real row
    pos[0] = 0
    pos[1:] = np.cumsum(1 + fill)
    n_out = int(pos[-1]) + 1
    real = np.zeros(n_out, dtype=bool)
    real[pos] = True
    src = np.maximum.accumulate(np.where(real, np.arange(n_out), 0))
    # map each output row to the real row it copies (itself, or the real row before a filled gap)
    from_real = (np.cumsum(real) - 1)[src]
    filled = ~real
    t_out = np.empty(n_out, dtype=np.int64)
    t_out[pos] = t
    t_out[filled] = grid.slot_time(grid.slot[from_real[filled]] + (np.arange(n_out)[filled] - src[filled]))
    out: dict[str, np.ndarray] = {"open_time": t_out}
    close_src = cols["close"][from_real]
    for name in ("open", "high", "low", "close"):
        arr = np.empty(n_out, dtype=np.float64)
        arr[pos] = cols[name]
        arr[filled] = close_src[filled]
        out[name] = arr
    extras = [k for k in cols if k not in OHLCV and k != "open_time"]
    for name in ["volume", *extras]:
        arr = np.zeros(n_out, dtype=cols[name].dtype)
        arr[pos] = cols[name]
        out[name] = arr
    starts = np.concatenate([[0], pos[split_after + 1]])
    stops = np.concatenate([pos[split_after + 1], [n_out]])
    return out, np.stack([starts, stops], axis=1).astype(np.int64), real


def warn_filled(rep: ValidationReport, times: np.ndarray, real: np.ndarray) -> None:
    """Add a warning (and log it) when gap repair invented more than FILLED_SHARE_WARNING of the
    output bars: a market that closes (weekends, holidays) on a 24/7 calendar looks like this."""
    filled = int((~real).sum())
    if filled <= FILLED_SHARE_WARNING * max(real.size, 1):
        return
    first = ", ".join(iso(x) for x in times[~real][:3])
    msg = (
        f"{filled:,} of {real.size:,} bars ({filled / real.size:.1%}) were invented to fill gaps "
        f"(validation.gaps=repair, calendar {rep.calendar}), the first at {first}; if the market closes "
        "(weekends, holidays), set validation.calendar to its exchange (e.g. XNYS)"
    )
    rep.warnings.append(msg)
    log.warning("validation: %s", msg)


def _infer_interval(t: np.ndarray) -> str:
    """The most common positive step between consecutive times, as an interval name."""
    d = np.diff(t)
    d = d[d > 0]
    if d.size == 0:
        raise ValidationError("cannot infer the interval: all rows share one open_time")
    vals, counts = np.unique(d, return_counts=True)
    return interval_name(int(vals[np.argmax(counts)]))
