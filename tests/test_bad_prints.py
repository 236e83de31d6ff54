"""Bad prints (issue 42): one price of one bar at 1/10 or 1/100 of the rest, as the real stock
universe holds them, is reported as a bad print, repaired or dropped under validation.ohlc, and
never read as a stock split (a split moves the whole bar and stays)."""

import csv

import numpy as np
import pytest

from candleflow.config import FilesSource, ValidationPolicy
from candleflow.data.adjust import suspected_splits
from candleflow.data.prints import bad_print_fields, scale_name
from candleflow.data.validate import validate_candles
from candleflow.errors import ValidationError
from conftest import SHARED, raw

AVB = SHARED / "data" / "stocks" / "universe" / "AVB-1d.csv"


def _bars(close, bad_at=None, factor=0.1, field="close", split_at=None):
    """Daily-like bars around `close`: open the previous close (from `split_at` on, the series
    divided by 10: a 10:1 split), high/low 1% outside the body; one field of one bar multiplied by
    `factor` (a bad print)."""
    close = np.asarray(close, float).copy()
    if split_at is not None:
        close[split_at:] /= 10
    open_ = np.r_[close[0], close[:-1]]
    if split_at is not None:
        open_[split_at] = close[split_at - 1] / 10
    high, low = np.maximum(open_, close) * 1.01, np.minimum(open_, close) * 0.99
    cols = {"open": open_, "high": high, "low": low, "close": close}
    if bad_at is not None:
        cols[field] = cols[field].copy()
        cols[field][bad_at] *= factor
    return cols


def test_a_bad_close_is_found_and_a_split_is_not_a_bad_print():
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 60)))
    close[30:] /= 2  # a 2:1 split: every price from bar 30 on halves, and stays
    cols = _bars(close, bad_at=45, factor=0.01)
    bad, ref = bad_print_fields(cols["open"], cols["high"], cols["low"], cols["close"])
    assert np.flatnonzero(bad.any(axis=1)).tolist() == [45] and bad[45].tolist() == [False, False, False, True]
    assert ref[45] == pytest.approx(close[45], rel=0.05)
    assert scale_name(cols["close"][45] / ref[45]) == "1/100 of"
    assert [scale_name(x) for x in (0.098, 10.4, 3.25, 1 / 3.4)] == ["1/10 of", "10x", "3.25x", "1/3.4 of"]


@pytest.mark.parametrize("field", ["close", "open"])
def test_a_one_day_bad_print_is_never_read_as_a_split(field):
    """The issue's case: a close at 1/10 of its neighbours while the bar's open, high and low are
    normal. The next bar opens at 10x that close, a split ratio; the old rule saw a 1:10 split.
    Widened by OHLC repair or not, the level of the bars before and after is the same."""
    rng = np.random.default_rng(1)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, 40)))
    cols = _bars(close, bad_at=20, factor=0.1, field=field)
    assert suspected_splits(cols["open"], cols["high"], cols["low"], cols["close"]) == []
    widened_low = np.minimum.reduce([cols["open"], cols["low"], cols["close"]])
    assert suspected_splits(cols["open"], cols["high"], widened_low, cols["close"]) == []
    split = _bars(close, split_at=20)  # the same series with a real 10:1 split
    assert suspected_splits(split["open"], split["high"], split["low"], split["close"]) == [(20, 0.1)]


def test_bad_prints_under_each_ohlc_policy_and_splits_adjust_changes_nothing_else():
    rng = np.random.default_rng(2)
    close = 80 * np.exp(np.cumsum(rng.normal(0, 0.01, 100)))
    cols = _bars(close, bad_at=60, factor=0.1)  # close at 1/10: the bar breaks (close below its low)
    cols["low"][30] *= 0.01  # a low at 1/100: the bar still brackets open and close
    hours = list(range(100))
    r = raw(hours, cols["open"], cols["high"], cols["low"], cols["close"])
    with pytest.raises(
        ValidationError, match=r"row 61: a bad print: close [0-9.]+, 1/10 of the level .*validation.ohlc=error"
    ):
        validate_candles(r)
    candles, rep = validate_candles(r, ValidationPolicy(ohlc="repair", splits="adjust", gaps="repair"))
    assert rep.bad_print_rows == 2 and rep.dropped_rows == {"bad_prints": 1}
    assert [b.split(": ")[1].split(" ")[0] for b in rep.bad_prints] == ["low", "close"]
    assert rep.suspected_splits == [] and rep.adjusted == ""
    assert "2 bad prints" in rep.summary()
    kept = np.r_[0:60, 61:100]
    assert np.array_equal(candles.close[kept], close[kept])  # no price rescaled: only the bad bar went
    assert candles.volume[60] == 0  # the hole filled flat by the gap policy
    dropped, rep2 = validate_candles(r, ValidationPolicy(ohlc="drop", splits="adjust"))
    assert rep2.dropped_rows == {"ohlc": 1} and rep2.suspected_splits == []


