"""Turn raw rows into the canonical Candles table, counting every defect and applying its policy."""

from __future__ import annotations

import logging

import numba
import numpy as np

from candleflow.config import ValidationPolicy
from candleflow.data.calendar import ALWAYS_OPEN, AUTO
from candleflow.data.candles import OHLCV, Candles
from candleflow.data.grid import (
    always_open_grid,
    check_calendar,
    check_grid,
    fill_gaps,
    interval_of,
    warn_filled,
)
from candleflow.data.rows import RawCandles, Rows, ValidationReport, iso
from candleflow.errors import ValidationError

log = logging.getLogger("candleflow")


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
        describe(iso(t[i])[:10], FIELDS[k], float(rows.cols[FIELDS[k]][i]), float(ref[i]))
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
            describe(iso(t[i])[:10], FIELDS[k], float(rows.cols[FIELDS[k]][i]), float(ref[i]))
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
                f"open_time {iso(t[i])} comes after a later one; expected increasing times",
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
                f"open_time {iso(t[i])} repeats; expected one row per time",
                "duplicates",
                "'drop' keeps the first row of each time",
            )
        rows.keep(~dup, "duplicates")


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
        f"{iso(t[i])[:10]}: open / previous close {cols['open'][i] / cols['close'][i - 1]:.3f} ({split_name(r)})"
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
        rep.spikes.append(f"{iso(t[i])}: {what} {value:g} (open {cols['open'][i]:g}, close {cols['close'][i]:g})")
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
        iv_name = interval_of(rows, interval)
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
    rep.first_time = iso(out["open_time"][0])
    rep.last_time = iso(out["open_time"][-1])
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
