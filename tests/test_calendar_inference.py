"""validation.calendar: auto on files: stock bars on their exchange's calendar (no invented weekend
and holiday bars), crypto on 24/7, a one-line error where the bars cannot tell; and a warning,
never silence, where gap repair invents more than 1% of the bars."""

import numpy as np
import pytest

from candleflow.config import FilesSource, ValidationPolicy
from candleflow.data.calendar import infer_calendar
from candleflow.data.load import load_candles
from candleflow.errors import ConfigError
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