def test_the_real_avb_file_keeps_its_history_under_splits_adjust(tmp_path):
    """AVB (the shared stock universe) has a close at 1/100 (2010-09-16) and one at 1/10
    (2012-12-21) with the bar's open, high and low normal; before, `validation.splits: adjust`
    multiplied seven years of its prices by 10."""
    pytest.importorskip("exchange_calendars")
    from candleflow.data.load import load_candles

    with pytest.raises(ValidationError, match=r"AVB-1d.csv line 1401: a bad print: close 0.8997, 1/100 of the level"):
        load_candles(FilesSource(paths=[str(AVB)]))
    candles, rep = load_candles(FilesSource(paths=[str(AVB)]), ValidationPolicy(ohlc="repair", splits="adjust"))
    assert rep.suspected_splits == [] and rep.adjusted == ""
    assert rep.bad_print_rows == 4 and rep.dropped_rows == {"bad_prints": 3}
    assert [b[:16] for b in rep.bad_prints] == [
        "2010-09-16: clos",
        "2011-06-14: open",
        "2012-11-19: high",
        "2012-12-21: clos",
    ]
    with open(AVB) as fh:
        rows = {r["Date"]: float(r["Close"]) for r in csv.DictReader(fh)}
    shown = {candles.time_str(i)[:10]: float(candles.close[i]) for i in range(len(candles.close))}
    assert shown["2005-02-25"] == rows["2005-02-25"] and shown["2012-12-20"] == rows["2012-12-20"]  # as written


def test_the_whole_stock_universe_reports_every_bad_print_and_adjusts_none():
    """Every file of the shared universe (with CANDLEFLOW_SHARED): each bad print a plain check
    finds (a price 3x or more from the median of its bar's four and the neighbouring close and
    open) is reported, and no suspected split lies within three days of one."""
    from candleflow.data.validate import RawCandles

    files = sorted((SHARED / "data" / "stocks" / "universe").glob("*-1d.csv"))
    if len(files) < 100:
        pytest.skip("needs the full stock universe (set CANDLEFLOW_SHARED)")
    total = 0
    policy = ValidationPolicy(ohlc="repair", splits="adjust", calendar="24/7", gaps="split", misaligned="drop")
    for f in files:
        with open(f) as fh:
            rows = list(csv.reader(fh))[1:]
        o, h, l, c, v = (np.array([float(r[k]) for r in rows]) for k in (1, 2, 3, 4, 5))
        ref = np.median(np.stack([o, h, l, c, np.r_[c[:1], c[:-1]], np.r_[o[1:], o[-1:]]]), axis=0)
        ratio = np.stack([o, h, l, c]) / ref
        expected = int(((ratio >= 3) | (ratio <= 1 / 3)).any(axis=0).sum())
        times = np.array([np.datetime64(r[0], "ns") for r in rows]).astype(np.int64)
        cols = {"open_time": times, "open": o, "high": h, "low": l, "close": c, "volume": v}
        _, rep = validate_candles(RawCandles(columns=cols, symbol=f.stem, source=f.name, interval="1d"), policy)
        assert rep.bad_print_rows == expected, f.name
        total += expected
        bad_days = {np.datetime64(b[:10]) for b in rep.bad_prints}
        for s in rep.suspected_splits:
            day = np.datetime64(s[:10])
            assert all(abs((day - b).astype(int)) > 3 for b in bad_days), (f.name, s)
    assert total >= 40
