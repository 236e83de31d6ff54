"""Turn raw rows into the canonical Candles table, counting every defect and applying its policy."""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numba
import numpy as np

from candleflow.config import ValidationPolicy
from candleflow.config.intervals import interval_name, interval_ns
from candleflow.data.calendar import ALWAYS_OPEN, AUTO
from candleflow.data.candles import OHLCV, Candles
from candleflow.errors import ValidationError

log = logging.getLogger("candleflow")


@dataclass
class RawCandles:
    """Rows as a source read them, in file order, with where each row came from.

    `parts` lists (first_row_index, file_name, first_line) so a row index maps back to a line.
    """

    columns: dict[str, np.ndarray]
    symbol: str
    source: str
    interval: str | None = None
    parts: list[tuple[int, str, int]] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.columns["open_time"].shape[0])

    def locate(self, i: int) -> str:
        """'file.csv line 17' (or 'source row 17') for raw row index i."""
        if not self.parts:
            return f"{self.source} row {i + 1}"
        k = bisect.bisect_right([p[0] for p in self.parts], i) - 1
        start, name, first_line = self.parts[max(k, 0)]
        return f"{name} line {first_line + i - start}"


@dataclass
class ValidationReport:
    """Counts of every defect found and what the policy did with it."""

    rows_in: int = 0
    rows_out: int = 0
    interval: str = ""
    nonfinite_rows: int = 0
    nonpositive_rows: int = 0
    ohlc_inconsistent_rows: int = 0
    ohlc_repaired_rows: int = 0
    out_of_order_rows: int = 0
    duplicate_rows: int = 0
    conflicting_duplicate_rows: int = 0
    misaligned_rows: int = 0
    gaps: int = 0
    missing_bars: int = 0
    filled_bars: int = 0
    segment_splits: int = 0
    zero_volume_rows: int = 0
    zero_volume_runs: int = 0
    longest_zero_volume_run: int = 0
    spike_rows: int = 0
    spike_repaired_rows: int = 0
    spikes: list[str] = field(default_factory=list)  # the first few, as 'time: what'
    calendar: str = "24/7"
    exchange: str = ""  # the exchange a source reported (yfinance)
    calendar_reason: str = ""  # why this calendar (validation.calendar: auto): what was inferred from
    adjusted: str = ""  # how prices were adjusted for corporate actions (source.adjust), if they were
    suspected_splits: list[str] = field(default_factory=list)  # 'date: open/previous close r (a:b)'
    bad_print_rows: int = 0  # bars with a price at 1/10, 10x ... of the rest (data/prints.py)
    bad_prints: list[str] = field(default_factory=list)  # the first few, as 'date: field value, scale'
    extended_hours_rows: int = 0
    off_calendar_rows: int = 0
    session_splits: int = 0
    dropped_rows: dict[str, int] = field(default_factory=dict)
    segments: int = 0
    segment_lengths: dict[str, int] = field(default_factory=dict)
    first_time: str = ""
    last_time: str = ""
    warnings: list[str] = field(default_factory=list)  # what a user must read before trusting the data

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One line a user reads before trusting the data."""
        dropped = sum(self.dropped_rows.values())
        return (
            f"{self.rows_in:,} rows in, {self.rows_out:,} out; {self.gaps} gaps "
            f"({self.missing_bars:,} missing bars, {self.filled_bars:,} filled), "
            f"{self.segments} segments; {self.duplicate_rows} duplicates, "
            f"{self.out_of_order_rows} out of order, {self.ohlc_inconsistent_rows} OHLC "
            f"inconsistent ({self.ohlc_repaired_rows} repaired), {self.nonfinite_rows} NaN/inf, "
            f"{self.zero_volume_rows} zero-volume rows, {self.spike_rows} spikes "
            f"({self.spike_repaired_rows} repaired); {dropped} dropped"
            + (
                f"; calendar {self.calendar}: {self.extended_hours_rows} out-of-hours rows, "
                f"{self.off_calendar_rows} off-calendar rows"
                if self.calendar != "24/7"
                else ""
            )
            + (f" ({self.calendar_reason})" if self.calendar_reason else "")
            + (f"; prices {self.adjusted}" if self.adjusted else "")
            + (f"; suspected splits: {', '.join(self.suspected_splits[:3])}" if self.suspected_splits else "")
            + (f"; {self.bad_print_rows} bad prints: {'; '.join(self.bad_prints[:3])}" if self.bad_print_rows else "")
        )


@dataclass
class Rows:
    """Rows on their way through the checks: columns, the raw row index of each survivor, the
    report being filled and where to point an error."""

    cols: dict[str, np.ndarray]
    where: np.ndarray
    report: ValidationReport
    raw: RawCandles

    def keep(self, mask: np.ndarray, reason: str) -> None:
        """Keep the rows where mask is True; count the others as dropped for `reason`."""
        dropped = int((~mask).sum())
        if dropped:
            self.report.dropped_rows[reason] = self.report.dropped_rows.get(reason, 0) + dropped
            self.cols = {k: v[mask] for k, v in self.cols.items()}
            self.where = self.where[mask]

    def fail(self, i: int, what: str, key: str, allowed: str) -> None:
        """Raise the one-line error for surviving row i under policy `validation.KEY=error`."""
        raise ValidationError(f"{self.raw.locate(int(self.where[i]))}: {what} (validation.{key}=error; {allowed})")


def check_finite(rows: Rows, policy: ValidationPolicy) -> None:
    """NaN or infinite prices and volumes: an error, or the rows dropped."""
    cols = rows.cols
    finite = np.ones(len(cols["open_time"]), dtype=bool)
    for name in OHLCV:
        finite &= np.isfinite(cols[name])
    rows.report.nonfinite_rows = int((~finite).sum())
    if rows.report.nonfinite_rows:
        if policy.nonfinite == "error":
            i = int(np.argmin(finite))
            bad = next(n for n in OHLCV if not np.isfinite(cols[n][i]))
            rows.fail(i, f"{bad} is {cols[bad][i]}; expected a finite number", "nonfinite", "'drop' removes such rows")
        rows.keep(finite, "nonfinite")


def check_positive(rows: Rows, policy: ValidationPolicy) -> None:
    """Prices must be > 0 and volume >= 0: an error, or the rows dropped."""
    o, h, lo, c, v = (rows.cols[n] for n in ("open", "high", "low", "close", "volume"))
    positive = (o > 0) & (h > 0) & (lo > 0) & (c > 0) & (v >= 0)
    rows.report.nonpositive_rows = int((~positive).sum())
    if rows.report.nonpositive_rows:
        if policy.nonpositive == "error":
            i = int(np.argmin(positive))
            rows.fail(
                i,
                f"open={o[i]} high={h[i]} low={lo[i]} close={c[i]} volume={v[i]}; expected prices > 0 and volume >= 0",
                "nonpositive",
                "'drop' removes such rows",
            )
        rows.keep(positive, "nonpositive")


def check_ohlc(rows: Rows, policy: ValidationPolicy) -> None:
    """low <= min(open, close) <= max(open, close) <= high: an error, the rows dropped, or
    repaired. Bad prints (data/prints.py: one price at 1/10 or 10x the rest of its bar and its
    neighbours) are listed as such wherever they are; one that breaks the bar is repaired by
    clipping a bad high or low to the bar's body and by dropping a bar whose open or close is bad
    (its true price is unknown: the gap policy handles the hole), never by widening the bar to it.
    Other inconsistent bars have high/low widened to cover open/close (repair)."""
    from candleflow.data.prints import FIELDS, bad_print_fields, describe

    o, h, lo, c = (rows.cols[n] for n in FIELDS)
    consistent = (h >= np.maximum(o, c)) & (lo <= np.minimum(o, c))
    bad, ref = bad_print_fields(o, h, lo, c)
    rep = rows.report
    bad_rows = np.flatnonzero(bad.any(axis=1))
    rep.bad_print_rows = int(bad_rows.size)
    t = rows.cols["open_time"]
    rep.bad_prints = [
        describe(_iso(t[i])[:10], FIELDS[k], float(rows.cols[FIELDS[k]][i]), float(ref[i]))
        for i in bad_rows[:MAX_LISTED_SPIKES]
        for k in np.flatnonzero(bad[i])
    ]
    if rep.bad_print_rows:
        log.warning("validation: %d bad prints: %s", rep.bad_print_rows, "; ".join(rep.bad_prints[:3]))
    rep.ohlc_inconsistent_rows = int((~consistent).sum())
    if not rep.ohlc_inconsistent_rows:
        return
    if policy.ohlc == "error":
        i = int(np.argmin(consistent))
        bad_here = [
            describe(_iso(t[i])[:10], FIELDS[k], float(rows.cols[FIELDS[k]][i]), float(ref[i]))
            for k in np.flatnonzero(bad[i])
        ]
        what = (
            f"a bad print: {bad_here[0].split(': ', 1)[1]}"
            if bad_here
            else f"high={h[i]} low={lo[i]} open={o[i]} close={c[i]}; expected low <= min(open, close) <= max(open, close) <= high"
        )
        rows.fail(
            i,
            what,
            "ohlc",
            "'repair' widens high/low to cover open/close (and clips a bad high or low to the body, drops a bar "
            "whose open or close is a bad print), 'drop' removes the rows",
        )
    if policy.ohlc == "drop":
        rows.keep(consistent, "ohlc")
        return
    broken = ~consistent
    body_hi, body_lo = np.maximum(o, c), np.minimum(o, c)
    rows.cols["high"] = np.where(broken & bad[:, 1], body_hi, h)
    rows.cols["low"] = np.where(broken & bad[:, 2], body_lo, lo)
    o, h, lo, c = (rows.cols[n] for n in FIELDS)
    rows.cols["high"] = np.maximum.reduce([o, h, lo, c])
    rows.cols["low"] = np.minimum.reduce([o, h, lo, c])
    bad_body = broken & (bad[:, 0] | bad[:, 3])
    rep.ohlc_repaired_rows = rep.ohlc_inconsistent_rows - int(bad_body.sum())
    rows.keep(~bad_body, "bad_prints")


def check_order(rows: Rows, policy: ValidationPolicy) -> None:
    """Rows whose time comes after a later one: an error, dropped, or sorted by time (repair)."""
    t = rows.cols["open_time"]
    back = np.zeros(len(t), dtype=bool)
    if len(t) > 1:
        running = np.maximum.accumulate(t)
        back[1:] = t[1:] < running[:-1]
    rows.report.out_of_order_rows = int(back.sum())
    if rows.report.out_of_order_rows:
        if policy.out_of_order == "error":
            i = int(np.argmax(back))
            rows.fail(
                i,
                f"open_time {_iso(t[i])} comes after a later one; expected increasing times",
                "out_of_order",
                "'repair' sorts by time, 'drop' removes the rows",
            )
        if policy.out_of_order == "drop":
            rows.keep(~back, "out_of_order")
        else:
            order = np.argsort(t, kind="stable")
            rows.cols = {k: v[order] for k, v in rows.cols.items()}
            rows.where = rows.where[order]


def check_duplicates(rows: Rows, policy: ValidationPolicy) -> None:
    """Rows repeating an open_time (counted, and those with other values counted as conflicting):
    an error, or the first row of each time kept."""
    cols = rows.cols
    t = cols["open_time"]
    dup = np.zeros(len(t), dtype=bool)
    if len(t) > 1:
        dup[1:] = t[1:] == t[:-1]
    rows.report.duplicate_rows = int(dup.sum())
    if rows.report.duplicate_rows:
        idx = np.flatnonzero(dup)
        differs = np.zeros(len(idx), dtype=bool)
        for name in OHLCV:
            differs |= cols[name][idx] != cols[name][idx - 1]
        rows.report.conflicting_duplicate_rows = int(differs.sum())
        if policy.duplicates == "error":
            i = int(idx[0])
            rows.fail(
                i,
                f"open_time {_iso(t[i])} repeats; expected one row per time",
                "duplicates",
                "'drop' keeps the first row of each time",
            )
        rows.keep(~dup, "duplicates")


def check_grid(rows: Rows, policy: ValidationPolicy, interval: str | None) -> tuple[str, int]:
    """The interval (given, the source's, or the most common step) and rows off its grid: an
    error or dropped. Returns the interval's name and length in ns."""
    t = rows.cols["open_time"]
    if len(t) < 2:
        raise ValidationError(f"{rows.raw.source}: {len(t)} valid rows left; need at least 2 to form a series")
    iv_name = _interval_of(rows, interval)
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
                f"open_time {_iso(t[i])} is not on the {iv_name} grid that starts at {_iso(t[0])}",
                "misaligned",
                "'drop' removes such rows",
            )
        rows.keep(aligned, "misaligned")
    return iv_name, iv


