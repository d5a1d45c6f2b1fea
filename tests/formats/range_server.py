"""A loopback HTTP server for remote-reading tests: serves a folder with byte ranges, and misbehaves
on request (ignores Range, answers 429 first, drops the connection mid-body, sends the wrong range).

Written to RFC 9110's range rules as the tests read them; ``test_remote.py`` also checks the client
against Starlette's ``StaticFiles``, a range server nobody here wrote, when it is installed.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_RANGE = re.compile(r"^bytes=(\d+)-(\d+)?$")


@dataclass
class Faults:
    ignore_range: bool = False
    #: Answer this many requests with 429 (Retry-After: retry_after) before serving.
    too_many: int = 0
    retry_after: str = "0"
    #: Send half the body of this many ranged answers, then drop the connection.
    drop_mid_body: int = 0
    #: Serve a range shifted by one byte (a broken cache).
    wrong_range: bool = False
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class QuietHandler(BaseHTTPRequestHandler):
    """What every loopback test server here shares: keep-alive, no Nagle delay, no log lines."""

    protocol_version = "HTTP/1.1"  # keep-alive: the client's connection reuse is observable
    # Headers and body go out in separate writes; with Nagle on, the body waits ~40 ms for the
    # client's delayed ACK on every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        pass


def _handler(root: Path, faults: Faults) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def do_GET(self) -> None:
            with faults.lock:
                faults.requests.append(f"{self.path} {self.headers.get('Range', '')}")
                throttle = faults.too_many > 0
                faults.too_many -= throttle
            if throttle:
                self._reply(429, b"slow down", {"Retry-After": faults.retry_after})
                return
            relative = self.path.lstrip("/").split("?")[0]
            target = (root / relative).resolve()
            if not target.is_relative_to(root.resolve()) or not target.is_file():
                self._reply(404, b"not found")
                return
            data = target.read_bytes()
            match = _RANGE.match(self.headers.get("Range", ""))
            if match is None or faults.ignore_range:
                self._reply(200, data)
                return
            start = int(match.group(1))
            stop = min(int(match.group(2)) + 1 if match.group(2) else len(data), len(data))
            if start >= len(data):
                self._reply(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                return
            shift = 1 if faults.wrong_range else 0
            body = data[start + shift : stop + shift]
            headers = {"Content-Range": f"bytes {start + shift}-{start + shift + len(body) - 1}/{len(data)}"}
            with faults.lock:
                drop = faults.drop_mid_body > 0
                faults.drop_mid_body -= drop
            if drop:
                self.send_response(206)
                self.send_header("Content-Length", str(len(body)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self._reply(206, body, headers)

        def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve with ``handler`` on 127.0.0.1 (a free port) from a thread; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serve_folder(root: Path, faults: Faults | None = None) -> Iterator[tuple[str, Faults]]:
    """Serve ``root`` on 127.0.0.1 (a free port); yields the base URL and the fault switches."""
    faults = faults or Faults()
    with serving(_handler(root, faults)) as url:
        yield url, faults
