"""Futures funding: Binance's public funding-rate files planned, fetched and verified over HTTP on
127.0.0.1, read with one-line errors, placed on bars, and charged by a run's backtest."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from candleflow.data.sources.binance.download import DownloadOptions
from candleflow.data.sources.binance.funding import (
    fetch_funding,
    funding_per_bar,
    load_funding,
    plan_funding,
    read_funding,
)
from candleflow.data.sources.binance.mirror import MirrorServer
from candleflow.errors import ConfigError, DownloadError, SourceError

JAN = int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)
H8 = 8 * 3600 * 1000
KEY = "data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-01.zip"


def funding_csv(
    rows: list[tuple[int, float]], header: str = "calc_time,funding_interval_hours,last_funding_rate"
) -> str:
    return header + "\n" + "".join(f"{t},8,{r:.8f}\n" for t, r in rows)


def zipped(text: str, name: str = "BTCUSDT-fundingRate-2024-01.csv") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, text)
    return buf.getvalue()


def publish(root: Path, key: str, payload: bytes, checksum: str | None = None) -> None:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    digest = checksum or hashlib.sha256(payload).hexdigest()
    (root / (key + ".CHECKSUM")).write_text(f"{digest}  {path.name}\n")


def test_plan_covers_ended_months_of_a_futures_market_only():
    refs = plan_funding("um", "BTCUSDT", "2024-01-15", "2024-03", today=dt.date(2024, 3, 10))
    assert [r.key for r in refs] == [KEY, KEY.replace("2024-01", "2024-02")]  # March has not ended
    with pytest.raises(ConfigError, match="funding rates: market 'spot' has none; expected um or cm"):
        plan_funding("spot", "BTCUSDT", "2024-01", "2024-02")


def test_read_a_funding_file_and_its_errors(tmp_path):
    good = tmp_path / "BTCUSDT-fundingRate-2024-01.zip"
    good.write_bytes(zipped(funding_csv([(JAN, 0.0001), (JAN + H8 + 15, -0.00012359)])))
    times, rates = read_funding(good)
    assert times.tolist() == [JAN * 1_000_000, (JAN + H8 + 15) * 1_000_000]  # the settlement jitter kept
    assert rates.tolist() == pytest.approx([0.0001, -0.00012359])
    cases = {
        "header": (funding_csv([(JAN, 0.0001)], header="time,rate,x"), r"line 1: header 'time,rate,x'; expected"),
        "rate": (funding_csv([(JAN, 0.0001), (JAN + H8, 0.5)]), r"line 3: funding rate 0.5; expected a finite rate"),
        "order": (funding_csv([(JAN + H8, 0.0001), (JAN, 0.0001)]), r"line 3: calc_time .* is not after the row"),
        "unit": (funding_csv([(JAN // 1000, 0.0001)]), r"line 2: calc_time .*; expected epoch milliseconds"),
        "empty": ("calc_time,funding_interval_hours,last_funding_rate\n1704067200000,8,\n", r"line 2: empty last_fund"),
        "nan": (  # issue 42: a 'nan' cell was called empty
            "calc_time,funding_interval_hours,last_funding_rate\n1704067200000,8,nan\n",
            r"line 2: last_funding_rate is 'nan'; expected a number",
        ),
    }
    for name, (text, message) in cases.items():
        bad = tmp_path / f"{name}.csv"
        bad.write_text(text)
        with pytest.raises(SourceError, match=message) as err:
            read_funding(bad)
        assert str(bad) in str(err.value) and "\n" not in str(err.value), name
    bomb = tmp_path / "bomb.zip"
    bomb.write_bytes(zipped("0" * (2 << 20)))
    with pytest.raises(SourceError, match="a funding-rate month is at most"):
        read_funding(bomb)
    twice = tmp_path / "twice.csv"
    twice.write_text(funding_csv([(JAN, 0.0001)]))
    with pytest.raises(
        SourceError, match=r"2024-01-01T00:00:00.* appears in .*fundingRate-2024-01.zip and .*twice.csv"
    ):
        load_funding([twice, tmp_path / "BTCUSDT-fundingRate-2024-01.zip"])


def test_fundings_land_on_the_bar_whose_close_they_meet():
    """1h bars open at 00:00, 01:00, 03:00 (02:00 is a gap): a funding at 01:00 meets bar 0's
    close; one at 01:30 falls in bar 1; one at 02:30 in the gap meets no bar and is dropped."""
    hour = 3600 * 10**9
    t0 = JAN * 1_000_000
    open_time = np.array([t0, t0 + hour, t0 + 3 * hour]).astype("datetime64[ns]")
    times = np.array([t0 + hour, t0 + hour + hour // 2, t0 + 2 * hour + hour // 2])
    got = funding_per_bar(open_time, hour, times, np.array([0.1, 0.2, 0.4]))
    assert got.tolist() == pytest.approx([0.1, 0.2, 0.0])


def test_fetch_verifies_each_month_over_http(tmp_path):
    root = tmp_path / "mirror"
    publish(root, KEY, zipped(funding_csv([(JAN, 0.0001), (JAN + H8, 0.0002)])))
    feb = KEY.replace("2024-01", "2024-02")
    publish(root, feb, zipped(funding_csv([(JAN + 31 * 3 * H8, -0.0001)])), checksum="0" * 64)  # tampered
    with MirrorServer(root) as srv:
        opts = DownloadOptions(base_url=srv.url, cache_dir=tmp_path / "cache", retries=1, timeout=2.0)
        times, rates, notes = fetch_funding("um", "BTCUSDT", "2024-01", "2024-01", opts, today=dt.date(2024, 3, 1))
        assert rates.tolist() == pytest.approx([0.0001, 0.0002]) and notes == []
        assert (tmp_path / "cache" / KEY).is_file() and (tmp_path / "cache" / (KEY + ".CHECKSUM")).is_file()
        with pytest.raises(DownloadError, match="BTCUSDT-fundingRate-2024-02.zip: checksum mismatch twice"):
            fetch_funding("um", "BTCUSDT", "2024-02", "2024-02", opts, today=dt.date(2024, 3, 1))
        assert not (tmp_path / "cache" / feb).exists()  # nothing unverified kept under its name
        _, _, notes = fetch_funding("um", "BTCUSDT", "2023-12", "2024-01", opts, today=dt.date(2024, 3, 1))
        assert notes == ["BTCUSDT-fundingRate-2023-12.zip: not published; no funding charged in 2023-12"]


@pytest.mark.extended
@pytest.mark.integration
def test_a_run_charges_funding_from_the_files_it_names(tiny_config, tmp_path):
    """A positive funding every 8 hours over the whole synthetic period: buy and hold pays it, so
    its return falls by the product of the rates it held through."""
    import candleflow as cf

    base = cf.run(tiny_config("output.name=plain", "evaluation.reference_models=[]"))
    start = np.datetime64(cf.load_config(None, []).source.start, "ms").astype(np.int64)
    rows = [(int(start) + k * H8, 0.0003) for k in range(0, 3 * 400)]
    path = tmp_path / "funding.csv"
    path.write_text(funding_csv(rows))
    charged = cf.run(
        tiny_config("output.name=funded", "evaluation.reference_models=[]", f"backtest.funding_paths=[{path}]")
    )
    a = json.loads((base.run_dir / "metrics.json").read_text())["val"]["trading"]
    b = json.loads((charged.run_dir / "metrics.json").read_text())["val"]["trading"]
    assert a["funding"] == "none" and b["funding"] == "charged"
    hold_a, hold_b = a["table"]["buy_and_hold"], b["table"]["buy_and_hold"]
    fundings = round(hold_b["funding"] / 0.0003)  # three a day over the validation days it held
    assert hold_a["funding"] == 0.0 and fundings == pytest.approx(3 * b["days"], abs=3)
    # each funding bar earns (1 + r - 0.0003) instead of (1 + r): about (1 - 0.0003) a funding
    assert 1 + hold_b["total_return"] == pytest.approx(
        (1 + hold_a["total_return"]) * (1 - 0.0003) ** fundings, rel=1e-3
    )


def test_funding_files_that_charge_nothing_say_so(tmp_path, caplog):
    """Issue 42: a funding file with only a header, one whose times never meet the candles, and one
    that covers part of them: each says what was not charged (a note in the backtest, a warning)."""
    import logging

    from candleflow.config import load_config
    from candleflow.data.load import load_candles
    from candleflow.evaluation.funding import funding_for

    cfg0 = load_config(None, ["source.n_bars=200"])
    candles, _ = load_candles(cfg0.source, cfg0.validation)
    start = int(candles.open_time[0]) // 10**6
    cases = {
        "header": ([], "the files hold no funding rate (a header only?); no funding charged"),
        "elsewhere": ([(JAN + k * H8, 0.0001) for k in range(1, 10)], "none within the candles'"),
        "part": ([(start + k * H8, 0.0001) for k in range(1, 5)], "bars of the candles'"),
    }
    for name, (rows, said) in cases.items():
        path = tmp_path / f"{name}.csv"
        path.write_text(funding_csv(rows))
        cfg = load_config(None, ["source.n_bars=200", f"backtest.funding_paths=[{path}]"])
        with caplog.at_level(logging.WARNING, logger="candleflow"):
            per_bar, notes = funding_for(cfg, candles)
        assert any(said in n for n in notes), (name, notes)
        assert said in caplog.text
        assert (per_bar != 0).sum() == (4 if name == "part" else 0)
    with pytest.raises(ConfigError, match=r"backtest.min_order 500 is above backtest.capital 100: no order"):
        load_config(None, ["backtest.capital=100", "backtest.min_order=500"])
