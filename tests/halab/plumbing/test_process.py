"""Child processes with a log: the busy loops that slow a machine on purpose."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from halab.plumbing.process import busy_loop_argv, busy_loops, popen_logged


def test_a_busy_loop_ends_by_itself() -> None:
    started = time.monotonic()
    done = subprocess.run(busy_loop_argv(0.2), timeout=10, check=False)
    assert done.returncode == 0 and time.monotonic() - started < 5


def test_busy_loops_run_beside_the_block_and_end_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[subprocess.Popen[bytes]] = []

    def recording(argv: Sequence[str], log: Path, **kw: Any) -> subprocess.Popen[bytes]:
        proc = popen_logged(argv, log, **kw)
        started.append(proc)
        return proc

    monkeypatch.setattr("halab.plumbing.process.popen_logged", recording)
    with busy_loops(2, 60.0, tmp_path / "hogs.log"):
        assert len(started) == 2 and all(p.poll() is None for p in started)
    # Ended by their own PIDs, long before their 60 s.
    assert all(p.returncode is not None for p in started)
