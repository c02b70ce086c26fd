"""The container health probe against a real HTTP server."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from services.ops.healthcheck import main


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = {"/healthz": 200, "/readyz": 503}.get(self.path, 404)
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_healthy_answer_exits_zero(server: str) -> None:
    assert main([f"{server}/healthz"]) == 0


@pytest.mark.parametrize("path", ["/readyz", "/missing"])
def test_error_status_exits_one(server: str, path: str) -> None:
    assert main([f"{server}{path}"]) == 1


def test_refused_connection_exits_one() -> None:
    with socket.socket() as probe_socket:  # a port that was free a moment ago
        probe_socket.bind(("127.0.0.1", 0))
        port = probe_socket.getsockname()[1]
    assert main([f"http://127.0.0.1:{port}/healthz"]) == 1


def test_usage_error_exits_two() -> None:
    assert main([]) == 2
