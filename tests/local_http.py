"""A stand-in web node on loopback for tests of the HTTP clients (the probe, the load generator).

It answers like the lab's app through nginx: HTTP/1.1 with keep-alive, ``{"message":"Hello from
web-1"}`` on any path, and 503 on ``/down`` (a backend that is down).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebOne(BaseHTTPRequestHandler):
    """web-1's answers."""

    protocol_version = "HTTP/1.1"  # keep-alive unless the client says close, as nginx does

    def do_GET(self) -> None:
        status = 503 if self.path == "/down" else 200
        body = b'{"message":"Hello from web-1"}'
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@contextmanager
def serving() -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a running :class:`WebOne`, stopped after the block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), WebOne)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5.0)
