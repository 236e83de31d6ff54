"""Yahoo Finance through the yfinance package: one ticker's bars, cached as Parquet with the
exchange, time zone and exchange calendar Yahoo reports for it."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from candleflow.config import YFinanceSource
from candleflow.data.validate import RawCandles
from candleflow.errors import ConfigError, SourceError
from candleflow.fs.atomic import atomic_path
from candleflow.fs.caches import evict, record, remember, touch

log = logging.getLogger("candleflow")

# Yahoo's exchange codes -> exchange_calendars names (regular trading hours)
EXCHANGE_CALENDARS = {
    "NMS": "XNAS",
    "NGM": "XNAS",
    "NCM": "XNAS",
    "NAS": "XNAS",
    "NYQ": "XNYS",
    "NYS": "XNYS",
    "PCX": "XNYS",  # NYSE Arca: the NYSE's sessions
    "ASE": "XNYS",
    "BTS": "XNYS",
    "PNK": "XNYS",
    "LSE": "XLON",
    "IOB": "XLON",
    "GER": "XETR",
    "FRA": "XFRA",
    "PAR": "XPAR",
    "AMS": "XAMS",
    "BRU": "XBRU",
    "MIL": "XMIL",
    "MCE": "XMAD",
    "EBS": "XSWX",
    "STO": "XSTO",
    "CPH": "XCSE",
    "HEL": "XHEL",
    "OSL": "XOSL",
    "VIE": "XWBO",
    "TOR": "XTSE",
    "ASX": "XASX",
    "JPX": "XTKS",
    "TYO": "XTKS",
    "HKG": "XHKG",
    "KSC": "XKRX",
    "NSI": "XNSE",
    "BSE": "XBOM",
    "SHH": "XSHG",
    "SHZ": "XSHG",
    "SES": "XSES",
    "SAO": "BVMF",
}
META_KEYS = ("exchangeName", "fullExchangeName", "exchangeTimezoneName", "currency", "instrumentType")
MAX_ROWS = 20_000_000  # a hostile mirror cannot make us hold more than this


def fetch_yfinance(
    cfg: YFinanceSource, session: Any = None, max_cache_bytes: int | None = None
) -> tuple[RawCandles, dict[str, Any]]:
    """The ticker's bars (from the cache when the range is in the past and cached) and what Yahoo
    says about it: {exchange, timezone, calendar, currency}. The cache is kept under
    `max_cache_bytes` (least recently used queries go first)."""
    if len(cfg.tickers) != 1:
        raise ConfigError(
            f"source.tickers lists {len(cfg.tickers)} tickers; one source is one series: list them in "
            "universe.symbols (one entry each) or keep the yfinance source's tickers and run it as a universe"
        )
    ticker = cfg.tickers[0]
    path = cache_path(cfg)
    today = dt.datetime.now(dt.UTC).date()
    final = cfg.end is not None and dt.date.fromisoformat(cfg.end) < today  # bars of the past do not change
    root = Path(cfg.cache_dir).expanduser()
    if final and path.is_file():
        table = pq.read_table(path)
        touch(path)
        record("yfinance", root, hits=1)
    else:
        table = _download(cfg, ticker, session)
        with atomic_path(path, suffix=".parquet") as tmp:
            pq.write_table(table, tmp)
        remember("yfinance", root, [path])
        record("yfinance", root, misses=1)
        evict("yfinance", root, max_cache_bytes, keep=[path])
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    info = json.loads(meta.get("yahoo", "{}"))
    cols = {
        "open_time": table.column("open_time").cast(pa.int64()).to_numpy(),
        **{c: table.column(c).to_numpy(zero_copy_only=False).astype(np.float64) for c in OHLCV_NAMES},
    }
    raw = RawCandles(columns=cols, symbol=ticker, source="yfinance", interval=cfg.interval)
    return raw, info


OHLCV_NAMES = ("open", "high", "low", "close", "volume")


def cache_path(cfg: YFinanceSource) -> Path:
    """One Parquet file per ticker, interval and query (dates, adjustment, extended hours)."""
    ticker = cfg.tickers[0]
    query = json.dumps([cfg.start, cfg.end, cfg.auto_adjust, cfg.prepost], sort_keys=True)
    key = hashlib.sha256(query.encode()).hexdigest()[:16]
    return Path(cfg.cache_dir).expanduser() / ticker / cfg.interval / f"{ticker}-{cfg.interval}-{key}.parquet"


def _download(cfg: YFinanceSource, ticker: str, session: Any) -> pa.Table:
    """Bars from yfinance as an Arrow table (open_time ns UTC, OHLCV) with Yahoo's facts as metadata."""
    try:
        import yfinance as yf
    except ImportError:
        raise ConfigError("source.kind yfinance needs the yfinance package: pip install 'candleflow[stocks]'") from None
    if session is None and cfg.base_url:
        session = mirror_session(cfg.base_url)
    end = None if cfg.end is None else str(dt.date.fromisoformat(cfg.end) + dt.timedelta(days=1))  # inclusive
    t = yf.Ticker(ticker, session=session) if session is not None else yf.Ticker(ticker)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # yfinance's own deprecations (raise_errors, pandas inplace)
            df = t.history(
                start=cfg.start,
                end=end,
                interval=cfg.interval,
                prepost=cfg.prepost,
                auto_adjust=cfg.auto_adjust,
                actions=False,
                repair=False,
                raise_errors=True,
            )
            md = t.history_metadata or {}  # a lazy mapping: read only the keys needed (no extra requests)
            meta = {k: md.get(k) for k in META_KEYS}
    except Exception as exc:  # yfinance raises many types (HTTP, rate limit, missing prices)
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
        raise SourceError(f"yfinance {ticker} {cfg.interval} {cfg.start} .. {cfg.end or 'now'}: {first}") from None
    if df is None or len(df) == 0:
        raise SourceError(f"yfinance {ticker} {cfg.interval} {cfg.start} .. {cfg.end or 'now'}: no bars returned")
    if len(df) > MAX_ROWS:
        raise SourceError(f"yfinance {ticker}: {len(df):,} rows, more than the {MAX_ROWS:,} one query may bring")
    missing = [c for c in ("Open", "High", "Low", "Close", "Volume") if c not in df.columns]
    if missing:
        raise SourceError(
            f"yfinance {ticker}: the answer lacks columns {missing}; expected Open, High, Low, Close, Volume"
        )
    index = df.index
    if getattr(index, "tz", None) is None:
        index = index.tz_localize(meta.get("exchangeTimezoneName") or "UTC")
    times = index.tz_convert("UTC").tz_localize(None).to_numpy("datetime64[ns]")
    exchange = str(meta.get("exchangeName") or "")
    info = {
        "exchange": exchange,
        "exchange_name": str(meta.get("fullExchangeName") or exchange),
        "timezone": str(meta.get("exchangeTimezoneName") or ""),
        "calendar": EXCHANGE_CALENDARS.get(exchange, ""),
        "currency": str(meta.get("currency") or ""),
        "instrument": str(meta.get("instrumentType") or ""),
    }
    table = pa.table(
        {
            "open_time": pa.array(times),
            **{
                c.lower(): pa.array(df[c].to_numpy(dtype=np.float64))
                for c in ("Open", "High", "Low", "Close", "Volume")
            },
        }
    )
    return table.replace_schema_metadata({"yahoo": json.dumps(info), "ticker": ticker})


def mirror_session(base_url: str):
    """A curl_cffi session (the kind yfinance takes) that sends every Yahoo request to `base_url`,
    keeping Yahoo's host name as the first path segment."""
    from curl_cffi import requests as curl_requests

    parsed = urlparse(base_url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"source.base_url {base_url!r}: expected http://host:port or https://host")
    base = base_url.rstrip("/")

    class MirrorSession(curl_requests.Session):
        def request(self, method, url, *args, **kwargs):
            p = urlparse(url)
            local = f"{base}/{p.netloc}{p.path}" + (f"?{p.query}" if p.query else "")
            return super().request(method, local, *args, **kwargs)

    return MirrorSession()


def calendar_for(info: dict[str, Any], ticker: str) -> str:
    """The exchange calendar of a ticker's exchange, or 24/7 with a warning when it is unknown."""
    if info.get("calendar"):
        return str(info["calendar"])
    log.warning(
        "yfinance %s: exchange %r has no known calendar; validating as 24/7 (set validation.calendar)",
        ticker,
        info.get("exchange"),
    )
    return "24/7"
