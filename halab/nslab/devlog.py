"""A per-host ``/dev/log`` for the lab: receive syslog datagrams, append them to a file.

A VM has rsyslog listening on ``/var/lib/haproxy/dev/log`` (HAProxy logs from its chroot); a
namespace host has nothing there, so HAProxy's request log (``option httplog``: which server
answered, retries, termination state) would be lost. Standard library only, run as a script::

    python -I -S devlog.py SOCKET_PATH LOG_FILE

It stops on SIGTERM/SIGKILL like any daemon of the host.
"""

from __future__ import annotations

import os
import socket
import sys
import time


def collect(path: str, out_path: str, max_s: float = 7 * 24 * 3600.0) -> None:
    """Bind the datagram socket and write each message with a timestamp (bounded in time)."""
    if os.path.exists(path):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    os.chmod(path, 0o666)  # noqa: S103 - HAProxy logs after dropping to its own user
    sock.settimeout(1.0)
    deadline = time.monotonic() + max_s
    with open(out_path, "a", encoding="utf-8", buffering=1) as out:
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            stamp = time.strftime("%H:%M:%S", time.localtime()) + f".{time.time() % 1:.3f}"[2:]
            out.write(f"{stamp} {data.decode(errors='replace').rstrip()}\n")


if __name__ == "__main__":
    collect(sys.argv[1], sys.argv[2])
