"""The rows a source hands over (RawCandles) and the count of what validation found in them
(ValidationReport), and the working set of rows the checks narrow (Rows)."""

from __future__ import annotations

import bisect
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

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


def iso(ns: int | np.integer) -> str:
    return str(np.datetime64(int(ns), "ns"))[:19]
