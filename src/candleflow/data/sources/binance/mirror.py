"""Serve a local copy of the Binance bulk-data tree over HTTP on 127.0.0.1, with the bucket's XML
listing, so the real download code runs offline (tests, benchmarks, a team's shared mirror).

`faults` lets a test script what the next requests for a key get: '500', '404', 'stall',
'truncate', 'corrupt', 'reset' or 'slow', each used once, in order.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse
from xml.sax.saxutils import escape

NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def confined(root: Path, key: str) -> Path | None:
    """root/key when it stays inside root (no '..', absolute keys, NULs or links out), else None."""
    if not key or "\x00" in key or key.startswith("/") or "\\" in key:
        return None
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts[:-1]) or parts[-1] in (".", ".."):
        return None
    base = root.resolve()
    path = (base / key).resolve()
    return path if base in path.parents else None


def listing_xml(root: Path, prefix: str, delimiter: str, marker: str, page_size: int) -> str:
    """One ListBucketResult page of the folder tree under root, as S3 writes it (only keys under
    root: a prefix that climbs out lists nothing)."""
    folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
    base = confined(root, folder + "/x") if folder else root.resolve()
    base = base.parent if base is not None and folder else base
    entries: set[tuple[str, bool]] = set()
    root = root.resolve()
    if base is not None and base.is_dir():
        for path in base.rglob("*") if not delimiter else base.iterdir():
            key = path.relative_to(root).as_posix()
            if not key.startswith(prefix) or path.name.startswith("."):
                continue
            if path.is_dir():
                if delimiter:
                    entries.add((key + "/", True))
            else:
                entries.add((key, False))
    ordered = sorted(e for e in entries if e[0] > marker)
    page, truncated = ordered[:page_size], len(ordered) > page_size
    parts = [
        f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="{NS}">',
        "<Name>data.binance.vision</Name>",
        f"<Prefix>{escape(prefix)}</Prefix>",
        f"<Marker>{escape(marker)}</Marker>",
        f"<MaxKeys>{page_size}</MaxKeys>",
        f"<Delimiter>{escape(delimiter)}</Delimiter>",
        f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>",
    ]
    if truncated:
        parts.append(f"<NextMarker>{escape(page[-1][0])}</NextMarker>")
    for key, is_prefix in page:
        if is_prefix:
            parts.append(f"<CommonPrefixes><Prefix>{escape(key)}</Prefix></CommonPrefixes>")
        else:
            size = (root / key).stat().st_size
            parts.append(f"<Contents><Key>{escape(key)}</Key><Size>{size}</Size></Contents>")
    parts.append("</ListBucketResult>")
    return "\n".join(parts)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # clients hanging up is normal here
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class MirrorServer:
    """A threaded HTTP server for a local mirror folder; use as a context manager."""

    def __init__(
        self,
        root: str | Path,
        page_size: int = 1000,
        stall_seconds: float = 5.0,
        slow_chunk: int = 4096,
        slow_delay: float = 0.05,
        latency: float = 0.0,
    ):
        self.root = Path(root)
        self.latency = latency  # seconds before each response: a stand-in for a WAN round trip
        self.page_size = page_size
        self.stall_seconds = stall_seconds
        self.slow_chunk, self.slow_delay = slow_chunk, slow_delay
        self.faults: dict[str, list[str]] = defaultdict(list)
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def add_fault(self, key: str, *actions: str) -> None:
        with self._lock:
            self.faults[key].extend(actions)

    def _next_fault(self, key: str) -> str | None:
        with self._lock:
            self.requests.append(key)
            queue = self.faults.get(key)
            return queue.pop(0) if queue else None

    def count(self, key: str) -> int:
        with self._lock:
            return self.requests.count(key)

    def __enter__(self) -> MirrorServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 1 << 16  # headers and body leave in one segment (no delayed-ACK stalls)

            def log_message(self, fmt: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                url = urlparse(self.path)
                key = unquote(url.path.lstrip("/"))
                if key == "":
                    q = parse_qs(url.query)
                    body = listing_xml(
                        server.root,
                        q.get("prefix", [""])[0],
                        q.get("delimiter", [""])[0],
                        q.get("marker", [""])[0],
                        server.page_size,
                    ).encode()
                    return self._send(200, body, "application/xml")
                fault = server._next_fault(key)
                if server.latency:
                    time.sleep(server.latency)
                path = confined(server.root, key)
                if fault == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    return
                if fault == "500":
                    return self._send(500, b"internal error")
                if fault == "404" or path is None or not path.is_file():
                    return self._send(404, b"not found")
                data = path.read_bytes()
                if fault == "corrupt":
                    data = data[:-1] + bytes([data[-1] ^ 0xFF])
                if fault in ("stall", "truncate", "slow"):
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    half = len(data) // 2
                    if fault == "slow":
                        for i in range(0, len(data), server.slow_chunk):
                            self.wfile.write(data[i : i + server.slow_chunk])
                            self.wfile.flush()
                            time.sleep(server.slow_delay)
                        return
                    self.wfile.write(data[:half])
                    self.wfile.flush()
                    if fault == "stall":
                        time.sleep(server.stall_seconds)
                    self.close_connection = True
                    return
                self._send(200, data)

            def do_HEAD(self) -> None:  # noqa: N802
                """A file's size, as S3 states it (no fault and no count: those are the GETs')."""
                path = confined(server.root, unquote(urlparse(self.path).path.lstrip("/")))
                found = path is not None and path.is_file()
                self.send_response(200 if found else 404)
                self.send_header("Content-Length", str(path.stat().st_size if found and path else 0))
                self.end_headers()

            def _send(self, code: int, body: bytes, ctype: str = "application/octet-stream") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
