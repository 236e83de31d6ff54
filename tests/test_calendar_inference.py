"""validation.calendar: auto on files: stock bars on their exchange's calendar (no invented weekend
and holiday bars), crypto on 24/7, a one-line error where the bars cannot tell; and a warning,
never silence, where gap repair invents more than 1% of the bars."""

import numpy as np
import pytest

from candleflow.config import FilesSource, ValidationPolicy
from candleflow.data.calendar import infer_calendar
from candleflow.data.load import load_candles
from candleflow.errors import ConfigError, ValidationError
from conftest import BINANCE, SHARED

STOCKS = SHARED / "data" / "stocks"
DAY = 86_400 * 10**9


def test_spy_daily_file_is_read_on_xnys_with_no_invented_bars():
    pytest.importorskip("exchange_calendars")
    candles, rep = load_candles(FilesSource(paths=[str(STOCKS / "SPY-1d.csv")]))
    assert rep.calendar == "XNYS" and candles.calendar == "XNYS"
    assert (rep.rows_in, rep.rows_out, rep.filled_bars, rep.missing_bars) == (2000, 2000, 0, 0)
    assert rep.calendar_reason.startswith("inferred XNYS: 100.0% of 2,000 days agree with its sessions")
    assert rep.warnings == [] and "inferred XNYS" in rep.summary()


def test_spy_hourly_file_is_read_on_xnys_and_its_extended_hours_counted():
    pytest.importorskip("exchange_calendars")
    _, rep = load_candles(FilesSource(paths=[str(STOCKS / "SPY-1h.csv")]))
    assert rep.calendar == "XNYS" and rep.calendar_reason.startswith("inferred XNYS")
    assert rep.dropped_rows["extended_hours"] == rep.extended_hours_rows > 0  # pre/post-market, counted
    assert rep.filled_bars <= 0.01 * rep.rows_out and rep.warnings == []


def test_the_same_daily_file_on_24_7_warns_with_the_first_invented_bars():
    """What the default did before: 906 weekend and holiday bars (31%) filled in silence."""
    _, rep = load_candles(FilesSource(paths=[str(STOCKS / "SPY-1d.csv")]), ValidationPolicy(calendar="24/7"))
    assert (rep.rows_out, rep.filled_bars) == (2906, 906)
    (warning,) = rep.warnings
    assert warning.startswith("906 of 2,906 bars (31.2%) were invented to fill gaps")
    assert "the first at 2018-03-03T00:00:00, 2018-03-04T00:00:00" in warning  # the first weekend
    assert "set validation.calendar to its exchange" in warning


def test_binance_files_stay_24_7():
    _, rep = load_candles(FilesSource(paths=[str(BINANCE / "monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-0[1-3].zip")]))
    assert rep.calendar == "24/7" and "Saturdays or Sundays" in rep.calendar_reason


