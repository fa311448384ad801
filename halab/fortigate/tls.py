"""A throwaway CA and a server certificate it signs, for the emulator's HTTPS.

The provider verifies the FortiGate's certificate unless told not to; handed this CA as its CA
bundle it verifies a real chain, so a test proves the verifying path too. The stand-in of
tests/engine/fake_fortigate.py uses the same helper.
"""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_ca_and_server_cert(
    folder: Path, host: str = "127.0.0.1", days: int = 1
) -> tuple[Path, Path, Path]:
    """A CA, and a certificate for ``host`` signed by it: (ca.pem, server.pem, server.key)."""
    ca_key, ca, key, csr, cert = (
        folder / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem")
    )
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    # Python 3.13 verifies strictly by default (VERIFY_X509_STRICT): a CA without key usage, or
    # a server certificate without an authority key identifier, fails the handshake on trixie.
    ca_ext = (
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    _openssl("req", "-x509", *ec, *ca_ext, "-days", str(days), "-subj", "/CN=test FortiGate CA",
             "-keyout", str(ca_key), "-out", str(ca))  # fmt: skip
    _openssl("req", "-new", *ec, "-subj", f"/CN={host}", "-keyout", str(key), "-out", str(csr))
    try:
        ipaddress.ip_address(host)
        san = f"IP:{host}"
    except ValueError:
        san = f"DNS:{host}"
    ext = folder / "san.ext"
    ext.write_text(
        f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
    )
    signing = ("-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-days", str(days))
    _openssl("x509", "-req", "-in", str(csr), *signing, "-extfile", str(ext), "-out", str(cert))
    return ca, cert, key
