"""The files source on Binance's real files and on generic CSV / Parquet / Feather."""

import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from candleflow.config import FilesSource
from candleflow.data.load import load_candles
from candleflow.errors import SourceError, ValidationError
from conftest import needs

MS_2024_01_01 = 1704067200000


def test_binance_monthly_1m_with_real_outages(binance_dir):
    needs(binance_dir / "monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2018-02.zip")
    c, rep = load_candles(FilesSource(paths=[str(binance_dir / "monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2018-02.zip")]))
    assert c.symbol == "BTCUSDT" and c.interval == "1m"
    assert rep.rows_in == 38_260
    assert rep.missing_bars == 40_320 - 38_260  # every missing minute is counted
    assert rep.segments == rep.segment_splits + 1 and rep.segments > 1
    assert len(c) == 38_260 + rep.filled_bars
    assert c.time_str(0) == "2018-02-01T00:00:00"


def test_binance_microsecond_files_detected_per_file(binance_dir):
    needs(binance_dir / "monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2025-01.zip")
    paths = [
        str(binance_dir / "monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2025-01.zip"),
        str(binance_dir / "daily/klines/BTCUSDT/1m/BTCUSDT-1m-2025-03-0*.zip"),
    ]
    c, rep = load_candles(FilesSource(paths=paths))
    assert c.time_str(0) == "2025-01-01T00:00:00"
    assert c.time_str(len(c) - 1) == "2025-03-07T23:59:00"
    assert rep.rows_in == 31 * 1440 + 7 * 1440
    assert rep.segments == 2  # February is missing: a gap of one month splits the series


def test_binance_millisecond_file_values(binance_dir):
    needs(binance_dir / "monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01.zip")
    c, _ = load_candles(FilesSource(paths=[str(binance_dir / "monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01.zip")]))
    assert c.open_time[0] == MS_2024_01_01 * 1_000_000
    assert set(c.extra) == {"quote_volume", "trades", "taker_buy_base", "taker_buy_quote"}
    assert (c.high >= c.low).all()


def test_binance_hourly_matches_minutes(binance_dir):
    """The shared 1h files were aggregated from the 1m rows: check one hour."""
    needs(binance_dir / "monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01.zip")
    m, _ = load_candles(FilesSource(paths=[str(binance_dir / "monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01.zip")]))
    h, _ = load_candles(FilesSource(paths=[str(binance_dir / "monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01.zip")]))
    assert h.interval == "1h" and len(h) == 31 * 24
    assert h.high[5] == m.high[300:360].max() and h.low[5] == m.low[300:360].min()
    assert h.open[5] == m.open[300] and h.close[5] == m.close[359]
    assert np.isclose(h.volume[5], m.volume[300:360].sum())


def _binance_csv(tmp_path, lines, name="BTCUSDT-1h-2024-01.csv", header=None):
    p = tmp_path / name
    text = (header + "\n" if header else "") + "\n".join(lines) + "\n"
    p.write_text(text)
    return p


def _rows(n=5, unit=1000, start=MS_2024_01_01):
    return [
        f"{(start + i * 3_600_000) * unit // 1000},100,101,99,100.5,10,{start + i * 3_600_000 + 3_599_999},"
        f"1000,5,4,400,0"
        for i in range(n)
    ]


def test_header_row_and_zip_and_units(tmp_path):
    header = "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore"
    p = _binance_csv(tmp_path, _rows(), header=header)
    c, _ = load_candles(FilesSource(paths=[str(p)]))
    assert len(c) == 5 and c.open_time[0] == MS_2024_01_01 * 1_000_000 and "trades" in c.extra
    q = _binance_csv(tmp_path, _rows(unit=1_000_000), name="BTCUSDT-1h-2024-02.csv")  # nanoseconds
    z = tmp_path / "BTCUSDT-1h-2024-02.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(q, q.name)
    c, _ = load_candles(FilesSource(paths=[str(z)]))
    assert c.open_time[0] == MS_2024_01_01 * 1_000_000 and c.interval == "1h"