def _weekdays(n_days: int, start="2024-01-01") -> np.ndarray:
    days = np.arange(np.datetime64(start), np.datetime64(start) + n_days).astype("datetime64[ns]").astype(np.int64)
    return days[np.isin((days // DAY + 3) % 7, (0, 1, 2, 3, 4))]


def test_inference_by_hand():
    pytest.importorskip("exchange_calendars")
    # every weekday of 2024, holidays included: bars on holidays rule every exchange out
    with pytest.raises(ConfigError, match=r"^x.csv: cannot tell the calendar .* set validation.calendar"):
        infer_calendar(_weekdays(366), where="x.csv")
    assert infer_calendar(_weekdays(10))[0] == "24/7"  # too few days to tell
    every_day = np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-03-01")).astype("datetime64[ns]")
    assert infer_calendar(every_day.astype(np.int64))[0] == "24/7"
    # London's sessions, bars stamped at local midnight: XLON, not New York
    import exchange_calendars as xc

    sessions = xc.get_calendar("XLON", start="2023-01-01", end="2024-12-31").sessions
    name, why = infer_calendar(sessions.to_numpy("datetime64[ns]").astype(np.int64))
    assert name == "XLON" and why.startswith("inferred XLON: 100.0%")


AAPL = STOCKS / "panel" / "AAPL-1d.csv"


def _returns(candles) -> dict[str, float]:
    r = candles.close[1:] / candles.close[:-1]
    return {candles.time_str(i + 1)[:10]: float(r[i]) for i in range(r.size)}


def test_real_aapl_back_adjusted_by_its_adj_close_keeps_the_crash_and_loses_the_splits():
    """AAPL 2000-2013, unadjusted OHLC with an Adj Close column: two 2:1 splits (2000-06-21,
    2005-02-28) and a real -52% day (2000-09-29) whose adjusted close falls too."""
    pytest.importorskip("exchange_calendars")
    candles, rep = load_candles(FilesSource(paths=[str(AAPL)]))
    assert rep.adjusted.startswith("back-adjusted by the adjusted close") and rep.suspected_splits == []
    r = _returns(candles)
    assert r["2000-06-21"] == pytest.approx(1.0989, abs=1e-3) and r["2005-02-28"] == pytest.approx(1.0082, abs=1e-3)
    assert r["2000-09-29"] == pytest.approx(0.4813, abs=1e-3)  # the crash stays
    assert rep.calendar == "XNYS" and rep.filled_bars == 0 and rep.warnings == []


def test_unadjusted_aapl_reports_its_splits_and_adjusts_them_when_asked(tmp_path):
    pytest.importorskip("exchange_calendars")
    plain = FilesSource(paths=[str(AAPL)], adjust="none")
    raw, rep = load_candles(plain)
    assert rep.suspected_splits == [
        "2000-06-21: open / previous close 0.499 (2:1)",
        "2005-02-28: open / previous close 0.502 (2:1)",
    ]  # the crash opened at 0.527 x the previous close: not a split ratio
    (warning,) = rep.warnings
    assert warning.startswith("2 suspected stock splits left unadjusted") and "validation.splits: adjust" in warning
    assert _returns(raw)["2000-06-21"] == pytest.approx(0.5494, abs=1e-3)  # as written
    adjusted, rep2 = load_candles(plain, ValidationPolicy(splits="adjust"))
    r = _returns(adjusted)
    assert r["2000-06-21"] == pytest.approx(1.0989, abs=1e-3) and r["2000-09-29"] == pytest.approx(0.4813, abs=1e-3)
    assert rep2.adjusted == "2 suspected splits back-adjusted (validation.splits: adjust)" and rep2.warnings == []
    with pytest.raises(ValidationError, match=r"AAPL-1d.csv line \d+: suspected 2:1 split: opens at 0.499"):
        load_candles(plain, ValidationPolicy(splits="error"))


def test_suspected_splits_by_hand():
    from candleflow.data.adjust import split_name, suspected_splits

    close = np.array([100.0, 101, 102, 51, 52, 51.5, 50, 52, 51, 26.2, 51, 52])
    open_ = np.r_[100.0, close[:-1]]
    open_[3] = 51.2  # opens at 0.502 x 102 and stays: a 2:1 split
    open_[9] = 25.6  # halves and comes back next bar: a bad tick, not a split
    high, low = np.maximum(open_, close) * 1.01, np.minimum(open_, close) * 0.99
    assert suspected_splits(open_, high, low, close) == [(3, 0.5)]
    assert [split_name(r) for r in (0.5, 2 / 3, 2.0, 1 / 10)] == ["2:1", "3:2", "1:2", "10:1"]


@pytest.mark.parametrize("cell", ["0", "", "n/a", "-3.1"])
def test_a_damaged_adjusted_close_is_a_bad_row_not_a_fake_jump(tmp_path, cell):
    """Issue 42: one damaged Adj Close cell left its bar unadjusted: a fake +10% / -13% round trip
    that passed validation. It is an error naming the line, or the row dropped and counted."""
    pytest.importorskip("exchange_calendars")
    lines = AAPL.read_text().splitlines()
    fields = lines[200].split(",")
    lines[200] = ",".join([*fields[:-1], cell])
    path = tmp_path / "AAPL-1d.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        ValidationError, match=r"AAPL-1d.csv line 201: the adjusted close is .*expected a positive number"
    ):
        load_candles(FilesSource(paths=[str(path)]))
    candles, rep = load_candles(FilesSource(paths=[str(path)]), ValidationPolicy(nonfinite="drop"))
    assert rep.dropped_rows.get("nonfinite") == 1
    r = np.abs(np.diff(np.log(candles.close)))
    clean, _ = load_candles(FilesSource(paths=[str(AAPL)]))
    assert r.max() <= np.abs(np.diff(np.log(clean.close))).max() + 1e-9  # no new jump


def test_a_tuesday_to_saturday_daily_file_is_refused_not_read_as_24_7(tmp_path):
    """Issue 42: SPY's daily bars dated one day late (Tuesday to Saturday) were read as a 24/7
    market, which invented 31% of the bars. Weekend bars with whole weekdays missing are neither:
    one line naming the closest exchange (with the dates one day earlier); 24/7 only when asked."""
    pytest.importorskip("exchange_calendars")
    lines = (STOCKS / "SPY-1d.csv").read_text().splitlines()
    late = [lines[0]] + [
        ",".join([str(np.datetime64(f.split(",")[0]) + 1), *f.split(",")[1:]]) for f in lines[1:] if f.strip()
    ]
    path = tmp_path / "SPY-late.csv"
    path.write_text("\n".join(late) + "\n")
    with pytest.raises(
        ConfigError,
        match=r"bars on Saturdays but never on Monday or Sunday: .*closest: XNYS with every day one earlier",
    ):
        load_candles(FilesSource(paths=[str(path)]))
    _, rep = load_candles(FilesSource(paths=[str(path)]), ValidationPolicy(calendar="24/7", spikes="allow"))
    assert rep.filled_bars > 0 and rep.warnings  # asked for: filled, and said
