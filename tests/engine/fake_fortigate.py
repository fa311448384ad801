"""A stand-in FortiGate REST API on loopback, for previews that must reach one.

With certificate verification on, the FortiOS provider logs in when it starts (``GET
/api/v2/monitor/system/status`` with the token), so a preview needs an API that answers. This one
serves HTTPS on 127.0.0.1 with a certificate signed by a throwaway CA, which the test hands the
provider as its CA bundle: the provider then verifies a real chain, and no request ever leaves
the machine. It answers the status call and records every request.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from halab.fortigate.tls import make_ca_and_server_cert

#: What FortiOS 7.2 answers to the status call (the fields the provider reads).
STATUS = {
    "http_method": "GET",
    "results": {"model_name": "FortiGate", "model_number": "VM64", "model": "FGVM64"},
    "vdom": "root",
    "path": "system",
    "name": "status",
    "status": "success",
    "http_status": 200,
    "serial": "FGVMEVTEST000000",
    "version": "v7.2.8",
    "build": 1639,
}


@dataclass
class FakeFortiGate:
    """Where it listens, the CA that signed its certificate, and what it was asked."""

    host: str
    ca_file: Path
    requests: list[tuple[str, str, str]] = field(default_factory=list)


@contextmanager
def fake_fortigate(folder: Path) -> Iterator[FakeFortiGate]:
    """Serve the API on an ephemeral loopback port until the block ends."""
    ca, cert, key = make_ca_and_server_cert(folder)
    seen: list[tuple[str, str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(("GET", self.path, self.headers.get("Authorization", "")))
            body = json.dumps(STATUS).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield FakeFortiGate(f"127.0.0.1:{server.server_address[1]}", ca, seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
