"""The project's libvirtd: its folder and URI, its configs, its refusals, and one real start/stop.

The real test runs a libvirtd of its own (namespace ``hwl-libvirt-t1``, a temporary state
folder), never the default ``hwl-libvirt``, and leaves nothing behind, failed or not.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest import CaptureFixture, MonkeyPatch

from halab.cli import main
from halab.machine import libvirtd
from halab.model.stackconfig import REPO_ROOT
from halab.plumbing import netns, procs

TEST_NETNS = "hwl-libvirt-t1"


@pytest.fixture
def fake_netns_dir(tmp_path: Path, monkeypatch: MonkeyPatch) -> Path:
    """A /run/netns of the test's own: a file there is a namespace that "exists"."""
    folder = tmp_path / "netns"
    folder.mkdir()
    monkeypatch.setattr(netns, "NETNS_DIR", folder)
    return folder


def test_the_folder_and_the_uri_follow_the_state_root(
    tmp_path: Path, monkeypatch: MonkeyPatch
) -> None:
    monkeypatch.delenv("HA_WEB_LAB_LIBVIRT_NETNS", raising=False)
    monkeypatch.delenv("HA_WEB_LAB_STATE", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    p = libvirtd.folders()
    assert p.netns == "hwl-libvirt"
    assert p.base == tmp_path / ".local/state/ha-web-lab/libvirtd"
    monkeypatch.setenv("XDG_STATE_HOME", "/xdg")
    assert libvirtd.folders().base == Path("/xdg/ha-web-lab/libvirtd")
    monkeypatch.setenv("HA_WEB_LAB_STATE", "/srv/hwl")
    monkeypatch.setenv("HA_WEB_LAB_LIBVIRT_NETNS", "mine")
    p = libvirtd.folders()
    assert (p.netns, p.base) == ("mine", Path("/srv/hwl/libvirtd"))
    assert p.uri == "qemu:///system?socket=/srv/hwl/libvirtd/run/libvirt-sock"
    assert libvirtd.uri() == p.uri


def test_env_prints_export_lines_for_clients(
    monkeypatch: MonkeyPatch, capsys: CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HA_WEB_LAB_STATE", "/srv/hwl")
    monkeypatch.setenv("HA_WEB_LAB_LIBVIRT_NETNS", TEST_NETNS)
    assert main(["libvirtd", "env"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "export LIBVIRT_DEFAULT_URI='qemu:///system?socket=/srv/hwl/libvirtd/run/libvirt-sock'",
        f"export HA_WEB_LAB_LIBVIRT_NETNS='{TEST_NETNS}'",
    ]
    assert main(["libvirtd", "uri"]) == 0
    assert capsys.readouterr().out == "qemu:///system?socket=/srv/hwl/libvirtd/run/libvirt-sock\n"


def test_every_template_renders_with_the_folders_filled_in(tmp_path: Path) -> None:
    p = libvirtd.folders(tmp_path, TEST_NETNS)
    p.etc.mkdir(parents=True)
    libvirtd.write_configs(p)
    assert sorted(f.name for f in p.etc.iterdir()) == sorted(libvirtd.CONFIGS)
    texts = {name: (p.etc / name).read_text() for name in libvirtd.CONFIGS}
    assert not any("@" in text for text in texts.values())
    assert f'unix_sock_dir = "{p.run}"' in texts["libvirtd.conf"]
    assert f'log_outputs = "3:file:{p.log}/libvirtd.log"' in texts["libvirtd.conf"]
    assert f'log_outputs = "3:file:{p.log}/virtlogd.log"' in texts["virtlogd.conf"]
    assert 'security_driver = "none"' in texts["qemu.conf"]


@pytest.mark.parametrize(
    ("state", "name", "message"),
    [
        ("/tmp/a b", TEST_NETNS, "letters, digits and ._/- only"),
        ("relative/state", TEST_NETNS, "must be an absolute path"),
        ("/" + "s" * 80, TEST_NETNS, "too long for a unix socket path"),
        ("/srv/hwl", "x" * 33, "bad namespace name"),
        ("/srv/hwl", "a/b", "bad namespace name"),
    ],
)
def test_a_folder_or_name_that_would_break_the_uri_or_socket_is_refused(
    state: str, name: str, message: str
) -> None:
    with pytest.raises(libvirtd.LibvirtdError, match=message):
        libvirtd.check_paths(libvirtd.folders(Path(state), name))


def test_the_socket_path_limit_is_the_kernels() -> None:
    # sun_path has 108 bytes; the longest socket name under run/ is 20 characters or fewer.
    longest_ok = Path("/" + "s" * (87 - len("/libvirtd/run") - 1))
    p = libvirtd.folders(longest_ok, TEST_NETNS)
    assert len(str(p.run)) == 87
    libvirtd.check_paths(p)
    with pytest.raises(libvirtd.LibvirtdError, match="too long"):
        libvirtd.check_paths(libvirtd.folders(Path(f"{longest_ok}s"), TEST_NETNS))


def test_a_namespace_it_did_not_make_is_refused_and_left_alone(
    tmp_path: Path, fake_netns_dir: Path, monkeypatch: MonkeyPatch
) -> None:
    p = libvirtd.folders(tmp_path / "state", TEST_NETNS)
    (fake_netns_dir / TEST_NETNS).touch()
    monkeypatch.setattr(libvirtd, "check_packages", lambda: None)

    def no(*_: object) -> None:
        raise AssertionError("touched a namespace it did not make")

    monkeypatch.setattr(netns, "create", no)
    monkeypatch.setattr(netns, "remove", no)
    with pytest.raises(libvirtd.LibvirtdError, match="exists but was not made by"):
        libvirtd.start(p)
    assert not libvirtd.ours(p)
    assert (fake_netns_dir / TEST_NETNS).exists()
    # Its own mark (what start writes) makes it ours.
    p.netns_mark.write_text(f"{TEST_NETNS}\n")
    assert libvirtd.ours(p)
    libvirtd.check_netns_free(p)


def test_status_of_a_stopped_libvirtd_is_3_and_names_a_namespace_left(
    tmp_path: Path, fake_netns_dir: Path, capsys: CaptureFixture[str]
) -> None:
    p = libvirtd.folders(tmp_path, TEST_NETNS)
    assert libvirtd.status(p) == 3
    assert capsys.readouterr().out == "stopped\n"
    (fake_netns_dir / TEST_NETNS).touch()
    assert libvirtd.status(p) == 3
    assert f"namespace {TEST_NETNS} exists" in capsys.readouterr().out


def test_exec_needs_the_namespace_and_a_command(tmp_path: Path, fake_netns_dir: Path) -> None:
    p = libvirtd.folders(tmp_path, TEST_NETNS)
    with pytest.raises(libvirtd.LibvirtdError, match="exec needs a command"):
        libvirtd.exec_in(p, [])
    with pytest.raises(libvirtd.LibvirtdError, match=f"namespace {TEST_NETNS} does not exist"):
        libvirtd.exec_in(p, ["true"])


def test_the_daemons_step_never_mounts_in_its_callers_mount_namespace(
    tmp_path: Path, monkeypatch: MonkeyPatch
) -> None:
    ran: list[list[str]] = []
    monkeypatch.setattr(procs, "run", lambda argv, timeout=10.0: ran.append(list(argv)))
    with pytest.raises(libvirtd.LibvirtdError, match="internal"):
        libvirtd.daemons(libvirtd.folders(tmp_path, TEST_NETNS), keep_kvm=False)
    assert ran == []


def test_pid_files_and_what_a_pid_runs(tmp_path: Path, fake_netns_dir: Path) -> None:
    pidfile = tmp_path / "x.pid"
    assert libvirtd.pidfile_pid(pidfile) is None
    pidfile.write_text("")
    assert libvirtd.pidfile_pid(pidfile) is None
    pidfile.write_text("1234\n")
    assert libvirtd.pidfile_pid(pidfile) == 1234

    p = libvirtd.folders(tmp_path, TEST_NETNS)
    me = os.getpid()
    exe = Path(os.readlink("/proc/self/exe")).name
    assert libvirtd.identify(me, exe, p) == (me, procs.starttime(me))
    assert libvirtd.identify(me, "libvirtd", p) is None
    assert libvirtd.identify(None, exe, p) is None
    gone = subprocess.Popen(["true"])
    gone.wait(timeout=10)
    assert libvirtd.identify(gone.pid, "*", p) is None
    # While our namespace exists, a process outside it is not ours.
    (fake_netns_dir / TEST_NETNS).touch()
    assert libvirtd.identify(me, exe, p) is None


# --- the real thing -------------------------------------------------------------------------

NETWORK = """<network><name>hwl-t1</name><bridge name='hwlt1br'/>
<ip address='10.254.77.1' netmask='255.255.255.0'>
<dhcp><range start='10.254.77.10' end='10.254.77.20'/></dhcp></ip></network>"""


@pytest.fixture
def own_libvirtd(monkeypatch: MonkeyPatch) -> Iterator[libvirtd.LibvirtdFolders]:
    """A namespace and a state folder of the test's own (set the way a user sets them), stopped
    and removed whatever happens."""
    state = Path(tempfile.mkdtemp(prefix="hwl-t1-"))
    monkeypatch.setenv("HA_WEB_LAB_LIBVIRT_NETNS", TEST_NETNS)
    monkeypatch.setenv("HA_WEB_LAB_STATE", str(state))
    p = libvirtd.folders()
    assert (p.netns, p.base) == (TEST_NETNS, state / "libvirtd")
    try:
        yield p
    finally:
        with contextlib.suppress(libvirtd.LibvirtdError, OSError):
            libvirtd.stop(p)
        shutil.rmtree(state, ignore_errors=True)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "halab", "libvirtd", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.lab
def test_start_answers_and_stop_leaves_nothing_but_definitions(
    own_libvirtd: libvirtd.LibvirtdFolders, tmp_path: Path
) -> None:
    p = own_libvirtd
    assert libvirtd.start(p) == p.uri
    daemons = [
        libvirtd.identify(libvirtd.pidfile_pid(p.libvirtd_pid), "libvirtd", p),
        libvirtd.identify(libvirtd.pidfile_pid(p.virtlogd_pid), "virtlogd", p),
    ]
    assert None not in daemons, daemons
    assert libvirtd.ours(p)
    # Again: the same daemon, at once.
    assert libvirtd.start(p) == p.uri
    assert libvirtd.identify(libvirtd.pidfile_pid(p.libvirtd_pid), "libvirtd", p) == daemons[0]

    # A network with DHCP: a bridge and a dnsmasq in the namespace, which stop must end.
    (tmp_path / "net.xml").write_text(NETWORK)
    for args in (("net-define", str(tmp_path / "net.xml")), ("net-start", "hwl-t1")):
        done = libvirtd.virsh(p, *args)
        assert done.returncode == 0, done.stderr
    status = _cli("status")
    assert status.returncode == 0, status.stderr
    assert "domains running: 0, networks active: 1" in status.stdout
    link = _cli("exec", "ip", "-o", "link", "show", "hwlt1br")
    assert link.returncode == 0 and "hwlt1br" in link.stdout, link.stderr
    inside = {pid: procs.starttime(pid) for pid in netns.pids(p.netns)}
    assert {daemon[0] for daemon in daemons if daemon} <= set(inside)
    assert any(libvirtd.identify(pid, "dnsmasq", p) for pid in inside)

    libvirtd.stop(p)
    assert not netns.exists(p.netns)
    assert [pid for pid, start in inside.items() if procs.alive(pid, start)] == []
    assert list(p.run.iterdir()) == []
    assert not p.libvirtd_pid.exists() and not p.virtlogd_pid.exists()
    assert not p.netns_mark.exists()
    # Like a host shutdown: the network is stopped, its definition stays.
    assert (p.etc / "qemu" / "networks" / "hwl-t1.xml").is_file()
    stopped = _cli("status")
    assert (stopped.returncode, stopped.stdout) == (3, "stopped\n")


def test_the_qemu_driver_is_found_multiarch_or_not(tmp_path: Path) -> None:
    plain = tmp_path / libvirtd.QEMU_DRIVER
    assert libvirtd.qemu_driver(tmp_path) == str(plain)  # neither: the path a check reports
    multiarch = tmp_path / "x86_64-linux-gnu" / libvirtd.QEMU_DRIVER
    multiarch.parent.mkdir(parents=True)
    multiarch.touch()
    assert libvirtd.qemu_driver(tmp_path) == str(multiarch)
    plain.parent.mkdir(parents=True)
    plain.touch()
    assert libvirtd.qemu_driver(tmp_path) == str(plain)
