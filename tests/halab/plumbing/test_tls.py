"""The throwaway certificate: one PEM, certificate first, that openssl reads back."""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

from halab.plumbing.tls import self_signed_pem, unverified_context


def test_one_pem_with_the_certificate_then_the_key() -> None:
    pem = self_signed_pem("10.0.1.100")
    assert pem.startswith("-----BEGIN CERTIFICATE-----")
    assert pem.rstrip().endswith("-----END PRIVATE KEY-----")
    subject = subprocess.run(
        ["openssl", "x509", "-noout", "-subject"], input=pem, capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip
    # OpenSSL 3.0 (bookworm) prints "CN = 10.0.1.100", 3.5 (trixie) "CN=10.0.1.100".
    assert re.search(r"CN ?= ?10\.0\.1\.100$", subject.strip())


def test_the_unverified_context_talks_to_a_self_signed_server_a_verifying_one_refuses(
    tmp_path: Path,
) -> None:
    pem = tmp_path / "lab.pem"
    pem.write_text(self_signed_pem("127.0.0.1"))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(pem)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve(count: int) -> None:
            for _ in range(count):
                conn, _addr = listener.accept()
                try:
                    with server.wrap_socket(conn, server_side=True) as tls:
                        tls.sendall(b"hello")
                except (ssl.SSLError, OSError):
                    conn.close()  # the verifying client hung up on our certificate

        thread = threading.Thread(target=serve, args=(2,), daemon=True)
        thread.start()
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            unverified_context().wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            assert tls.recv(5) == b"hello"
        with (
            pytest.raises(ssl.SSLCertVerificationError),
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ):
            ssl.create_default_context().wrap_socket(raw, server_hostname="127.0.0.1")
        thread.join(5)