def test_generic_files_find_columns_in_any_case(tmp_path):
    t = pa.table(
        {
            "Timestamp": pa.array(
                np.arange(4) * 3_600_000_000_000 + MS_2024_01_01 * 1_000_000, type=pa.timestamp("ns", tz="UTC")
            ),
            "OPEN": [1.0, 2, 3, 4],
            "High": [2.0, 3, 4, 5],
            "low": [0.5, 1, 2, 3],
            "Close": [2.0, 3, 4, 4.5],
            "Volume": [1.0, 1, 1, 1],
        }
    )
    pq.write_table(t, tmp_path / "x.parquet")
    feather.write_feather(t, tmp_path / "x.feather")
    (tmp_path / "x.csv").write_text(
        "Date,Open,High,Low,Close,Volume\n"
        + "\n".join(f"2024-01-01 0{i}:00:00,{i + 1},{i + 2},{i + 0.5},{i + 2},1" for i in range(4))
        + "\n"
    )
    for name in ("x.parquet", "x.feather", "x.csv"):
        c, rep = load_candles(FilesSource(paths=[str(tmp_path / name)]))
        assert len(c) == 4 and c.interval == "1h", name
        assert c.open_time[0] == MS_2024_01_01 * 1_000_000, name
        assert c.open[0] == 1.0 and c.symbol == "x", name


def test_missing_column_is_one_clear_line(tmp_path):
    p = tmp_path / "prices.csv"
    p.write_text("timestamp,open,high,low,volume\n1704067200000,1,2,0.5,3\n")
    with pytest.raises(SourceError) as exc:
        load_candles(FilesSource(paths=[str(p)]))
    msg = str(exc.value)
    assert "\n" not in msg and str(p) in msg and "no 'close' column" in msg and "found: timestamp, open" in msg


def test_missing_file_and_unmatched_glob(tmp_path):
    with pytest.raises(SourceError, match=r"nope\.csv: file not found"):
        load_candles(FilesSource(paths=[str(tmp_path / "nope.csv")]))
    with pytest.raises(SourceError, match="no file matches"):
        load_candles(FilesSource(paths=[str(tmp_path / "*.zip")]))


def test_high_below_low_names_file_and_line(tmp_path):
    lines = _rows(4)
    lines[2] = lines[2].replace(",100,101,99,", ",100,98,99,")
    p = _binance_csv(tmp_path, lines)
    with pytest.raises(ValidationError, match=r"BTCUSDT-1h-2024-01\.csv line 3: high=98\.0 low=99\.0"):
        load_candles(FilesSource(paths=[str(p)]))


def test_second_file_rows_are_located_in_that_file(tmp_path):
    a = _binance_csv(tmp_path, _rows(3), name="A-1h-2024-01.csv")
    lines = _rows(3, start=MS_2024_01_01 + 3 * 3_600_000)
    lines[1] = lines[1].replace(",100,101,99,", ",100,98,99,")
    b = _binance_csv(
        tmp_path,
        lines,
        name="A-1h-2024-02.csv",
        header="open_time,open,high,low,close,volume,close_time,qv,n,tb,tq,ignore",
    )
    with pytest.raises(ValidationError, match=r"A-1h-2024-02\.csv line 3: high=98"):
        load_candles(FilesSource(paths=[str(a), str(b)]))


def test_candles_from_a_dataframe_or_an_arrow_table_are_validated_like_a_file():
    """Issue 41: a user holding a DataFrame of candles had to write a file first. The same
    columns give the same candles as the file, the calendar inferred; a bad row is one line."""
    pd = pytest.importorskip("pandas")
    pytest.importorskip("exchange_calendars")
    import pyarrow as pa

    import candleflow as cf
    from candleflow.config import FilesSource
    from candleflow.data.load import load_candles
    from candleflow.errors import ValidationError
    from conftest import SHARED

    path = SHARED / "data" / "stocks" / "SPY-1d.csv"
    from_file, file_report = load_candles(FilesSource(paths=[str(path)]))
    frame = pd.read_csv(path, parse_dates=["Date"]).set_index("Date")
    from_frame, report = cf.candles_from_table(frame, symbol="SPY")
    assert from_frame.calendar == "XNYS" and from_frame.interval == "1d" and report.bad_prints == file_report.bad_prints
    assert np.array_equal(from_frame.close, from_file.close) and np.array_equal(
        from_frame.open_time, from_file.open_time
    )
    from_table, _ = cf.candles_from_table(pa.Table.from_pandas(frame.reset_index()), symbol="SPY")
    assert np.array_equal(from_table.low, from_file.low)
    bad = frame.copy()
    bad.iloc[10, 3] = np.nan
    with pytest.raises(ValidationError, match=r"^SPY table row 11: close is nan; expected a finite number"):
        cf.candles_from_table(bad, symbol="SPY")
