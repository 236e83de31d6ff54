"""Exchange calendars: bars expected only inside sessions (real SPY daily and hourly bars), out-of-hours
bars, session breaks, local times, and price spikes that pass the OHLC check."""

from __future__ import annotations

import numpy as np
import pytest

from candleflow.config import FilesSource, ValidationPolicy, load_config
from candleflow.data.load import load_candles
from candleflow.data.validate import RawCandles, validate_candles
from candleflow.errors import ConfigError, ValidationError
from conftest import SHARED

pytest.importorskip("exchange_calendars")


@pytest.fixture(scope="module")
def stocks():
    path = SHARED / "data" / "stocks"
    if not path.is_dir():
        pytest.fail(f"shared stock data not found at {path} (set CANDLEFLOW_SHARED)")
    return path


def raw(times_ns, o, h, l, c) -> RawCandles:
    """RawCandles from absolute ns times and OHLC lists (volume 1)."""
    cols = {"open_time": np.asarray(times_ns, dtype=np.int64)}
    cols |= {k: np.asarray(v, float) for k, v in zip(("open", "high", "low", "close"), (o, h, l, c))}
    cols["volume"] = np.ones(len(times_ns))
    return RawCandles(columns=cols, symbol="TEST", source="test")


def spy(stocks, name, **policy):
    return load_candles(FilesSource(paths=[str(stocks / name)]), ValidationPolicy(**policy))


def ns(text: str) -> int:
    return int(np.datetime64(text, "ns").astype(np.int64))


def test_spy_daily_on_xnys_has_no_invented_bars_and_the_bad_tick_is_repaired(stocks):
    candles, rep = spy(stocks, "SPY-1d.csv", calendar="XNYS")
    assert (rep.rows_in, rep.rows_out, rep.gaps, rep.filled_bars, rep.segments) == (2000, 2000, 0, 0, 1)
    assert rep.off_calendar_rows == 0 and rep.calendar == "XNYS"
    # a daily bar opens at its session's open: 09:30 New York, EST in February, EDT in July
    assert candles.time_str(0) == "2018-02-26T14:30:00"
    assert "2025-07-03T13:30:00" in {candles.time_str(i) for i in range(len(candles) - 200, len(candles))}
    # the two national days of mourning are closures, not gaps: the bars either side are neighbours
    t = candles.open_time
    before, after = np.searchsorted(t, ns("2018-12-04T14:30")), np.searchsorted(t, ns("2018-12-06T14:30"))
    assert after == before + 1
    # 2026-02-02: low 69.005 against open 689.58 and close 695.41 passes the OHLC check, not this one
    assert rep.spike_rows == 1 and rep.spike_repaired_rows == 1
    assert rep.spikes == ["2026-02-02T14:30:00: low 69.005 (open 689.58, close 695.41)"]
    bad = np.searchsorted(t, ns("2026-02-02T14:30"))
    assert candles.low[bad] == 689.58 and candles.close[bad] == 695.41


def test_spy_daily_on_24_7_invents_the_weekends(stocks):
    candles, rep = spy(stocks, "SPY-1d.csv", calendar="24/7")
    assert rep.calendar == "24/7" and rep.rows_out == 2906 and rep.filled_bars == 906  # the weekends invented
    assert candles.time_str(0) == "2018-02-26T00:00:00"
    allowed, rep2 = spy(stocks, "SPY-1d.csv", spikes="allow", calendar="24/7")
    assert rep2.spike_rows == 1 and rep2.spike_repaired_rows == 0 and allowed.low.min() == 69.005
    with pytest.raises(
        ValidationError,
        match=r"SPY-1d.csv line 1996: price spike: low 69.005 .*typical move before it \(validation.spikes=error",
    ):
        spy(stocks, "SPY-1d.csv", spikes="error", calendar="XNYS")


