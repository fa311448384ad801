"""A child process with its output in a log file: the one way the labs and the probe start one.

Kept apart from :mod:`halab.plumbing.procs` (how the namespace lab tracks, freezes and ends its
processes by PID and start time) because a lab of VMs starts its probe the same way.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path


def popen_logged(
    argv: Sequence[str],
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
    new_session: bool = False,
) -> subprocess.Popen[bytes]:
    """Start a process with stdin closed and stdout and stderr appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=new_session,
            env=dict(env) if env is not None else None,
            close_fds=True,
        )


def busy_loop_argv(seconds: float) -> list[str]:
    """A Python process that keeps one core busy and ends by itself after ``seconds``."""
    code = (
        "import time\n"
        f"end = time.monotonic() + {float(seconds)}\n"
        "while time.monotonic() < end:\n"
        "    pass\n"
    )
    return [sys.executable, "-I", "-S", "-c", code]


@contextlib.contextmanager
def busy_loops(count: int, seconds: float, log: Path) -> Iterator[None]:
    """``count`` busy loops beside the block (each ends by itself after ``seconds`` at most),
    ended by their PIDs when the block ends: a machine made slower on purpose."""
    loops = [popen_logged(busy_loop_argv(seconds), log) for _ in range(count)]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait(10.0)
