"""The e2e launcher without VMs: the run's command line, and a TERM passed on to the run."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from halab.e2e import launch
from halab.machine import libvirtd


def test_run_argv_takes_the_image_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HA_WEB_LAB_E2E_REPORTS", "/tmp/r")
    monkeypatch.setenv("HA_WEB_LAB_E2E_KEEP", "1")
    argv = launch.run_argv(
        "qemu:///x", [Path("/i/disk"), Path("/i/vmlinuz"), Path("/i/initrd")], ["--skip", "drift"]
    )
    assert argv[:4] == [sys.executable, "-m", "halab", "e2e-run"]
    assert argv[4:] == [
        "--uri", "qemu:///x", "--image", "/i/disk", "--kernel", "/i/vmlinuz",
        "--initrd", "/i/initrd", "--reports", "/tmp/r", "--keep", "--skip", "drift",
    ]  # fmt: skip
    monkeypatch.delenv("HA_WEB_LAB_E2E_KEEP")
    monkeypatch.delenv("HA_WEB_LAB_E2E_REPORTS")
    plain = launch.run_argv("qemu:///x", [Path("d"), Path("k"), Path("i")], [])
    assert "--keep" not in plain
    assert plain[plain.index("--reports") + 1] == str(launch.REPO / "reports" / "e2e")


def test_the_run_argv_is_a_command_of_the_one_command_line() -> None:
    from halab.cli import build_parser

    argv = launch.run_argv("qemu:///x", [Path("d"), Path("k"), Path("i")], ["--skip", "drift"])
    args = build_parser().parse_args(argv[3:])
    assert (args.command, args.uri, args.image, args.skip) == (
        "e2e-run",
        "qemu:///x",
        "d",
        ["drift"],
    )


def test_a_term_goes_on_to_the_run_which_ends_in_its_own_time(tmp_path: Path) -> None:
    said = tmp_path / "said"
    # The child cleans up for a moment after the TERM, as the run destroys its stack.
    child = (
        "import signal, sys, time\n"
        "def bye(*_):\n"
        "    time.sleep(0.3)\n"
        f"    open({str(said)!r}, 'w').write('cleaned up')\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "print('ready', flush=True)\n"
        "time.sleep(20)\n"
        "sys.exit(7)\n"
    )
    before = signal.getsignal(signal.SIGTERM)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        rc = launch._run_forwarding_signals([sys.executable, "-c", child], dict(os.environ))
    finally:
        timer.cancel()
    assert rc == 128 + signal.SIGTERM
    assert said.read_text() == "cleaned up"
    assert signal.getsignal(signal.SIGTERM) == before  # its forwarding handler is gone again


def test_a_run_that_ends_by_itself_gives_its_status() -> None:
    argv = [sys.executable, "-c", "raise SystemExit(3)"]
    assert launch._run_forwarding_signals(argv, dict(os.environ)) == 3


def test_netns_argv_refuses_a_namespace_that_does_not_exist(tmp_path: Path) -> None:
    where = libvirtd.LibvirtdFolders.at("hwl-no-such-ns", tmp_path / "state")
    with pytest.raises(libvirtd.LibvirtdError, match="does not exist"):
        libvirtd.netns_argv(where, ["true"])
    with pytest.raises(libvirtd.LibvirtdError, match="needs a command"):
        libvirtd.netns_argv(where, [])


def test_a_run_past_its_limit_is_told_to_stop_then_killed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launch, "POLL_S", 0.05)
    monkeypatch.setattr(launch, "STOP_GRACE_S", 0.5)
    # A run that ignores TERM: told at the limit, killed after the grace.
    child = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(30)\n"
    t0 = time.monotonic()
    rc = launch._run_forwarding_signals([sys.executable, "-c", child], dict(os.environ), 0.3)
    assert rc == 128 + signal.SIGTERM
    assert time.monotonic() - t0 < 10.0


def test_the_fortigate_edge_runs_the_dev_stack_into_its_own_reports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from halab.cli import build_parser

    monkeypatch.delenv("HA_WEB_LAB_E2E_REPORTS", raising=False)
    monkeypatch.delenv("HA_WEB_LAB_E2E_KEEP", raising=False)
    argv = launch.run_argv("qemu:///x", [Path("d"), Path("k"), Path("i")], [], edge="fortigate")
    assert argv[argv.index("--reports") + 1] == str(launch.REPO / "reports" / "e2e-fortigate")
    args = build_parser().parse_args(argv[3:])
    assert (args.command, args.stack) == ("e2e-run", "dev")
    plain = build_parser().parse_args(launch.run_argv("qemu:///x", [Path("d")] * 3, [])[3:])
    assert plain.stack == "e2e"
    launcher, extra = build_parser().parse_known_args(
        ["e2e", "--edge", "fortigate", "--skip", "drill"]
    )
    assert (launcher.edge, extra) == ("fortigate", ["--skip", "drill"])
    assert build_parser().parse_args(["e2e"]).edge == "linux"
