"""A loopback stand-in for Yahoo Finance's chart API, so the real yfinance code path runs offline.

There is no internet here to record Yahoo's responses, so the responses are built in the chart
API's JSON layout (v8/finance/chart) from the shared real SPY bars: SPY as it is, and two more
tickers derived from it (AAA: SPY x 0.5 with its own noise; BBB: SPY x 2 lagged one bar, listed
five bars later). `source.base_url` points candleflow's yfinance session at the server.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd

NY = "America/New_York"


def _read_spy(stocks: Path) -> dict[str, pd.DataFrame]:
    daily = pd.read_csv(stocks / "SPY-1d.csv")
    daily.index = pd.DatetimeIndex(pd.to_datetime(daily["Date"])).tz_localize(NY)  # Yahoo stamps local midnight
    hourly = pd.read_csv(stocks / "SPY-1h.csv")
    hourly.index = pd.to_datetime(hourly["Datetime"], utc=True).dt.tz_convert(NY)
    cols = ["Open", "High", "Low", "Close", "Volume"]
    return {"1d": daily[cols].astype(float), "1h": hourly[cols].astype(float)}


def tickers_from_spy(stocks: Path) -> dict[str, dict[str, pd.DataFrame]]:
    """{ticker: {interval: bars}} for SPY and the two tickers derived from it."""
    spy = _read_spy(stocks)
    out: dict[str, dict[str, pd.DataFrame]] = {"SPY": spy, "AAA": {}, "BBB": {}}
    rng = np.random.default_rng(11)
    for iv, bars in spy.items():
        noise = np.exp(rng.normal(0, 0.002, len(bars)))
        aaa = bars.copy()
        for c in ("Open", "High", "Low", "Close"):
            aaa[c] = bars[c] * 0.5 * noise
        aaa["High"] = aaa[["Open", "High", "Low", "Close"]].max(axis=1)
        aaa["Low"] = aaa[["Open", "High", "Low", "Close"]].min(axis=1)
        out["AAA"][iv] = aaa
        bbb = bars.copy()
        for c in ("Open", "High", "Low", "Close"):
            bbb[c] = bars[c].shift(1).bfill() * 2.0
        out["BBB"][iv] = bbb.iloc[5:]  # listed a few bars later
    return out


def _meta(ticker: str, bars: pd.DataFrame, interval: str) -> dict:
    last = bars.index[-1]
    return {
        "currency": "USD",
        "symbol": ticker,
        "exchangeName": "PCX" if ticker == "SPY" else "NMS",
        "fullExchangeName": "NYSEArca" if ticker == "SPY" else "NasdaqGS",
        "instrumentType": "ETF",
        "firstTradeDate": 728317800,
        "regularMarketTime": int(last.timestamp()),
        "hasPrePostMarketData": True,
        "gmtoffset": -14400,
        "timezone": "EDT",
        "exchangeTimezoneName": NY,
        "regularMarketPrice": float(bars["Close"].iloc[-1]),
        "chartPreviousClose": float(bars["Close"].iloc[0]),
        "priceHint": 2,
        "currentTradingPeriod": {
            k: {
                "timezone": "EDT",
                "start": int(last.timestamp()),
                "end": int(last.timestamp()) + 3600,
                "gmtoffset": -14400,
            }
            for k in ("pre", "regular", "post")
        },
        "dataGranularity": interval,
        "range": "",
        "validRanges": ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"],
    }


def chart(ticker: str, data: dict[str, pd.DataFrame], query: dict[str, str]) -> dict:
    """The chart API's answer for one ticker and query (period1/period2 or range, interval)."""
    interval = query.get("interval", "1d").replace("60m", "1h")
    if interval not in data:
        return {
            "chart": {
                "result": None,
                "error": {"code": "Unprocessable Entity", "description": f"Invalid interval {interval}"},
            }
        }
    bars = data[interval]
    if "period1" in query:
        lo = pd.Timestamp(int(query["period1"]), unit="s", tz="UTC")
        hi = pd.Timestamp(int(query.get("period2", 4_000_000_000)), unit="s", tz="UTC")
        bars = bars[(bars.index >= lo) & (bars.index < hi)]
    elif "range" in query:
        days = {"1d": 1, "5d": 5}.get(query["range"], 36500)
        bars = bars[bars.index >= bars.index[-1].normalize() - pd.Timedelta(days=days - 1)]
    if query.get("includePrePost", "true").lower() == "false" and interval == "1h":
        local = bars.index.tz_convert(NY)
        minutes = local.hour * 60 + local.minute
        bars = bars[(minutes >= 570) & (minutes < 960)]
    if bars.empty:
        return {
            "chart": {
                "result": None,
                "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"},
            }
        }
    quote = {c.lower(): [float(v) for v in bars[c]] for c in ("Open", "High", "Low", "Close")}
    quote["volume"] = [int(v) for v in bars["Volume"]]
    result = {
        "meta": _meta(ticker, data[interval], interval),
        "timestamp": [int(t.timestamp()) for t in bars.index],
        "events": {},
        "indicators": {"quote": [quote]},
    }
    if interval == "1d":
        result["indicators"]["adjclose"] = [{"adjclose": quote["close"]}]
    else:
        result["meta"]["tradingPeriods"] = _trading_periods(
            bars, query.get("includePrePost", "true").lower() != "false"
        )
    return {"chart": {"result": [result], "error": None}}


