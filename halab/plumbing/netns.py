"""Named network namespaces: create, remove, who lives in one, and entering one per *thread*.

``setns(CLONE_NEWNET)`` changes only the calling thread's namespace, and a socket keeps the
namespace it was created in. So the lab opens a socket "inside" a host with :func:`socket_in`
without a helper process, then uses it from anywhere. A namespace is known by its file
(``/run/netns/NAME``, as ``ip netns`` makes it); a process lives in it when its ``ns/net`` is
that same file (device and inode), which is how ``ip netns pids`` tells.
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


def create(name: str) -> None:
    """Create the named namespace as ``ip netns add`` does (pyroute2, in a helper process)."""
    from pyroute2 import netns as pr_netns

    pr_netns.create(name)


def remove(name: str) -> None:
    """Delete the named namespace as ``ip netns del`` does (a no-op when it does not exist)."""
    if exists(name):
        from pyroute2 import netns as pr_netns

        pr_netns.remove(name)


def _identity(path: str | Path) -> tuple[int, int] | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def holds(pid: int, name: str) -> bool:
    """True when process ``pid`` lives in namespace ``name`` (False when either is gone)."""
    target = _identity(netns_path(name))
    return target is not None and _identity(f"/proc/{pid}/ns/net") == target


def pids(name: str) -> list[int]:
    """Every process that lives in namespace ``name`` (what ``ip netns pids`` lists)."""
    target = _identity(netns_path(name))
    if target is None:
        return []
    return sorted(
        int(entry)
        for entry in os.listdir("/proc")
        if entry.isdigit() and _identity(f"/proc/{entry}/ns/net") == target
    )


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
