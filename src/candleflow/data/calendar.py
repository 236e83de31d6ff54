"""Exchange calendars: where bars are expected. `24/7` (crypto) expects a bar every interval;
an exchange (XNYS, XLON, XETR, ... any `exchange_calendars` name) only inside its sessions, so
weekends, holidays, nights, lunch breaks and early closes are neither gaps nor filled."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from candleflow.config.intervals import interval_ns
from candleflow.errors import ConfigError

ALWAYS_OPEN = "24/7"
AUTO = "auto"  # the source's own exchange when it reports one (yfinance), else 24/7
DAY_NS = 86_400 * 10**9
HALF_DAY_NS = DAY_NS // 2


@dataclass(frozen=True)
class Slots:
    """The bar open times (int64 ns UTC, increasing) an exchange expects over a span, with the
    session each belongs to and each session's [open, close) in ns UTC."""

    times: np.ndarray  # (n,) int64
    session: np.ndarray  # (n,) int64 index into opens/closes
    opens: np.ndarray  # (S,) int64
    closes: np.ndarray  # (S,) int64
    dates: np.ndarray  # (S,) datetime64[D] session dates (exchange-local)
    tz: str  # the exchange's IANA time zone
    daily: bool

    def session_of_extended(self, times: np.ndarray, next_slot: np.ndarray) -> np.ndarray:
        """The session an out-of-hours bar belongs to: the next session when it opens within
        12 h (pre-market), else the previous one (post-market, overnight)."""
        nxt = np.minimum(next_slot, self.times.size - 1)
        prev = np.maximum(next_slot - 1, 0)
        soon = (next_slot < self.times.size) & (self.times[nxt] - times < HALF_DAY_NS)
        return np.where(soon, self.session[nxt], self.session[prev])


def require_calendars():
    """The exchange_calendars module, or a one-line error saying how to install it."""
    try:
        import exchange_calendars
    except ImportError:
        raise ConfigError(
            "validation.calendar names an exchange: install exchange_calendars "
            "(pip install 'candleflow[stocks]') or use calendar '24/7'"
        ) from None
    return exchange_calendars


def check_calendar(name: str | None) -> None:
    """`validation.calendar` checked up front (about 0.4 s, exchange_calendars' import): an
    exchange needs the `stocks` extra, and its name must be one exchange_calendars knows; a
    one-line error otherwise, before any heavy import or download."""
    if name in (None, "auto", "24/7"):
        return
    xc = require_calendars()
    if name not in xc.get_calendar_names():
        raise ConfigError(_unknown_calendar(name, xc))


def _unknown_calendar(name: str, xc: Any) -> str:
    known = xc.get_calendar_names(include_aliases=False)
    return (
        f"validation.calendar {name!r}: unknown exchange calendar; expected '24/7' or one of "
        f"{len(known)} exchange_calendars names such as XNYS, XNAS, XLON, XETR, XTKS, XHKG"
    )


@lru_cache(maxsize=16)
def _schedule(
    name: str, first_day: str, last_day: str
) -> tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(time zone, dates, opens, closes, break_starts, break_ends) of the sessions between two dates."""
    xc = require_calendars()
    try:
        with warnings.catch_warnings():  # pandas deprecations raised inside exchange_calendars
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            cal = xc.get_calendar(name, start=first_day, end=last_day)
    except xc.errors.InvalidCalendarName:
        raise ConfigError(_unknown_calendar(name, xc)) from None
    except (ValueError, xc.errors.CalendarError) as exc:
        raise ConfigError(f"validation.calendar {name!r}: {str(exc).splitlines()[0][:200]}") from None
    sched = cal.schedule.loc[first_day:last_day]

    def ns(col: str) -> np.ndarray:
        values = sched[col]
        out = values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[ns]").astype(np.int64)
        return np.where(values.isna().to_numpy(), -1, out)

    dates = sched.index.to_numpy("datetime64[D]")
    return str(cal.tz), dates, ns("open"), ns("close"), ns("break_start"), ns("break_end")


def session_hours(name: str, open_ns: np.ndarray, step_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """For bars opening at `open_ns` (UTC ns) on exchange `name`: hours from the session's open to
    each bar's close, and from each bar's close to the session's close (early closes included),
    NaN for a bar outside every session. A daily bar is its session's whole day: its close is the
    session's close."""
    open_ns = np.asarray(open_ns, dtype=np.int64)
    out_e = np.full(open_ns.size, np.nan)
    out_r = np.full(open_ns.size, np.nan)
    if open_ns.size == 0:
        return out_e, out_r
    day = 86_400_000_000_000
    first = str(np.datetime64(int(open_ns.min()) - day, "ns").astype("datetime64[D]"))
    last = str(np.datetime64(int(open_ns.max()) + 2 * day, "ns").astype("datetime64[D]"))
    _, dates, opens, closes, _, _ = _schedule(name, first, last)
    k = np.searchsorted(opens, open_ns, side="right") - 1
    kk = np.maximum(k, 0)
    inside = (k >= 0) & (open_ns < closes[kk])  # the session the bar opens in
    if step_ns >= day:  # a daily bar is its session: opened at the session's open, or at midnight of its date
        days = dates.astype("datetime64[ns]").astype(np.int64)
        d = np.minimum(np.searchsorted(days, open_ns), days.size - 1)
        by_date = ~inside & (days[d] == open_ns)
        kk = np.where(inside, kk, d)
        ok = inside | by_date
        out_e[ok] = (closes[kk] - opens[kk])[ok] / 3.6e12
        out_r[ok] = 0.0
        return out_e, out_r
    close_at = open_ns + step_ns
    ok = inside
    out_e[ok] = (np.minimum(close_at, closes[kk]) - opens[kk])[ok] / 3.6e12
    out_r[ok] = np.maximum(closes[kk] - close_at, 0)[ok] / 3.6e12
    return out_e, out_r


def calendar_slots(name: str, interval: str, first_ns: int, last_ns: int) -> Slots:
    """The bars `name` expects between two times (a day of margin either side): for daily bars one
    per session at its open; for intraday bars open + k x interval while before the close (or the
    lunch break), so the last bar of a session may be short."""
    iv = interval_ns(interval)
    first = np.datetime64(int(first_ns) - 2 * DAY_NS, "ns").astype("datetime64[D]")
    last = np.datetime64(int(last_ns) + 2 * DAY_NS, "ns").astype("datetime64[D]")
    tz, dates, opens, closes, b_start, b_end = _schedule(name, str(first), str(last))
    if dates.size == 0:
        raise ConfigError(f"validation.calendar {name!r}: no sessions between {first} and {last}")
    if iv >= DAY_NS:
        if iv != DAY_NS:
            raise ConfigError(
                f"validation.calendar {name!r}: bars of {interval}; an exchange calendar takes intraday or 1d bars"
            )
        return Slots(opens.copy(), np.arange(dates.size), opens, closes, dates, tz, True)
    times, session = [], []
    for s in range(dates.size):
        pieces = [(opens[s], closes[s])]
        if b_start[s] >= 0 and b_end[s] >= 0:
            pieces = [(opens[s], b_start[s]), (b_end[s], closes[s])]
        for lo, hi in pieces:
            t = np.arange(lo, hi, iv, dtype=np.int64)
            times.append(t)
            session.append(np.full(t.size, s, dtype=np.int64))
    return Slots(np.concatenate(times), np.concatenate(session), opens, closes, dates, tz, False)


def daily_session_of(times: np.ndarray, slots: Slots) -> np.ndarray:
    """Session index of each daily bar (-1: no session that day): the session whose exchange-local
    date is that of the bar time + 12 h, which covers date-only stamps (midnight UTC) and
    local-midnight stamps with their UTC offset alike."""
    import pandas as pd

    local = pd.to_datetime(times + HALF_DAY_NS, utc=True).tz_convert(slots.tz).tz_localize(None)
    day = local.to_numpy("datetime64[D]")
    pos = np.searchsorted(slots.dates, day)
    pos_c = np.minimum(pos, slots.dates.size - 1)
    return np.where(slots.dates[pos_c] == day, pos_c, -1)


def bars_per_year(calendar: str, interval: str, last_ns: int) -> float:
    """Bars a year holds: 365 days of intervals for 24/7; for an exchange, the bars its sessions
    expected in the year up to `last_ns` (about 252 daily or 1,764 hourly bars on XNYS)."""
    year = 365 * DAY_NS
    if calendar in (ALWAYS_OPEN, AUTO):
        return year / interval_ns(interval)
    slots = calendar_slots(calendar, interval, int(last_ns) - year, int(last_ns))
    inside = (slots.times > int(last_ns) - year) & (slots.times <= int(last_ns))
    return float(max(int(inside.sum()), 1))


# exchanges `validation.calendar: auto` tries for files whose bars skip weekends (most traded first)
CANDIDATES = ("XNYS", "XNAS", "XLON", "XETR", "XPAR", "XAMS", "XSWX", "XTSE", "XASX", "XTKS", "XHKG", "XSHG", "XBOM")
MAX_OFF_SESSION = 0.005  # days with bars that are not sessions: an exchange is chosen only below this share
MAX_MISSING = 0.05  # sessions without bars (outages, a thin file): tolerated up to this share
MIN_DAYS = 20  # fewer distinct days cannot tell an exchange from 24/7 trading


WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _scores(stamped: np.ndarray, pad_ns: int) -> list[tuple[float, str, int, int]]:
    """(share of days that agree, calendar, days with bars off its sessions, sessions without bars)
    for each candidate exchange, best first; `stamped` are the bars' times (ns) as dated."""
    import pandas as pd

    first = str(np.datetime64(int(stamped[0]) - 2 * DAY_NS - pad_ns, "ns").astype("datetime64[D]"))
    last = str(np.datetime64(int(stamped[-1]) + 2 * DAY_NS + pad_ns, "ns").astype("datetime64[D]"))
    stamps = pd.to_datetime(stamped, utc=True)
    scores: list[tuple[float, str, int, int]] = []
    for name in CANDIDATES:
        try:
            tz, dates, *_ = _schedule(name, first, last)
        except ConfigError:  # a range outside what this calendar covers
            continue
        days = np.unique(stamps.tz_convert(tz).tz_localize(None).to_numpy("datetime64[D]"))
        lo, hi = days[0], days[-1]
        sessions = dates[(dates >= lo) & (dates <= hi)]
        both = np.intersect1d(days, sessions).size
        either = np.union1d(days, sessions).size
        scores.append((both / max(either, 1), name, int(days.size - both), int(sessions.size - both)))
    scores.sort(key=lambda s: (-s[0], CANDIDATES.index(s[1])))
    return scores


def infer_calendar(times: np.ndarray, where: str = "the file") -> tuple[str, str]:
    """(calendar, why) for bars whose exchange nobody named: `24/7` where bars fall on weekends;
    else the candidate exchange whose sessions match the days with bars best (bars on at most
    MAX_OFF_SESSION of its non-session days, at most MAX_MISSING of its sessions without bars:
    a holiday with bars rules an exchange out); a ConfigError naming
    `validation.calendar` where it cannot tell. Days are the exchange's local dates of the bars
    (taken at the bar's open + 12 h for daily bars stamped at midnight)."""
    t = np.asarray(times, dtype=np.int64)
    if t.size == 0:
        return ALWAYS_OPEN, "no bars"
    step = int(np.median(np.diff(t))) if t.size > 1 else DAY_NS
    shift = HALF_DAY_NS if step >= DAY_NS else 0
    utc_days = np.unique((t + shift) // DAY_NS)
    weekday = (utc_days + 3) % 7  # 0 = Monday (1970-01-01 was a Thursday)
    weekend = float(np.isin(weekday, (5, 6)).mean())
    counts = np.bincount(weekday, minlength=7)
    absent = [WEEKDAYS[d] for d in range(7) if counts[d] < 0.2 * counts.max()]
    if weekend >= 0.10 and (not absent or utc_days.size < MIN_DAYS):
        return ALWAYS_OPEN, f"{weekend:.0%} of the days with bars are Saturdays or Sundays"
    if utc_days.size < MIN_DAYS:
        return ALWAYS_OPEN, f"only {utc_days.size} days of bars: too few to tell an exchange, assumed 24/7"
    try:
        import pandas as pd  # noqa: F401  (exchange_calendars needs it)

        require_calendars()
    except (ConfigError, ImportError):
        raise ConfigError(
            f"{where}: bars only on some weekdays look like an exchange's sessions, but exchange_calendars is not "
            "installed to tell which; set validation.calendar (XNYS, XLON, ... or 24/7) or "
            "pip install 'candleflow[stocks]'"
        ) from None
    if weekend >= 0.10:  # weekend bars, yet whole weekdays without any: neither 24/7 nor sessions as stamped
        shifted = _scores(t + shift - DAY_NS, DAY_NS)
        close = ", ".join(f"{n} with every day one earlier ({a:.0%} of days agree)" for a, n, _, _ in shifted[:2])
        raise ConfigError(
            f"{where}: bars on Saturdays but never on {' or '.join(absent)}: neither a 24/7 market (bars every day) "
            f"nor an exchange's sessions as stamped (closest: {close or 'none'}); the dates may be stamped a day "
            "late; fix the file's times, or set validation.calendar (24/7 fills the missing days, an exchange "
            "drops the bars off its sessions)"
        )
    scores = _scores(t + shift, 0)
    if not scores:
        raise ConfigError(f"{where}: no exchange calendar covers these dates; set validation.calendar")
    fits = [sc for sc in scores if sc[2] <= MAX_OFF_SESSION * utc_days.size and sc[3] <= MAX_MISSING * utc_days.size]
    if not fits:
        runner = ", ".join(
            f"{n} ({x} days with bars off its sessions, {m} sessions without)" for _, n, x, m in scores[:2]
        )
        raise ConfigError(
            f"{where}: cannot tell the calendar (bars on weekdays only; closest {runner}); "
            "set validation.calendar (an exchange such as XNYS, or 24/7)"
        )
    share, name, extra, missing = fits[0]
    why = (
        f"inferred {name}: {share:.1%} of {utc_days.size:,} days agree with its sessions "
        f"({extra} days with bars off its sessions, {missing} sessions without bars)"
    )
    return name, why