def test_spy_hourly_on_xnys_counts_out_of_hours_bars_and_the_one_real_gap(stocks):
    candles, rep = spy(stocks, "SPY-1h.csv", calendar="XNYS")
    # 65 sessions of 7 regular bars, less the first day's 09:30, the last day's 11:30..15:30, and the
    # early close's 12:30, which Yahoo never sent (its 13:00 bar is after the 13:00 close)
    assert rep.rows_in == 1084 and rep.extended_hours_rows == 639 and rep.dropped_rows == {"extended_hours": 639}
    assert (rep.gaps, rep.missing_bars, rep.filled_bars, rep.rows_out) == (1, 1, 1, 446)
    filled = np.flatnonzero(candles.volume == 0)
    assert [candles.time_str(i) for i in filled] == ["2025-06-26T14:30:00", "2025-07-03T16:30:00"]
    assert candles.time_str(0) == "2025-06-26T14:30:00" and candles.time_str(len(candles) - 1) == "2025-09-26T14:30:00"
    split, rep_split = spy(stocks, "SPY-1h.csv", calendar="XNYS", gaps="split")
    assert rep_split.filled_bars == 0 and len(split.segments) == 2 and rep_split.rows_out == 445
    sessions, rep_s = spy(stocks, "SPY-1h.csv", calendar="XNYS", session_breaks="segment")
    assert rep_s.session_splits == 64 and len(sessions.segments) == 65  # one segment per session
    assert (rep_s.gaps, rep_s.filled_bars) == (1, 0)  # the missing 12:30 ends its session: no filling across


def test_spy_hourly_keeping_extended_hours(stocks):
    candles, rep = spy(stocks, "SPY-1h.csv", calendar="XNYS", extended_hours="keep")
    assert rep.rows_out == 1084 and rep.extended_hours_rows == 639 and rep.dropped_rows == {}
    # the missing 12:30 is still counted, but not filled: the kept 13:00 bar already follows it
    assert (rep.gaps, rep.missing_bars, rep.filled_bars) == (1, 1, 0) and len(candles.segments) == 2
    assert rep.spike_rows == 7  # Yahoo's out-of-hours bars: lows 8-25% below the price, at 30x their typical move
    by_session, rep_s = spy(stocks, "SPY-1h.csv", calendar="XNYS", extended_hours="keep", session_breaks="segment")
    starts = [by_session.time_str(int(a)) for a, _ in by_session.segments[:3]]
    assert starts == ["2025-06-26T14:30:00", "2025-06-27T08:00:00", "2025-06-30T08:00:00"]  # pre-market opens a day


def test_spy_hourly_on_24_7_is_refused(stocks):
    with pytest.raises(ValidationError, match="SPY-1h.csv line 8: open_time 2025-06-26T20:00:00 is not on the 1h grid"):
        spy(stocks, "SPY-1h.csv", calendar="24/7")


def test_local_times_without_offsets_take_source_timezone(stocks, tmp_path):
    text = (stocks / "SPY-1h.csv").read_text()
    naive = tmp_path / "SPY-local.csv"
    naive.write_text(text.replace("-04:00,", ","))
    policy = ValidationPolicy(calendar="XNYS")
    want, _ = load_candles(FilesSource(paths=[str(stocks / "SPY-1h.csv")]), policy)
    got, _ = load_candles(FilesSource(paths=[str(naive)], timezone="America/New_York"), policy)
    assert got.fingerprint == want.fingerprint
    with pytest.raises(ValidationError, match="inside a XNYS session but not on its 1h grid"):
        load_candles(FilesSource(paths=[str(naive)]), policy)  # read as UTC: 10:30 UTC is before the open
    with pytest.raises(Exception, match="unknown time zone 'Mars/Olympus'"):
        FilesSource(paths=[str(naive)], timezone="Mars/Olympus")


