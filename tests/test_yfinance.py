"""The yfinance source against a loopback stand-in for Yahoo's chart API (the real yfinance code
path runs; see tests/yahoo_mirror.py for how the responses are built from the shared SPY bars)."""

from __future__ import annotations

import numpy as np
import pytest

from candleflow.config import YFinanceSource, load_config
from candleflow.data.load import load_candles
from candleflow.data.sources.yfinance import cache_path
from candleflow.errors import ConfigError, SourceError
from candleflow.fs.caches import entries, read_stats
from conftest import SHARED

pytest.importorskip("yfinance")
pytest.importorskip("exchange_calendars")


@pytest.fixture(scope="module")
def yahoo():
    from yahoo_mirror import YahooMirror, tickers_from_spy

    with YahooMirror(tickers_from_spy(SHARED / "data" / "stocks")) as mirror:
        yield mirror


def source(yahoo, tmp_path, **kw) -> YFinanceSource:
    base = dict(
        tickers=["SPY"], base_url=yahoo.url, cache_dir=str(tmp_path / "yf"), start="2018-01-01", end="2026-02-09"
    )
    return YFinanceSource(**(base | kw))


def test_daily_bars_validate_on_the_exchange_yahoo_reports_and_are_cached(yahoo, tmp_path):
    cfg = source(yahoo, tmp_path)
    before = yahoo.charts()
    candles, rep = load_candles(cfg)
    assert rep.calendar == "XNYS" and rep.exchange == "NYSEArca"  # SPY trades on NYSE Arca: NYSE sessions
    assert (rep.rows_in, rep.rows_out, rep.filled_bars, rep.gaps) == (2000, 2000, 0, 0)
    assert rep.spike_rows == 1 and rep.spikes[0].startswith("2026-02-02T14:30:00: low 69.005")
    assert candles.symbol == "SPY" and candles.time_str(0) == "2018-02-26T14:30:00"
    fetched = yahoo.charts() - before
    assert fetched >= 1
    again, _ = load_candles(cfg)  # a past range: read from the Parquet cache, no request
    assert yahoo.charts() - before == fetched and again.fingerprint == candles.fingerprint
    stats = read_stats(tmp_path / "yf")
    assert (stats["hits"], stats["misses"]) == (1, 1)
    assert [e.path for e in entries("yfinance", tmp_path / "yf")] == [cache_path(cfg)]
    # Yahoo stamps daily bars at New York midnight: on a 24/7 UTC grid, daylight saving misaligns them
    with pytest.raises(Exception, match="open_time 2018-03-12T04:00:00 is not on the 1d grid"):
        load_candles(cfg, load_config(None, ["validation.calendar=24/7"]).validation)


def test_hourly_bars_with_pre_and_post_market(yahoo, tmp_path):
    cfg = source(yahoo, tmp_path, interval="1h", prepost=True, start="2025-06-01", end="2025-09-30")
    candles, rep = load_candles(cfg)
    assert rep.calendar == "XNYS" and rep.rows_in == 1084 and rep.extended_hours_rows == 639
    assert rep.rows_out == 446 and rep.filled_bars == 1  # the early close's missing 12:30
    regular, rep_r = load_candles(source(yahoo, tmp_path, interval="1h", start="2025-06-01", end="2025-09-30"))
    assert rep_r.rows_in == 445 and rep_r.extended_hours_rows == 0  # Yahoo sent the regular session only
    assert regular.fingerprint == candles.fingerprint  # the same regular-hours bars either way


