"""Network namespace helpers for the calling *thread* (setns through libc).

``setns(CLONE_NEWNET)`` changes only the calling thread's namespace, and a socket keeps the
namespace it was created in. So the lab opens a socket "inside" a host with :func:`socket_in`
without a helper process, then uses it from anywhere.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")


@cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def netns_path(name: str) -> Path:
    """The bind-mounted namespace file ``ip netns`` and pyroute2 use."""
    return NETNS_DIR / name


def exists(name: str) -> bool:
    """True when the named network namespace exists."""
    return netns_path(name).exists()


def _setns(fd: int) -> None:
    if _libc().setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextmanager
def entered(name: str) -> Iterator[None]:
    """Run the block with the calling thread inside network namespace ``name``."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(netns_path(name), os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(own)


def socket_in(
    name: str | None, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM, proto: int = 0
) -> socket.socket:
    """A socket that lives in namespace ``name`` (the caller's own when ``name`` is None)."""
    if name is None:
        return socket.socket(family, kind, proto)
    with entered(name):
        return socket.socket(family, kind, proto)
