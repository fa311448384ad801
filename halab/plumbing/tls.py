"""Throwaway TLS: a self-signed certificate and its key in one PEM, as HAProxy's ``crt`` wants.

The namespace lab and the validators (``haproxy -c`` needs a real certificate where the render
command has a placeholder) both use this one. A deployed stack does not: its certificate is
made once by a Pulumi command and kept in the stack's state (``components/tls.py``), with RSA
and a long lifetime, and its command must not change under existing stacks.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess


def self_signed_pem(
    common_name: str = "ha-web-lab", *, days: int = 2, timeout: float = 20.0
) -> str:
    """Certificate, then key (EC P-256, ``days`` valid), made now by ``openssl``."""
    openssl = shutil.which("openssl") or "/usr/bin/openssl"
    done = subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", str(days), "-subj", f"/CN={common_name}",
            "-keyout", "/dev/stdout", "-out", "/dev/stdout",
        ],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    if done.returncode != 0 or "PRIVATE KEY" not in done.stdout:
        raise RuntimeError(f"openssl could not make a throwaway certificate: {done.stderr.strip()}")
    # openssl writes the key first: HAProxy takes either order, the tutorial's PEM has the
    # certificate first, so put it first.
    key, _, cert = done.stdout.partition("-----END PRIVATE KEY-----\n")
    return cert + key + "-----END PRIVATE KEY-----\n"


def unverified_context() -> ssl.SSLContext:
    """A TLS client context that accepts any certificate: the lab's is self-signed (the
    tutorial's ``curl -k``), and a client of the lab checks what answers, not who."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx
