"""A tiny fake HTTP server on 127.0.0.1 for testing online-service code without a network.

Used by test_remote.py, test_catalogs.py and test_skyview.py
(``from tests.survey.fake_services import ...``). Each route maps a URL path to a handler
returning (status, content type, body); the server records every request, can be told
to fail the next N requests, and stops itself when the test ends.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest


@dataclass(frozen=True)
class Seen:
    """One request the fake server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes


Reply = tuple[int, str, bytes]
Handler = Callable[[Seen], Reply]


class FakeServer:
    """Serve ``routes`` ({path: handler}) on a free port of 127.0.0.1 in a daemon thread."""

    def __init__(self, routes: dict[str, Handler]):
        self.routes = dict(routes)
        self.seen: list[Seen] = []
        self.failures_left = 0
        self.failure_status = 503
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321``."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def fail_next(self, count: int, *, status: int = 503) -> None:
        """Answer the next ``count`` requests with HTTP ``status``."""
        self.failures_left, self.failure_status = count, status

    def stop(self) -> None:
        """Stop serving and close the socket (later connections are refused)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server naming)
                self._answer()

            def do_POST(self) -> None:  # noqa: N802
                self._answer()

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _answer(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, parts.path, parse_qs(parts.query), self.rfile.read(length))
                server.seen.append(seen)
                if server.failures_left > 0:
                    server.failures_left -= 1
                    status, ctype, body = server.failure_status, "text/plain", b"temporarily unavailable"
                elif parts.path in server.routes:
                    status, ctype, body = server.routes[parts.path](seen)
                else:
                    status, ctype, body = 404, "text/plain", b"no such path"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return _Handler


def closed_port_url() -> str:
    """``http://127.0.0.1:<port>`` of a port nothing listens on: connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def silent_server() -> tuple[socket.socket, str]:
    """A listening socket that accepts connections but never answers: reads time out.

    Returns the socket (close it when done) and its base URL.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture(autouse=True)
def _isolated_network_state(monkeypatch, tmp_path):
    """Autouse in every test module that imports it: talk to 127.0.0.1 directly even where
    a proxy is set, and give each test its own cache (fake servers get random ports, and a
    reused port must not hit an old answer)."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HALO_CACHE_DIR", str(tmp_path / "halo-cache"))
