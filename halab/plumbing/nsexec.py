"""Exec a command inside a lab host's namespaces: the one launcher every lab daemon goes through.

Run as a script (``python -I -S nsexec.py [options] -- argv...``) so that it needs nothing but the
standard library and starts in milliseconds. In order it:

1. opens the network namespace file (before any bind mount can hide ``/run/netns``);
2. with ``--bind``: unshares a private mount namespace, makes every mount private (so nothing
   propagates back to the machine's own mount table) and bind-mounts the host's file tree over the
   real paths (``/etc/haproxy``, ``/opt``, ...): daemons read the rendered files where a VM has
   them;
3. enters the network namespace (``setns``), changes directory, user and environment;
4. ``exec``s the command, so the PID the lab records is the daemon's own.

Python 3.11 has no ``os.setns``/``os.unshare``: they are called through libc.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import pwd
import sys
from collections.abc import Sequence

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Options of the launcher; everything after ``--`` is the command."""
    parser = argparse.ArgumentParser(prog="nsexec")
    parser.add_argument("--net", help="network namespace file, e.g. /run/netns/hwl-dev-lb-1")
    parser.add_argument("--bind", action="append", default=[], help="SRC:DST bind mount")
    parser.add_argument("--chdir", default=None)
    parser.add_argument("--user", default=None, help="drop to this user (and its group)")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE to set")
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(list(argv))
    if args.cmd and args.cmd[0] == "--":
        args.cmd = args.cmd[1:]
    if not args.cmd:
        parser.error("no command given after --")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Enter the namespaces and exec; never returns on success."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    libc = _libc()
    net_fd = os.open(args.net, os.O_RDONLY | os.O_CLOEXEC) if args.net else None
    if args.bind:
        _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        # Private first: a bind mount made below must never propagate to the machine's mounts.
        _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
        for spec in args.bind:
            src, _, dst = spec.partition(":")
            _check(
                libc.mount(src.encode(), dst.encode(), None, MS_BIND | MS_REC, None),
                f"bind {src} -> {dst}",
            )
    if net_fd is not None:
        _check(libc.setns(net_fd, CLONE_NEWNET), f"setns {args.net}")
        os.close(net_fd)
    if args.chdir:
        os.chdir(args.chdir)
    env = dict(os.environ)
    for item in args.env:
        key, _, value = item.partition("=")
        env[key] = value
    if args.user:
        entry = pwd.getpwnam(args.user)
        os.setgroups([])
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
        env["HOME"] = entry.pw_dir
        env["USER"] = env["LOGNAME"] = args.user
    os.execvpe(args.cmd[0], args.cmd, env)  # noqa: S606 - exec is the launcher's job


if __name__ == "__main__":
    main()