MAX_LISTED_SPIKES = 20


def check_splits(rows: Rows, policy: ValidationPolicy) -> None:
    """Suspected stock splits in unadjusted prices (data/adjust.py): reported with their dates
    and a warning, back-adjusted, an error naming the row, or only counted (validation.splits)."""
    from candleflow.data.adjust import adjust_for_splits, split_name, suspected_splits

    cols, rep = rows.cols, rows.report
    found = suspected_splits(cols["open"], cols["high"], cols["low"], cols["close"])
    if not found:
        return
    t = cols["open_time"]
    rep.suspected_splits = [
        f"{_iso(t[i])[:10]}: open / previous close {cols['open'][i] / cols['close'][i - 1]:.3f} ({split_name(r)})"
        for i, r in found
    ]
    if policy.splits == "error":
        i, r = found[0]
        rows.fail(
            i,
            f"suspected {split_name(r)} split: opens at {cols['open'][i] / cols['close'][i - 1]:.3f} x the previous close "
            "and stays there",
            "splits",
            "'adjust' back-adjusts the bars before it, 'warn' reports it; a file with an adjusted close "
            "is adjusted by it (source.adjust: auto)",
        )
    if policy.splits == "adjust":
        rows.cols = {
            **cols,
            **adjust_for_splits({k: cols[k] for k in ("open", "high", "low", "close", "volume")}, found),
        }
        rep.adjusted = f"{len(found)} suspected splits back-adjusted (validation.splits: adjust)"
        log.info("validation: %s: %s", rep.adjusted, "; ".join(rep.suspected_splits))
    elif policy.splits == "warn":
        msg = (
            f"{len(found)} suspected stock splits left unadjusted ({'; '.join(rep.suspected_splits[:3])}): a split "
            "reads as a return that never reverts; give a file with an adjusted close (source.adjust: auto) or "
            "set validation.splits: adjust"
        )
        rep.warnings.append(msg)
        log.warning("validation: %s", msg)