def _trading_periods(bars: pd.DataFrame, prepost: bool):
    """Yahoo's per-day session times (epoch seconds) for the days in `bars`: the NYSE's regular
    session, and with pre/post-market 04:00-09:30 and close-20:00 New York time."""
    import exchange_calendars as xc

    days = sorted({t.date() for t in bars.index.tz_convert(NY)})
    sched = xc.get_calendar("XNYS", start=str(days[0]), end=str(days[-1])).schedule

    def period(a, b):
        return [{"timezone": "EDT", "start": int(a.timestamp()), "end": int(b.timestamp()), "gmtoffset": -14400}]

    regular, pre, post = [], [], []
    for day in days:
        if pd.Timestamp(day) not in sched.index:
            continue
        op, cl = sched.loc[pd.Timestamp(day), "open"], sched.loc[pd.Timestamp(day), "close"]
        local = pd.Timestamp(day).tz_localize(NY)
        regular.append(period(op, cl))
        pre.append(period(local + pd.Timedelta(hours=4), op))
        post.append(period(cl, local + pd.Timedelta(hours=20)))
    return {"pre": pre, "regular": regular, "post": post} if prepost else regular


class YahooMirror:
    """ThreadingHTTPServer on 127.0.0.1 answering crumb, cookie and chart requests; counts requests."""

    def __init__(self, tickers: dict[str, dict[str, pd.DataFrame]]):
        self.tickers = tickers
        self.requests: list[str] = []
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                url = urlparse(self.path)
                mirror.requests.append(url.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                if url.path.endswith("/v1/test/getcrumb"):
                    return self._send(200, b"test-crumb", "text/plain")
                if "/v8/finance/chart/" in url.path:
                    ticker = url.path.rsplit("/", 1)[-1]
                    if ticker not in mirror.tickers:
                        body = {
                            "chart": {
                                "result": None,
                                "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"},
                            }
                        }
                        return self._send(404, json.dumps(body).encode(), "application/json")
                    return self._send(
                        200, json.dumps(chart(ticker, mirror.tickers[ticker], query)).encode(), "application/json"
                    )
                return self._send(200, b"<html>ok</html>", "text/html", cookie=True)

            def _send(self, status, body, ctype, cookie=False):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                if cookie:
                    self.send_header("Set-Cookie", "A3=test; Path=/")
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> YahooMirror:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def charts(self) -> int:
        return sum("/v8/finance/chart/" in p for p in self.requests)