def test_bad_calendar_input_is_one_line():
    with pytest.raises(
        ConfigError, match=r"validation.calendar 'XNOPE': unknown exchange calendar; expected '24/7' or one of"
    ):
        load_candles(None, ValidationPolicy(calendar="XNOPE"))
    with pytest.raises(ConfigError, match="bars of 1w; an exchange calendar takes intraday or 1d bars") as exc:
        load_candles(
            load_config(None, ["source.interval=1w", "source.n_bars=200"]).source, ValidationPolicy(calendar="XNYS")
        )
    assert "\n" not in str(exc.value)
    with pytest.raises(Exception, match="calendar"):
        load_config(None, ["validation.calendar=../../etc"])
    # a daily bar on a Saturday is off the calendar
    saturday = raw(
        [ns("2024-01-05"), ns("2024-01-06"), ns("2024-01-08")], [10, 11, 12], [10, 11, 12], [10, 11, 12], [10, 11, 12]
    )
    with pytest.raises(
        ValidationError, match="row 2: a daily bar at 2024-01-06T00:00:00, a day without a XNYS session"
    ):
        validate_candles(saturday, ValidationPolicy(calendar="XNYS"), interval="1d")
    candles, rep = validate_candles(saturday, ValidationPolicy(calendar="XNYS", misaligned="drop"), interval="1d")
    assert rep.off_calendar_rows == 1 and len(candles) == 2 and rep.gaps == 0  # Friday and Monday are neighbours


def test_lunch_break_is_not_a_gap_and_a_missing_bar_inside_a_session_is():
    # Hong Kong, 2024-01-02: 09:30-12:00 and 13:00-16:00 local = 01:30-04:00 and 05:00-08:00 UTC
    day = ["01:30", "02:30", "03:30", "05:00", "06:00", "07:00"]
    times = [ns(f"2024-01-02T{h}") for h in day] + [ns(f"2024-01-03T{h}") for h in day if h != "06:00"]
    n = len(times)
    r = raw(times, [100.0] * n, [101.0] * n, [99.0] * n, [100.5] * n)
    candles, rep = validate_candles(r, ValidationPolicy(calendar="XHKG"), interval="1h")
    assert (rep.gaps, rep.missing_bars, rep.filled_bars) == (1, 1, 1) and len(candles) == 12
    assert candles.time_str(10) == "2024-01-03T06:00:00" and candles.volume[10] == 0
    assert len(candles.segments) == 1  # 03:30 -> 05:00 (lunch) and 07:00 -> next 01:30 (night): no gap


def test_a_close_that_jumps_and_reverts_is_a_spike_and_repair_drops_that_bar():
    n = 200
    rng = np.random.default_rng(3)
    good = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    t = np.arange(n) * 3_600_000_000_000

    def bars(close):
        open_ = np.concatenate([[good[0]], good[:-1]])  # opens follow the true closes
        return raw(t, open_, np.maximum(open_, close) * 1.001, np.minimum(open_, close) * 0.999, close)

    bad = good.copy()
    bad[120] = good[120] * 10  # one bad print of the close, OHLC-consistent (the high covers it)
    candles, rep = validate_candles(bars(bad), ValidationPolicy(), interval="1h")
    assert rep.spike_rows == 1 and rep.spikes[0].startswith("1970-01-06T00:00:00: close jumps and reverts")
    assert rep.dropped_rows == {"spikes": 1} and rep.filled_bars == 1  # the gap policy fills the hole
    assert candles.close[120] == good[119] and candles.volume[120] == 0
    kept, rep_allow = validate_candles(bars(bad), ValidationPolicy(spikes="allow"), interval="1h")
    assert rep_allow.spike_rows == 1 and kept.close[120] == bad[120]
    dropped, rep_drop = validate_candles(bars(bad), ValidationPolicy(spikes="drop", gaps="split"), interval="1h")
    assert len(dropped) == n - 1 and len(dropped.segments) == 2
    _, rep_quiet = validate_candles(bars(good), interval="1h")
    assert rep_quiet.spike_rows == 0


def test_annualising_counts_the_exchanges_bars_not_365_days():
    from candleflow.data.calendar import bars_per_year

    last = ns("2025-09-26T14:30")
    assert bars_per_year("XNYS", "1d", last) == 250  # the NYSE sessions in the year to that day
    assert bars_per_year("XNYS", "1h", last) == 1741  # 7 bars a session, fewer on early closes
    assert bars_per_year("24/7", "1h", last) == 8760
