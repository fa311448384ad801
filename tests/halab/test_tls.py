"""The throwaway certificate: one PEM, certificate first, that openssl reads back."""

from __future__ import annotations

import re
import subprocess

from halab.tls import self_signed_pem


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
