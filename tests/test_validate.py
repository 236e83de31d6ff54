"""Validation: each defect counted, each policy applied, errors name the row."""

import numpy as np
import pytest

from candleflow.config import ValidationPolicy
from candleflow.data.validate import validate_candles
from candleflow.errors import ValidationError
from conftest import HOUR, T0, raw


def flat(times, price=100.0, **kw):
    n = len(times)
    return raw(times, [price] * n, [price + 1] * n, [price - 1] * n, [price] * n, **kw)


def test_clean_series_has_one_segment_and_fingerprint():
    c, rep = validate_candles(flat(range(10)))
    assert len(c) == 10 and c.segments.tolist() == [[0, 10]]
    assert rep.gaps == 0 and rep.rows_out == 10 and rep.interval == "1h"
    assert c.open_time.dtype == np.int64 and c.close.dtype == np.float64
    assert len(c.fingerprint) == 64
    c2, _ = validate_candles(flat(range(10), price=101))
    assert c2.fingerprint != c.fingerprint


def test_small_gaps_filled_large_gaps_split():
    times = [0, 1, 2, 4, 5, 15, 16, 17]  # 1 missing bar after 2, 9 missing after 5
    c, rep = validate_candles(flat(times), ValidationPolicy(gap_tolerance=3))
    assert rep.gaps == 2 and rep.missing_bars == 10
    assert rep.filled_bars == 1 and rep.segment_splits == 1
    assert c.segments.tolist() == [[0, 6], [6, 9]]
    filled = 3
    assert c.open_time[filled] == T0 + 3 * HOUR
    assert c.volume[filled] == 0 and c.open[filled] == c.close[filled] == c.close[filled - 1]
    assert c.high[filled] == c.low[filled] == 100.0


def test_split_policy_splits_every_gap_and_error_policy_names_row():
    c, rep = validate_candles(flat([0, 1, 3, 4]), ValidationPolicy(gaps="split"))
    assert c.segments.tolist() == [[0, 2], [2, 4]] and rep.filled_bars == 0
    with pytest.raises(ValidationError, match=r"test row 3: 1 missing 1h bars before 2024-01-01T03:00"):
        validate_candles(flat([0, 1, 3, 4]), ValidationPolicy(gaps="error"))


def test_duplicates_dropped_and_counted_conflicts_noted():
    r = flat([0, 1, 1, 2, 2])
    r.columns["close"][4] = 100.5  # the second row at hour 2 conflicts
    r.columns["high"][4] = 101
    c, rep = validate_candles(r)
    assert len(c) == 3 and rep.duplicate_rows == 2 and rep.conflicting_duplicate_rows == 1
    assert rep.dropped_rows == {"duplicates": 2}
    with pytest.raises(ValidationError, match="test row 3: open_time 2024-01-01T01:00:00 repeats"):
        validate_candles(flat([0, 1, 1, 2]), ValidationPolicy(duplicates="error"))


def test_out_of_order_repaired_by_sorting():
    r = flat([0, 2, 1, 3])
    r.columns["close"][:] = [100, 102, 101, 103]
    r.columns["high"][:] = 104
    c, rep = validate_candles(r)
    assert rep.out_of_order_rows == 1
    assert c.close.tolist() == [100, 101, 102, 103]
    with pytest.raises(ValidationError, match="row 3: open_time 2024-01-01T01:00:00 comes after a later one"):
        validate_candles(flat([0, 2, 1, 3]), ValidationPolicy(out_of_order="error"))
    c, rep = validate_candles(flat([0, 2, 1, 3]), ValidationPolicy(out_of_order="drop", gaps="split"))
    assert rep.dropped_rows == {"out_of_order": 1} and len(c) == 3


def test_ohlc_inconsistency_error_repair_drop():
    r = raw(range(3), [100, 100, 100], [101, 99, 101], [99, 98, 99], [100, 100.5, 100])
    with pytest.raises(ValidationError, match=r"test row 2: high=99.0 low=98.0 open=100.0 close=100.5; expected"):
        validate_candles(r)
    c, rep = validate_candles(r, ValidationPolicy(ohlc="repair"))
    assert rep.ohlc_inconsistent_rows == 1 and rep.ohlc_repaired_rows == 1
    assert c.high[1] == 100.5 and c.low[1] == 98
    c, rep = validate_candles(r, ValidationPolicy(ohlc="drop", gaps="split"))
    assert len(c) == 2 and rep.dropped_rows == {"ohlc": 1}


def test_high_below_low_is_an_error_by_default():
    r = raw(range(3), [100] * 3, [101, 95, 101], [99, 105, 99], [100] * 3)
    with pytest.raises(ValidationError, match="row 2: high=95.0 low=105.0"):
        validate_candles(r)


def test_nonfinite_and_nonpositive():
    r = flat(range(4))
    r.columns["volume"][2] = np.nan
    with pytest.raises(ValidationError, match="row 3: volume is nan; expected a finite number"):
        validate_candles(r)
    c, rep = validate_candles(r, ValidationPolicy(nonfinite="drop"))
    assert rep.nonfinite_rows == 1 and len(c) == 4 and rep.filled_bars == 1  # the dropped bar is refilled
    r = flat(range(3))
    r.columns["low"][1] = 0
    with pytest.raises(ValidationError, match="row 2: .*expected prices > 0"):
        validate_candles(r)


def test_zero_volume_runs_counted_and_dropped():
    r = flat(range(8), v=[1, 0, 0, 1, 0, 1, 1, 1])
    c, rep = validate_candles(r)
    assert rep.zero_volume_rows == 3 and rep.zero_volume_runs == 2 and rep.longest_zero_volume_run == 2
    c, rep = validate_candles(r, ValidationPolicy(zero_volume="drop"))
    assert len(c) == 5 and c.segments.tolist() == [[0, 1], [1, 2], [2, 5]]
    with pytest.raises(ValidationError, match="row 2: volume is 0"):
        validate_candles(r, ValidationPolicy(zero_volume="error"))


def test_misaligned_rows():
    r = flat([0, 1, 2, 3])
    r.columns["open_time"][2] += HOUR // 2
    with pytest.raises(ValidationError, match="row 3: open_time 2024-01-01T02:30:00 is not on the 1h grid"):
        validate_candles(r)
    c, rep = validate_candles(r, ValidationPolicy(misaligned="drop"))
    assert rep.misaligned_rows == 1 and rep.filled_bars == 1


def test_arrow_and_pandas_interchange():
    c, _ = validate_candles(flat(range(5)))
    t = c.to_arrow()
    assert t.schema.metadata[b"fingerprint"].decode() == c.fingerprint
    assert t.column("open_time").type.unit == "ns" and t.num_rows == 5
    df = c.to_pandas()
    assert str(df.index.tz) == "UTC" and df.index[1] - df.index[0] == np.timedelta64(1, "h")
    assert df["close"].tolist() == c.close.tolist()
