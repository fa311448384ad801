"""A child process with its output in a log file: the one way the labs and the probe start one.

Kept apart from :mod:`halab.lab.procs` (how the namespace lab tracks, freezes and ends its
processes by PID and start time) because a lab of VMs starts its probe the same way.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
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