def check_spikes(rows: Rows, policy: ValidationPolicy) -> np.ndarray | None:
    """Prices that pass the OHLC check but not a robust one: a wick, or a close that jumps and
    reverts next bar, beyond `spike_threshold` x the bars' typical move before it (their returns
    and ranges, winsorised, so a spike hardly raises its own yardstick; the first 20 bars have no
    yardstick yet). Counted; allowed, repaired, dropped or an error."""
    cols, rep = rows.cols, rows.report
    o, h, lo, c = (np.log(cols[n]) for n in ("open", "high", "low", "close"))
    if c.size < 3:
        return None
    k = policy.spike_threshold
    scale = robust_scale(c, h - lo, 50)
    body_hi, body_lo = np.maximum(o, c), np.minimum(o, c)
    wick_up = (h - body_hi) > k * scale
    wick_down = (body_lo - lo) > k * scale
    r = np.diff(c)
    jump = np.zeros(c.size, dtype=bool)
    jump[1:-1] = (
        (np.abs(r[:-1]) > k * scale[1:-1])
        & (np.abs(r[1:]) > k * scale[1:-1])
        & (np.sign(r[:-1]) != np.sign(r[1:]))
        & (np.abs(r[:-1] + r[1:]) < 0.5 * np.abs(r[:-1]))
    )
    spike = wick_up | wick_down | jump
    spike[:SPIKE_WARMUP] = wick_up[:SPIKE_WARMUP] = wick_down[:SPIKE_WARMUP] = jump[:SPIKE_WARMUP] = False
    rep.spike_rows = int(spike.sum())
    if not rep.spike_rows:
        return None
    t = cols["open_time"]
    for i in np.flatnonzero(spike)[:MAX_LISTED_SPIKES]:
        what = "close jumps and reverts" if jump[i] else ("high" if wick_up[i] else "low")
        value = cols["close"][i] if jump[i] else (cols["high"][i] if wick_up[i] else cols["low"][i])
        rep.spikes.append(f"{_iso(t[i])}: {what} {value:g} (open {cols['open'][i]:g}, close {cols['close'][i]:g})")
    if policy.spikes == "error":
        i = int(np.argmax(spike))
        rows.fail(
            i,
            f"price spike: {rep.spikes[0].split(': ', 1)[1]}, over {k:g}x the bars' typical move before it",
            "spikes",
            "'repair' clips the wick or drops the bar, 'drop' removes it, 'allow' keeps it (counted)",
        )
    if policy.spikes == "drop":
        rows.keep(~spike, "spikes")
        return ~spike
    if policy.spikes == "repair":
        cols["high"] = np.where(wick_up, np.maximum(cols["open"], cols["close"]), cols["high"])
        cols["low"] = np.where(wick_down, np.minimum(cols["open"], cols["close"]), cols["low"])
        rep.spike_repaired_rows = int((wick_up | wick_down)[~jump].sum())
        rows.keep(~jump, "spikes")  # the true close is unknown: the bar goes, the gap policy handles it
        return ~jump
    return None