def test_three_tickers_become_a_universe_store(yahoo, tmp_path):
    from candleflow.scale.cluster import build_store, plan_tasks
    from candleflow.scale.store import SeriesStore

    cfg = load_config(
        None,
        [
            "source={kind: yfinance, tickers: [SPY, AAA, BBB], start: '2018-01-01', end: '2026-02-09'}",
            f"source.base_url={yahoo.url}",
            f"source.cache_dir={tmp_path / 'yf'}",
            f"universe.store={tmp_path / 'store'}",
            "universe.intervals=[1d]",
            "cluster.workers=1",
            "dataset.window=30",
        ],
    )
    assert [t.name for t in plan_tasks(cfg)] == ["SPY-1d", "AAA-1d", "BBB-1d"]
    report = build_store(cfg)
    assert len(report.computed) == 3 and not report.failed
    store = SeriesStore(cfg.universe.store)
    records = store.manifest()["entries"]
    assert set(records) == {"SPY-1d", "AAA-1d", "BBB-1d"}
    assert records["BBB-1d"]["rows"] == 1995 and records["SPY-1d"]["rows"] == 2000
    # each ticker validated on its own exchange's calendar (the mirror lists AAA and BBB on Nasdaq)
    assert {n: records[n]["calendar"] for n in records} == {"SPY-1d": "XNYS", "AAA-1d": "XNAS", "BBB-1d": "XNAS"}
    assert records["SPY-1d"]["exchange"] == "NYSEArca" and records["AAA-1d"]["exchange"] == "NasdaqGS"

    # the same three tickers side by side: their calendars differ by name, so a rule is needed
    from candleflow.dataset.panel import PanelDataset, panel_window_ends
    from candleflow.errors import DataError
    from candleflow.scale.store import open_panel

    names = ["SPY-1d", "AAA-1d", "BBB-1d"]
    with pytest.raises(DataError, match="SPY-1d on XNYS, AAA-1d on XNAS, BBB-1d on XNAS"):
        open_panel(cfg.universe.store, names, cfg.labels.horizon)
    panel = open_panel(cfg.universe.store, names, cfg.labels.horizon, "union")
    assert panel.times.size == 2000 and panel.values.shape == (2000, 3 * 8 + 3)
    present = panel.present()
    assert present[:5, 2].sum() == 0 and (panel.labels[:5, 2] == -1).all()  # BBB listed five sessions later
    first = np.argmax(present, axis=0)  # each ticker's first bar with its warm-up done
    assert first[2] == first[0] + 5 and present[first[2] :].all()
    ds = PanelDataset(panel, panel_window_ends(panel, 30), 30)
    x, extra = ds.batch(ds.ends[:4] * 0 + [0, 1, 2, 3], with_returns=True)
    assert x.shape == (4, 30, 27) and extra["labels"].shape == (4, 3) and extra["mask"].dtype == bool


def test_hourly_tickers_into_a_store_and_a_panel(yahoo, tmp_path):
    from candleflow.dataset.panel import panel_window_ends
    from candleflow.scale.cluster import build_store
    from candleflow.scale.store import open_panel

    cfg = load_config(
        None,
        [
            "source={kind: yfinance, tickers: [SPY, AAA, BBB], interval: 1h, start: '2025-06-01', end: '2025-09-30'}",
            f"source.base_url={yahoo.url}",
            f"source.cache_dir={tmp_path / 'yf'}",
            f"universe.store={tmp_path / 'store'}",
            "cluster.workers=1",
            "labels.horizon=7",
        ],
    )
    assert not build_store(cfg).failed
    panel = open_panel(cfg.universe.store, ["SPY-1h", "AAA-1h", "BBB-1h"], 7, "union")
    assert panel.times.size == 446 and panel.n_tickers == 3  # the regular-hours bars, the filled 12:30 included
    assert panel_window_ends(panel, 60).size > 300


def test_bad_input_is_one_line(yahoo, tmp_path):
    with pytest.raises(SourceError, match=r"yfinance ZZZZ 1d 2018-01-01 \.\. 2026-02-09: .*") as exc:
        load_candles(source(yahoo, tmp_path, tickers=["ZZZZ"]))
    assert "\n" not in str(exc.value)
    with pytest.raises(ConfigError, match="source.tickers lists 2 tickers; one source is one series"):
        load_candles(source(yahoo, tmp_path, tickers=["SPY", "AAA"]))
    with pytest.raises(Exception, match="expected YYYY-MM-DD"):
        source(yahoo, tmp_path, start="last year")
    with pytest.raises(Exception, match="interval"):
        source(yahoo, tmp_path, interval="4h")
    with pytest.raises(Exception, match="tickers"):
        source(yahoo, tmp_path, tickers=["../etc"])
