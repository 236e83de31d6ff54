"""What exists: symbols, intervals and files from the bucket's S3 XML listing (or a local mirror)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx

from candleflow.data.sources.binance.download import DownloadError
from candleflow.data.sources.binance.plan import MARKETS

DEFAULT_LISTING_URL = "https://s3-ap-northeast-1.amazonaws.com/data.binance.vision"


def _strip_ns(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_listing(xml_text: str) -> tuple[list[str], list[str], bool, str | None]:
    """(common prefixes, keys, is_truncated, next_marker) from one ListBucketResult page."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise DownloadError(f"bucket listing is not valid XML ({exc})") from None
    if _strip_ns(root.tag) != "ListBucketResult":
        raise DownloadError(f"bucket listing: expected <ListBucketResult>, got <{_strip_ns(root.tag)}>")
    prefixes, keys, truncated, next_marker = [], [], False, None
    for el in root:
        tag = _strip_ns(el.tag)
        if tag == "CommonPrefixes":
            prefixes += [c.text or "" for c in el if _strip_ns(c.tag) == "Prefix"]
        elif tag == "Contents":
            keys += [c.text or "" for c in el if _strip_ns(c.tag) == "Key"]
        elif tag == "IsTruncated":
            truncated = (el.text or "").strip().lower() == "true"
        elif tag == "NextMarker":
            next_marker = el.text
    return prefixes, keys, truncated, next_marker


def list_prefix(
    listing_url: str, prefix: str, delimiter: str = "/", client: httpx.Client | None = None
) -> tuple[list[str], list[str]]:
    """All common prefixes and keys under prefix, following `marker` while IsTruncated."""
    if listing_url.startswith("file://"):
        return _list_local(Path(unquote(urlparse(listing_url).path)), prefix)
    own = client is None
    client = client or httpx.Client(timeout=30.0, follow_redirects=True)
    prefixes: list[str] = []
    keys: list[str] = []
    marker = ""
    try:
        for _page in range(100_000):
            params = {"prefix": prefix, "delimiter": delimiter}
            if marker:
                params["marker"] = marker
            try:
                resp = client.get(listing_url.rstrip("/") + "/", params=params)
            except httpx.HTTPError as exc:
                raise DownloadError(f"{listing_url}: listing failed ({type(exc).__name__}: {exc})") from None
            if resp.status_code != 200:
                raise DownloadError(f"{listing_url}: listing answered HTTP {resp.status_code}; expected 200")
            p, k, truncated, next_marker = parse_listing(resp.text)
            prefixes += p
            keys += k
            if not truncated:
                break
            marker = next_marker or max(k + p)
    finally:
        if own:
            client.close()
    return prefixes, keys


def _list_local(root: Path, prefix: str) -> tuple[list[str], list[str]]:
    folder = root / prefix
    if not folder.is_dir():
        return [], []
    prefixes = sorted(f"{prefix}{p.name}/" for p in folder.iterdir() if p.is_dir())
    keys = sorted(f"{prefix}{p.name}" for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    return prefixes, keys


def list_symbols(listing_url: str, market: str = "spot") -> list[str]:
    """Symbols with monthly klines in a market."""
    prefixes, _ = list_prefix(listing_url, f"{MARKETS[market]}/monthly/klines/")
    return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in prefixes)


def list_intervals(listing_url: str, market: str, symbol: str) -> list[str]:
    prefixes, _ = list_prefix(listing_url, f"{MARKETS[market]}/monthly/klines/{symbol}/")
    return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in prefixes)


def list_files(listing_url: str, market: str, symbol: str, interval: str) -> list[str]:
    """Keys of the monthly and daily ZIPs published for one symbol and interval."""
    out = []
    for period in ("monthly", "daily"):
        _, keys = list_prefix(listing_url, f"{MARKETS[market]}/{period}/klines/{symbol}/{interval}/")
        out += [k for k in keys if k.endswith(".zip")]
    return out