SPIKE_WARMUP = 20  # bars of history before a bar can be called a spike (no yardstick before)


@numba.njit(cache=True)
def robust_scale(log_close: np.ndarray, log_range: np.ndarray, span: int) -> np.ndarray:
    """Per bar, the typical move of the bars before it: an EWMA of max(|close-to-close log
    return|, log(high / low)) whose inputs are capped at 5x the running value, so one spike barely
    moves it; floored at 1e-5."""
    n = log_close.shape[0]
    out = np.empty(n)
    alpha = 2.0 / (span + 1.0)
    m = min(n - 1, span)
    first = np.empty(max(m, 1))
    for i in range(max(m, 1)):
        first[i] = max(abs(log_close[i + 1] - log_close[i]) if i + 1 < n else 0.0, log_range[i])
    s = max(np.median(first), 1e-5)
    for i in range(n):
        out[i] = s
        if i + 1 < n:
            move = max(abs(log_close[i + 1] - log_close[i]), log_range[i + 1])
            s = max((1.0 - alpha) * s + alpha * min(move, 5.0 * s), 1e-5)
    return out


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
                    f"a daily bar at {_iso(t[i])}, a day without a {policy.calendar} session",
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
                f"open_time {_iso(t[i])} is inside a {policy.calendar} session but not on its {iv_name} grid "
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


