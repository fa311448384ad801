"""The Python load generator against a local HTTP server: keep-alive requests, bounded."""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Iterator

import pytest

from halab.lab.loadgen import run_load


class _KeepAlive(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as nginx answers

    def do_GET(self) -> None:
        status = 503 if self.path == "/down" else 200
        body = b"web-1\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _KeepAlive)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_counts_answers_over_keep_alive_connections(server: str) -> None:
    result = asyncio.run(run_load(f"{server}/", connections=2, duration=5.0, max_requests=25))
    assert (result.ok, result.errors) == (50, 0)  # ended by the request bound, not the clock
    assert result.rps > 0


def test_a_non_2xx_answer_is_an_error(server: str) -> None:
    result = asyncio.run(run_load(f"{server}/down", connections=1, duration=5.0, max_requests=3))
    assert (result.ok, result.errors) == (0, 3)
