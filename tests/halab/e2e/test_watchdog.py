"""The operation watchdog stops only what the operation started, SIGINT first (no Pulumi)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from halab.e2e.watchdog import OperationTimeoutError, OperationWatchdog

#: A child that, like the Pulumi CLI, takes SIGINT as "stop" (Python's default) or ignores it.
SLEEPER = "import time; time.sleep(30)"
DEAF = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(30)"


def test_a_quick_operation_is_left_alone() -> None:
    with OperationWatchdog("quick", 5.0) as dog:
        subprocess.run([sys.executable, "-c", "pass"], check=True)
    assert not dog.fired
    assert dog.ended_by == ""


def test_a_hung_operation_gets_sigint_and_raises() -> None:
    expiry: list[str] = []
    t0 = time.monotonic()
    with (
        pytest.raises(OperationTimeoutError, match="did not end within 1 s; stopped by SIGINT"),
        OperationWatchdog("hung", 1.0, grace_s=10.0, on_expiry=lambda: expiry.append("x")),
    ):
        done = subprocess.run([sys.executable, "-c", SLEEPER], check=False)
        assert done.returncode != 0
    assert expiry == ["x"]
    assert time.monotonic() - t0 < 10


def test_a_child_deaf_to_sigint_is_killed_after_the_grace() -> None:
    with (
        pytest.raises(OperationTimeoutError, match="stopped by SIGKILL"),
        OperationWatchdog("deaf", 1.0, grace_s=1.0),
    ):
        done = subprocess.run([sys.executable, "-c", DEAF], check=False)
        assert done.returncode == -9


def test_a_child_started_before_the_operation_is_not_touched() -> None:
    before = subprocess.Popen([sys.executable, "-c", SLEEPER])
    try:
        with pytest.raises(OperationTimeoutError), OperationWatchdog("hung", 0.5, grace_s=5.0):
            subprocess.run([sys.executable, "-c", SLEEPER], check=False)
        assert before.poll() is None
    finally:
        before.kill()
        before.wait(5)