def _interval_of(rows: Rows, interval: str | None) -> str:
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
            f"{int(missing[gap_at[0]])} missing {iv_name} bars before {_iso(t[i])}",
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


def check_zero_volume(
    rows: Rows, policy: ValidationPolicy, out: dict[str, np.ndarray], segments: np.ndarray, real: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Runs of real bars with zero volume (filled bars are counted as filled): counted; an error,
    allowed, or dropped with each run splitting its segment."""
    rep = rows.report
    zero = (out["volume"] == 0) & real
    rep.zero_volume_rows = int(zero.sum())
    if rep.zero_volume_rows:
        edges = np.diff(np.concatenate([[0], zero.astype(np.int8), [0]]))
        run_starts, run_stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        rep.zero_volume_runs = int(run_starts.size)
        rep.longest_zero_volume_run = int((run_stops - run_starts).max())
        if policy.zero_volume == "error":
            i = int(np.searchsorted(np.flatnonzero(real), run_starts[0]))
            rows.fail(
                i,
                "volume is 0; expected trading in every bar",
                "zero_volume",
                "'allow' keeps such bars, 'drop' removes them and splits the segment",
            )
        if policy.zero_volume == "drop":
            out, segments = _drop_rows(out, segments, ~zero)
            rep.dropped_rows["zero_volume"] = rep.zero_volume_rows
    return out, segments


def validate_candles(
    raw: RawCandles, policy: ValidationPolicy | None = None, interval: str | None = None
) -> tuple[Candles, ValidationReport]:
    """Check raw rows against the data contract and return Candles with a report of each defect:
    the named checks run in this order, each applying its policy."""
    policy = policy or ValidationPolicy()
    cols = {k: np.asarray(v) for k, v in raw.columns.items()}
    cols["open_time"] = cols["open_time"].astype(np.int64)
    for name in OHLCV:
        cols[name] = cols[name].astype(np.float64)
    rows = Rows(cols, np.arange(len(raw)), ValidationReport(rows_in=len(raw)), raw)
    check_finite(rows, policy)
    check_positive(rows, policy)
    check_order(rows, policy)
    check_duplicates(rows, policy)
    check_ohlc(rows, policy)  # in time order: a bad print is judged against its neighbours
    check_splits(rows, policy)
    if policy.calendar == AUTO:  # a source that knows its exchange resolved it before this point
        policy = policy.model_copy(update={"calendar": ALWAYS_OPEN})
    if policy.calendar == ALWAYS_OPEN:
        iv_name, iv = check_grid(rows, policy, interval)
        grid = always_open_grid(rows.cols["open_time"], iv)
    else:
        iv_name = _interval_of(rows, interval)
        grid = check_calendar(rows, policy, iv_name)
    grid = grid.keep(check_spikes(rows, policy))  # on the bars that stay (not the dropped out-of-hours ones)
    out, segments, real = fill_gaps(rows, policy, iv_name, grid)
    warn_filled(rows.report, out["open_time"], real)
    out, segments = check_zero_volume(rows, policy, out, segments, real)

    rep = rows.report
    lengths = segments[:, 1] - segments[:, 0]
    rep.segments = int(len(segments))
    rep.segment_lengths = {"min": int(lengths.min()), "median": int(np.median(lengths)), "max": int(lengths.max())}
    rep.rows_out = len(out["open_time"])
    rep.first_time = _iso(out["open_time"][0])
    rep.last_time = _iso(out["open_time"][-1])
    candles = Candles(
        open_time=out["open_time"],
        open=out["open"],
        high=out["high"],
        low=out["low"],
        close=out["close"],
        volume=out["volume"],
        segments=segments,
        symbol=raw.symbol,
        interval=iv_name,
        source=raw.source,
        extra={k: v for k, v in out.items() if k not in OHLCV and k != "open_time"},
        calendar=policy.calendar,
    )
    return candles, rep


FILLED_SHARE_WARNING = 0.01  # filling more than this share of the bars is said, never "all checks passed"


def warn_filled(rep: ValidationReport, times: np.ndarray, real: np.ndarray) -> None:
    """Add a warning (and log it) when gap repair invented more than FILLED_SHARE_WARNING of the
    output bars: a market that closes (weekends, holidays) on a 24/7 calendar looks like this."""
    filled = int((~real).sum())
    if filled <= FILLED_SHARE_WARNING * max(real.size, 1):
        return
    first = ", ".join(_iso(x) for x in times[~real][:3])
    msg = (
        f"{filled:,} of {real.size:,} bars ({filled / real.size:.1%}) were invented to fill gaps "
        f"(validation.gaps=repair, calendar {rep.calendar}), the first at {first}; if the market closes "
        "(weekends, holidays), set validation.calendar to its exchange (e.g. XNYS)"
    )
    rep.warnings.append(msg)
    log.warning("validation: %s", msg)


def _drop_rows(
    out: dict[str, np.ndarray], segments: np.ndarray, mask: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Remove rows; each removed run splits its segment."""
    seg_break = np.zeros(len(mask) + 1, dtype=bool)
    seg_break[segments[:, 0]] = True
    # a kept row starts a segment if it starts one already or follows a dropped row
    prev_dropped = np.concatenate([[False], ~mask[:-1]])
    starts_here = (seg_break[:-1] | prev_dropped) & mask
    new_index = np.cumsum(mask) - 1
    starts = new_index[starts_here]
    n = int(mask.sum())
    if n == 0:
        raise ValidationError("no rows left after dropping zero-volume bars")
    stops = np.concatenate([starts[1:], [n]])
    return {k: v[mask] for k, v in out.items()}, np.stack([starts, stops], axis=1).astype(np.int64)


def _infer_interval(t: np.ndarray) -> str:
    """The most common positive step between consecutive times, as an interval name."""
    d = np.diff(t)
    d = d[d > 0]
    if d.size == 0:
        raise ValidationError("cannot infer the interval: all rows share one open_time")
    vals, counts = np.unique(d, return_counts=True)
    return interval_name(int(vals[np.argmax(counts)]))


def _iso(ns: int | np.integer) -> str:
    return str(np.datetime64(int(ns), "ns"))[:19]
