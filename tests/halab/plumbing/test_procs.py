"""Process helpers the drills use on PIDs the test started itself."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from halab.model.stackconfig import REPO_ROOT
from halab.plumbing import procs


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


def test_stall_tree_stops_a_process_for_a_while_and_lets_it_go_on() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        target = [(child.pid, procs.starttime(child.pid))]
        stopped = procs.stall_tree(target, 0.05)
        assert 0.05 <= stopped < 2.0
        assert child.poll() is None  # a stall, not a death
        assert _state(child.pid) in {"S", "R"}  # continued, not left stopped
    finally:
        child.kill()
        child.wait(timeout=10)


def test_age_of_a_process_counts_from_its_start() -> None:
    child = subprocess.Popen(["sleep", "5"])
    try:
        start = procs.starttime(child.pid)
        time.sleep(0.3)
        # Clock ticks are 10 ms: the age is the time slept, give or take one tick and the spawn.
        assert 0.25 <= procs.age_s(start) < 2.0
        assert procs.age_s(procs.starttime(os.getpid())) >= procs.age_s(start)
    finally:
        child.kill()
        child.wait()


def test_comm_is_the_name_a_process_runs_under_through_a_link(tmp_path: Path) -> None:
    """The lab gives each LB's HAProxy a name of its own by exec'ing it through a link."""
    link = tmp_path / "hap-lb-9"
    link.symlink_to("/bin/sleep")
    child = subprocess.Popen([str(link), "5"])
    try:
        start = procs.starttime(child.pid)
        assert procs.comm(child.pid, start) == "hap-lb-9"
    finally:
        child.kill()
        child.wait(timeout=10)
    assert procs.comm(child.pid, start) is None


def test_end_terms_then_kills_only_what_ignores_term() -> None:
    polite = subprocess.Popen(["sleep", "30"])
    # Ignores TERM: only the KILL after the wait ends it. It says "ready" once the handler is set.
    stubborn = subprocess.Popen(
        [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
         "signal.SIG_IGN); print('ready', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert stubborn.stdout is not None and stubborn.stdout.readline() == "ready\n"
        targets = [(p.pid, procs.starttime(p.pid)) for p in (polite, stubborn)]
        said: list[str] = []
        assert procs.end(targets, 0.5, 5.0, said.append) == []
        assert not any(procs.alive(pid, start) for pid, start in targets)
        assert said == [f"still running after 0s, sending KILL: {stubborn.pid}"]
        assert procs.end([], 0.5, 5.0) == []
    finally:
        for child in (polite, stubborn):
            child.kill()
            child.wait(timeout=10)


@pytest.mark.lab
def test_a_pid_namespace_of_its_own_is_not_the_initial_one() -> None:
    """Inside ``unshare --pid`` (as make fresh-test runs) the process sees other PIDs than the
    machine's: the lab's Keepalived gets no process events there."""
    probe = "from halab.plumbing.procs import in_initial_pid_namespace as f; print(f())"
    done = subprocess.run(
        ["unshare", "--pid", "--fork", sys.executable, "-c", probe],
        capture_output=True, text=True, timeout=30, check=True, cwd=REPO_ROOT,
    )  # fmt: skip
    assert done.stdout.strip() == "False"
