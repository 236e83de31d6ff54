"""What exists: symbols, intervals and files from the bucket's S3 XML listing (or a local mirror)."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx

from candleflow.data.sources.binance.download import DownloadError, read_limited
from candleflow.data.sources.binance.plan import MARKETS

DEFAULT_LISTING_URL = "https://s3-ap-northeast-1.amazonaws.com/data.binance.vision"
MAX_PAGE_BYTES = 8 << 20  # an S3 page of 1,000 keys is about 300 kB
MAX_KEYS = 2_000_000  # every kline file of every symbol is far fewer
DEADLINE = 600.0  # seconds for one whole listing


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
    start = time.monotonic()
    try:
        while True:
            params = {"prefix": prefix, "delimiter": delimiter}
            if marker:
                params["marker"] = marker
            p, k, truncated, next_marker = parse_listing(_get_page(client, listing_url, params))
            outside = next((x for x in p + k if not x.startswith(prefix)), None)
            if outside is not None:
                raise DownloadError(f"{listing_url}: listing returned {outside[:80]!r}, outside the prefix {prefix!r}")
            prefixes += p
            keys += k
            if not truncated:
                break
            new_marker = next_marker or max(k + p, default="")
            if new_marker <= marker:  # a listing that does not advance would page forever
                raise DownloadError(f"{listing_url}: listing marker did not advance past {marker[:80]!r}")
            marker = new_marker
            if len(keys) + len(prefixes) > MAX_KEYS or time.monotonic() - start > DEADLINE:
                raise DownloadError(
                    f"{listing_url}: listing of {prefix!r} exceeded {MAX_KEYS:,} keys or {DEADLINE:g} s; refusing more"
                )
    finally:
        if own:
            client.close()
    return prefixes, keys


def _get_page(client: httpx.Client, listing_url: str, params: dict[str, str]) -> str:
    """One listing page, at most MAX_PAGE_BYTES."""
    try:
        with client.stream("GET", listing_url.rstrip("/") + "/", params=params) as resp:
            if resp.status_code != 200:
                raise DownloadError(f"{listing_url}: listing answered HTTP {resp.status_code}; expected 200")
            body = read_limited(resp.iter_bytes(), MAX_PAGE_BYTES, f"{listing_url}: listing page")
    except httpx.HTTPError as exc:
        raise DownloadError(f"{listing_url}: listing failed ({type(exc).__name__}: {exc})") from None
    return body.decode("utf-8", "replace")


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
