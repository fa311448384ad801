"""The real probe process against a tiny server on loopback, through both kinds of handle.

``popen`` is how a lab of VMs reaches its probe, ``pid`` how the namespace lab does (spawned,
then signalled by PID and start time only); no namespace is needed to run either here.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from halab.model.stackconfig import REPO_ROOT
from halab.plumbing import procs
from halab.target.probe import ProbeConfig
from halab.target.probe_process import (
    Launcher,
    PopenHandle,
    ProbeProcess,
    ProcessHandle,
    probe_command,
)
from tests.local_http import serving

ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


class ProbeFailedError(RuntimeError):
    """Stands for a target's own error type (LabError, VmLabError)."""


@pytest.fixture
def url() -> Iterator[str]:
    with serving() as base:
        yield f"{base}/"


def _popen(argv: Sequence[str], log: Path) -> ProcessHandle:
    return PopenHandle.start(argv, log, ENV)


def _pid(argv: Sequence[str], log: Path) -> ProcessHandle:
    pid = procs.spawn(argv, log, env=ENV)
    return procs.PidHandle(pid, procs.starttime(pid))


@pytest.fixture(params=[_popen, _pid], ids=["popen", "pid"])
def launch(request: pytest.FixtureRequest) -> Launcher:
    chosen: Launcher = request.param
    return chosen


def _start(
    url: str, workdir: Path, launch: Launcher, max_requests: int | None = None
) -> ProbeProcess:
    config = ProbeConfig(url, interval=0.02, max_requests=max_requests)
    return ProbeProcess.start(config, 60.0, workdir, launch, error=ProbeFailedError)


def test_the_command_runs_the_probe_module_with_the_configs_arguments() -> None:
    cfg = ProbeConfig("http://192.0.2.1/", max_requests=3)
    cmd = probe_command(cfg, 5.0, Path("out.jsonl"), python="py")
    assert cmd == ["py", "-m", "halab.target.probe", *cfg.argv(5.0, Path("out.jsonl"))]


def test_a_probe_that_ends_by_itself_gives_every_sample_and_leaves_no_file(
    url: str, tmp_path: Path, launch: Launcher
) -> None:
    probe = _start(url, tmp_path, launch, max_requests=5)
    assert "started" in probe.log.read_text().splitlines()
    probe.wait(10.0)
    assert not probe.handle.alive()
    samples = probe.stop()
    assert [s.seq for s in samples] == [0, 1, 2, 3, 4]
    assert all(s.ok and s.backend == "web-1" for s in samples)
    assert list(tmp_path.iterdir()) == []


def test_stop_ends_a_running_probe_at_once(url: str, tmp_path: Path, launch: Launcher) -> None:
    probe = _start(url, tmp_path, launch)
    time.sleep(0.3)
    t0 = time.monotonic()
    samples = probe.stop()
    assert time.monotonic() - t0 < 10.0  # SIGTERM ended it: neither the 60 s nor the kill
    assert len(samples) >= 5 and all(s.ok for s in samples)
    assert not probe.handle.alive()
    assert list(tmp_path.iterdir()) == []


def test_a_probe_killed_before_it_wrote_names_what_it_printed(
    url: str, tmp_path: Path, launch: Launcher
) -> None:
    probe = _start(url, tmp_path, launch)
    probe.handle.kill()  # a crash: no chance to write its samples
    with pytest.raises(ProbeFailedError, match="wrote no samples") as failure:
        probe.stop()
    assert f"PID {probe.handle.pid}" in str(failure.value)
    assert "started" in str(failure.value)  # what it had printed
    assert list(tmp_path.iterdir()) == []


def test_a_probe_deaf_to_sigterm_is_killed_within_the_bound(
    url: str, tmp_path: Path, launch: Launcher
) -> None:
    probe = _start(url, tmp_path, launch)
    os.kill(probe.handle.pid, signal.SIGSTOP)  # our own child, stopped: TERM stays pending
    t0 = time.monotonic()
    with pytest.raises(ProbeFailedError, match="killed after 1s of SIGTERM"):
        probe.stop(timeout=1.0)
    assert time.monotonic() - t0 < 8.0  # the 1 s wait, then the kill
    assert not probe.handle.alive()
    assert list(tmp_path.iterdir()) == []


def test_a_probe_that_cannot_start_is_reported_and_leaves_nothing(
    url: str, tmp_path: Path, launch: Launcher
) -> None:
    def broken(argv: Sequence[str], log: Path) -> ProcessHandle:
        return launch([*argv, "--no-such-option"], log)

    t0 = time.monotonic()
    with pytest.raises(ProbeFailedError, match="did not start, it ended") as failure:
        _start(url, tmp_path, broken)
    assert "unrecognized arguments: --no-such-option" in str(failure.value)
    assert time.monotonic() - t0 < 10.0
    assert list(tmp_path.iterdir()) == []


def test_a_silent_process_is_killed_when_the_start_wait_ends(
    url: str, tmp_path: Path, launch: Launcher
) -> None:
    started: list[ProcessHandle] = []

    def silent(argv: Sequence[str], log: Path) -> ProcessHandle:
        started.append(launch([argv[0], "-c", "import time; time.sleep(30)"], log))
        return started[0]

    config = ProbeConfig(url)
    t0 = time.monotonic()
    with pytest.raises(ProbeFailedError, match=r"was silent for 0.5s: \(no output\)"):
        ProbeProcess.start(config, 60.0, tmp_path, silent, error=ProbeFailedError, timeout=0.5)
    assert time.monotonic() - t0 < 5.0
    assert not started[0].alive()
    assert list(tmp_path.iterdir()) == []
