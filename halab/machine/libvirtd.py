"""The project's own libvirtd: a private root libvirtd, without systemd, in a network namespace of
its own (``python -m halab libvirtd start|stop|status|env|uri|exec CMD...``).

It owns, while it runs, the network namespace ``HA_WEB_LAB_LIBVIRT_NETNS`` (default
``hwl-libvirt``); always, its folder ``<state>/libvirtd`` (:func:`halab.plumbing.roots.state_root`):
the config files rendered there from ``halab/machine/libvirt/*.conf.in``, the definitions, pools,
logs and QEMU capability cache libvirt keeps, the pid files, a lock and the empty file that hides
``/dev/kvm``; and the processes it starts (virtlogd, libvirtd) with theirs (qemu, dnsmasq).

- ``start``: start it (idempotent), wait until it answers, print the URI;
- ``stop``: stop guests, networks and daemons; remove the namespace;
- ``status``: say whether it runs (exit 0) or not (exit 3);
- ``env``: print export lines (``LIBVIRT_DEFAULT_URI``, the namespace);
- ``uri``: print the URI;
- ``exec CMD...``: run CMD inside the namespace, where the VMs' bridges are.

Clients (virsh, Pulumi's libvirt provider) run in the root network namespace and connect with
``qemu:///system?socket=<state>/libvirtd/run/libvirt-sock``. Anything that must reach the VMs
(ssh, curl) has to run through ``exec``.

Runs as root. Debian packages (installed by ``scripts/bootstrap.sh``, not here),
``--no-install-recommends``: libvirt-daemon-system libvirt-daemon libvirt-daemon-driver-qemu
libvirt-clients qemu-system-x86 qemu-utils dnsmasq-base iptables iproute2 util-linux.
"""

# How: make a network namespace (as `ip netns add` does); in it, in a private mount namespace: a
# tmpfs on /run, and folders of ours bind-mounted over /run/libvirt, /etc/libvirt,
# /var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt (a root libvirtd reads
# /etc/libvirt/qemu.conf and keeps every definition under /etc/libvirt: no env var or flag moves
# them), and an empty file bind-mounted read-only over /dev/kvm (the real one is root-only and
# unusable here: libvirt would probe it, find it unusable and hang or re-probe QEMU on every
# call; guests run under TCG, domain type 'qemu'); then virtlogd and libvirtd with our own config
# files. The host's /etc/libvirt, /run and /dev/kvm are not touched. The folder is kept across
# stop/start (definitions, pools, logs, QEMU capability cache). `stop` is like a host shutdown:
# running guests are destroyed and active networks stopped, their definitions stay (autostart
# networks come back on the next start); it empties only its run/ folder.
#
# Nothing is ever signalled by name: only PIDs from the daemons' pid files, from the pid files
# libvirt keeps in run/, and processes inside our own namespace, each checked for what it runs
# and where, and signalled only while its start time (halab.plumbing.procs) still matches.

from __future__ import annotations

import argparse
import contextlib
import fcntl
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from halab.plumbing import hostdeps, netns, procs
from halab.plumbing.locks import flock_within
from halab.plumbing.roots import state_root
from halab.plumbing.teller import teller

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = Path(__file__).resolve().parent / "libvirt"
CONFIGS = ("libvirtd.conf", "qemu.conf", "virtlogd.conf")
DEFAULT_NETNS = "hwl-libvirt"
#: Seconds a stopping process gets after SIGTERM before SIGKILL, and after SIGKILL.
STOP_TIMEOUT = 15.0
KILL_TIMEOUT = 5.0
#: Seconds to wait for another start/stop to let go of the folder's lock.
LOCK_TIMEOUT = 120.0
#: Seconds any one virsh call may take.
VIRSH_TIMEOUT = 30.0
#: Where the daemons live, besides PATH.
SBIN = ("/usr/sbin", "/sbin")
#: The commands the daemons and this module run (their packages: scripts/apt-packages.txt).
COMMANDS = (
    "libvirtd", "virtlogd", "virsh", "qemu-system-x86_64", "qemu-img", "dnsmasq", "iptables", "ip",
    "unshare",
)  # fmt: skip
QEMU_DRIVER = "libvirt/connection-driver/libvirt_driver_qemu.so"
#: Where our folders are mounted inside the daemons' namespace (and what they must exist for).
MOUNT_POINTS = ("/etc/libvirt", "/var/lib/libvirt", "/var/cache/libvirt", "/var/log/libvirt")
#: Binaries a pid file in run/ may name: only those are ended from there.
LEFTOVER_EXES = ("qemu-system-*", "dnsmasq", "virtlogd", "libvirtd")


class LibvirtdError(RuntimeError):
    """The project's libvirtd cannot do what was asked; the message says what to do."""


#: Progress on stderr (stdout carries only what a command prints: the URI...).
say = teller("libvirtd")


def netns_name() -> str:
    """The namespace of the project's libvirtd: ``HA_WEB_LAB_LIBVIRT_NETNS``, else the default."""
    return os.environ.get("HA_WEB_LAB_LIBVIRT_NETNS") or DEFAULT_NETNS


@dataclass(frozen=True)
class LibvirtdFolders:
    """One libvirtd: its namespace, and its folder ``base`` with everything in it."""

    netns: str
    base: Path
    etc: Path  # over /etc/libvirt: the rendered configs and every definition
    run: Path  # over /run/libvirt: sockets and libvirt's pid files (emptied at stop)
    lib: Path  # over /var/lib/libvirt
    cache: Path  # over /var/cache/libvirt (QEMU's capabilities)
    log: Path  # over /var/log/libvirt; also the daemons' start-up log
    libvirtd_pid: Path
    virtlogd_pid: Path
    kvm_blocker: Path  # the empty file bind-mounted read-only over /dev/kvm
    netns_mark: Path  # names the namespace while this module owns it
    lock: Path  # held by a start or a stop

    @classmethod
    def at(cls, netns: str, base: Path) -> LibvirtdFolders:
        """The layout of the folder ``base``."""
        return cls(
            netns, base, base / "etc", base / "run", base / "lib", base / "cache", base / "log",
            base / "libvirtd.pid", base / "virtlogd.pid", base / "kvm-blocker", base / "netns",
            base / "lock",
        )  # fmt: skip

    @property
    def uri(self) -> str:
        """The URI clients in the root namespace connect with (libvirtd's read-write socket)."""
        return f"qemu:///system?socket={self.run / 'libvirt-sock'}"


def folders(state: Path | None = None, name: str | None = None) -> LibvirtdFolders:
    """The libvirtd of ``state`` (default :func:`halab.plumbing.roots.state_root`) and namespace
    ``name`` (default :func:`netns_name`)."""
    return LibvirtdFolders.at(name or netns_name(), (state or state_root()) / "libvirtd")


def start_timeout() -> float:
    """``HA_WEB_LAB_LIBVIRTD_START_TIMEOUT`` (s), default 90: for the daemons to start and for
    libvirtd to answer."""
    return float(os.environ.get("HA_WEB_LAB_LIBVIRTD_START_TIMEOUT") or 90)


def check_paths(p: LibvirtdFolders) -> None:
    """The folder and the namespace name make a usable URI, config files and socket path."""
    # The path goes into a URI and into config files: keep it plain; unix sockets have 108 bytes.
    base = str(p.base)
    if not re.fullmatch(r"/[A-Za-z0-9._/-]+", base):
        raise LibvirtdError(
            f"state folder '{base}' must be an absolute path of letters, digits and ._/- only "
            "(set HA_WEB_LAB_STATE)"
        )
    if len(str(p.run)) + 20 >= 108:
        raise LibvirtdError(
            f"state folder '{base}' is too long for a unix socket path (set HA_WEB_LAB_STATE)"
        )
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,32}", p.netns):
        raise LibvirtdError(f"bad namespace name '{p.netns}'")


def tool_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment with /usr/sbin and /sbin on PATH (where the daemons are), for this
    module's commands and the daemons, which find dnsmasq, iptables and qemu through it."""
    env = dict(os.environ if base is None else base)
    env["PATH"] = os.pathsep.join([env.get("PATH", os.defpath), *SBIN])
    return env


def _need_root() -> None:
    hostdeps.require_root("a root libvirtd with its own network namespace", LibvirtdError)


def qemu_driver(usr_lib: Path = Path("/usr/lib")) -> str:
    """libvirtd's QEMU driver: in the multiarch folder or right under ``usr_lib`` (that path when
    neither has it)."""
    plain = usr_lib / QEMU_DRIVER
    return str(next((p for p in (plain, *usr_lib.glob(f"*/{QEMU_DRIVER}")) if p.exists()), plain))


def check_packages() -> None:
    """Root, and every Debian package the daemons need, each named when missing: the commands,
    the QEMU driver, and the folders our own are mounted on."""
    _need_root()
    tools = (*COMMANDS, qemu_driver(), *MOUNT_POINTS)
    hostdeps.require_tools(tools, LibvirtdError, path=tool_env()["PATH"])


# --- processes ------------------------------------------------------------------------------


def ours(p: LibvirtdFolders) -> bool:
    """The namespace exists and this module made it (its mark in our folder names it)."""
    if not netns.exists(p.netns):
        return False
    try:
        return p.netns_mark.read_text(encoding="utf-8").rstrip("\n") == p.netns
    except OSError:
        return False


def check_netns_free(p: LibvirtdFolders) -> None:
    """Refuse a namespace of that name that this module did not make (never reuse or remove
    someone else's)."""
    if netns.exists(p.netns) and not ours(p):
        raise LibvirtdError(
            f"network namespace {p.netns} exists but was not made by halab.machine.libvirtd (state "
            f"{p.base}): remove it or set HA_WEB_LAB_LIBVIRT_NETNS"
        )


def pidfile_pid(path: Path) -> int | None:
    """The PID in a pid file (its digits), or None when there is none."""
    try:
        digits = "".join(
            c for c in path.read_text(encoding="ascii", errors="replace") if c.isdigit()
        )
    except OSError:
        return None
    return int(digits) if digits else None


def identify(pid: int | None, exe_glob: str, p: LibvirtdFolders) -> tuple[int, int] | None:
    """``(pid, starttime)`` when PID is alive (not a zombie), runs a binary whose name matches
    the glob and, while our namespace exists, lives in it; else None. Guards against killing a
    reused PID: the start time read here is what any signal is checked against."""
    if pid is None:
        return None
    start = procs.starttime(pid)
    if not procs.alive(pid, start):
        return None
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None
    exe = exe.removesuffix(" (deleted)")
    if not fnmatch.fnmatchcase(os.path.basename(exe), exe_glob):
        return None
    if netns.exists(p.netns) and not netns.holds(pid, p.netns):
        return None
    return pid, start


def running(p: LibvirtdFolders) -> bool:
    """libvirtd's pid file names a live libvirtd (in our namespace while it exists)."""
    return identify(pidfile_pid(p.libvirtd_pid), "libvirtd", p) is not None


def end(targets: Sequence[tuple[int, int]]) -> None:
    """SIGTERM, wait up to :data:`STOP_TIMEOUT` s, then SIGKILL and wait :data:`KILL_TIMEOUT` s
    more; every signal by PID and start time."""
    for pid in procs.end(targets, STOP_TIMEOUT, KILL_TIMEOUT, say):
        say(f"PID {pid} did not end")


def virsh(p: LibvirtdFolders, *args: str) -> subprocess.CompletedProcess[str]:
    """``virsh -q -c URI ARGS`` (bounded, no stdin); never raises for its exit status."""
    try:
        return subprocess.run(
            ["virsh", "-q", "-c", p.uri, *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=VIRSH_TIMEOUT,
            env=tool_env(),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(exc.cmd, 124, "", "timed out")


def answers(p: LibvirtdFolders) -> bool:
    """libvirtd answers on our socket (``virsh version``)."""
    return virsh(p, "version").returncode == 0


def _names(p: LibvirtdFolders, *listing: str) -> list[str]:
    done = virsh(p, *listing)
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]


def _tail(path: Path, lines: int) -> None:
    """The last lines of a log on stderr (nothing when there is no log)."""
    with contextlib.suppress(OSError):
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
        for line in text[-lines:]:
            print(line, file=sys.stderr)


@contextlib.contextmanager
def _locked(p: LibvirtdFolders) -> Iterator[None]:
    """One start or stop at a time per folder. Python opens files close-on-exec, so the
    daemons never inherit the lock."""
    p.base.mkdir(parents=True, exist_ok=True)
    with p.lock.open("w") as handle:
        if not flock_within(handle, LOCK_TIMEOUT):
            raise LibvirtdError(f"another start/stop holds {p.lock}")
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- start ----------------------------------------------------------------------------------


def fill_folders(template: str, p: LibvirtdFolders) -> str:
    """A config template with our folders filled in."""
    return (
        template.replace("@RUN_DIR@", str(p.run))
        .replace("@LOG_DIR@", str(p.log))
        .replace("@BASE@", str(p.base))
    )


def write_configs(p: LibvirtdFolders) -> None:
    """Render every template into etc/ (each file replaced whole, never half-written)."""
    for name in CONFIGS:
        target = p.etc / name
        tmp = target.with_name(f"{name}.tmp")
        tmp.write_text(fill_folders((TEMPLATES / f"{name}.in").read_text(encoding="utf-8"), p))
        os.replace(tmp, target)


def _make_kvm_blocker(p: LibvirtdFolders) -> None:
    # Made once and kept: libvirt re-probes QEMU (4 s) whenever the /dev/kvm it sees changes.
    blocker = p.kvm_blocker
    if blocker.is_file() and blocker.stat().st_size == 0:
        return
    with contextlib.suppress(FileNotFoundError):
        blocker.unlink()
    os.close(os.open(blocker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _lo_up(name: str) -> None:
    from pyroute2 import IPRoute

    # flags=0: never create the namespace if it went away meanwhile.
    with IPRoute(netns=name, flags=0) as ipr:
        ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")


def _daemons_argv(p: LibvirtdFolders, keep_kvm: bool) -> list[str]:
    """``ip netns exec NS unshare --mount --propagation private -- python -m halab.machine.libvirtd
    __daemons ...``: in the new mount namespace, :func:`daemons` puts our folders in place of
    libvirt's and starts both daemons there; they keep that namespace (and qemu and dnsmasq,
    their children, too) after it exits."""
    inner = [sys.executable, "-m", "halab.machine.libvirtd", "__daemons", "--base", str(p.base),
             "--netns", p.netns]  # fmt: skip
    if keep_kvm:
        inner.append("--keep-kvm")
    return ["ip", "netns", "exec", p.netns, "unshare", "--mount", "--propagation", "private",
            "--", *inner]  # fmt: skip


def _launch(p: LibvirtdFolders, keep_kvm: bool, timeout: float) -> bool:
    """Run the daemons' launcher; True when both daemons started (its output: startup.log)."""
    env = tool_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    log = p.log / "startup.log"
    with log.open("ab") as out:
        try:
            done = subprocess.run(
                _daemons_argv(p, keep_kvm),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd="/",
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False
    return done.returncode == 0


def _wait_answers(p: LibvirtdFolders, timeout: float) -> bool:
    """Until libvirtd answers, while it runs: True when it answered within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.5) + 2):
        if answers(p):
            return True
        if not running(p) or time.monotonic() >= deadline:
            return False
        time.sleep(0.5)
    return False


def start(p: LibvirtdFolders | None = None, *, kvm: bool | None = None) -> str:
    """Start the libvirtd (idempotent), wait until it answers; returns its URI.

    ``kvm``: leave ``/dev/kvm`` visible to it, for domainType kvm (default:
    ``HA_WEB_LAB_KVM=1``; ``make up`` passes what its tiny guest said, :mod:`halab.machine.kvm`).
    """
    p = p or folders()
    keep_kvm = os.environ.get("HA_WEB_LAB_KVM", "0") == "1" if kvm is None else kvm
    timeout = start_timeout()
    check_paths(p)
    check_packages()
    with _locked(p):
        if running(p):
            if answers(p):
                pid = pidfile_pid(p.libvirtd_pid)
                say(f"already running (PID {pid}, namespace {p.netns})")
                return p.uri
            say("libvirtd runs but does not answer: restarting it")
        check_netns_free(p)
        if netns.exists(p.netns) or p.libvirtd_pid.exists() or p.virtlogd_pid.exists():
            say("cleaning up what a previous run left")
            cleanup(p)
        t0 = time.monotonic()
        for folder in (p.etc, p.run, p.lib, p.cache, p.log):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        p.base.chmod(0o700)
        write_configs(p)
        _make_kvm_blocker(p)
        for pidfile in (p.libvirtd_pid, p.virtlogd_pid):
            pidfile.unlink(missing_ok=True)

        netns.create(p.netns)
        p.netns_mark.write_text(f"{p.netns}\n", encoding="utf-8")
        _lo_up(p.netns)
        if not _launch(p, keep_kvm, timeout):
            _tail(p.log / "startup.log", 5)
            cleanup(p)
            raise LibvirtdError(f"the daemons did not start (log: {p.log / 'startup.log'})")
        if not _wait_answers(p, timeout):
            _tail(p.log / "libvirtd.log", 20)
            cleanup(p)
            raise LibvirtdError(
                f"libvirtd did not answer within {timeout:.0f}s (log: {p.log / 'libvirtd.log'})"
            )
        say(
            f"started in {time.monotonic() - t0:.0f} s: libvirtd PID "
            f"{pidfile_pid(p.libvirtd_pid)}, namespace {p.netns}, state {p.base}"
        )
        return p.uri


def _mount_ns(pid: int | str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/mnt").st_ino
    except OSError:
        return None


def daemons(p: LibvirtdFolders, keep_kvm: bool) -> None:
    """Inside the launcher's private mount namespace (see :func:`_daemons_argv`): our folders
    over libvirt's, ``/dev/kvm`` hidden unless ``keep_kvm``, then virtlogd and libvirtd."""
    # Mounting a tmpfs over /run anywhere else would hide the machine's own /run: refuse unless
    # this process sits in a mount namespace of its own, not its parent's (start's).
    own = _mount_ns("self")
    if own is None or own == _mount_ns(os.getppid()):
        raise LibvirtdError("__daemons is internal: use start")
    # A tmpfs on /run, so /run/libvirt can exist only here.
    procs.run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=16m", "hwl-run", "/run"])
    for folder in ("/run/libvirt", "/run/lock"):
        os.makedirs(folder, exist_ok=True)
    for src, dst in (
        (p.run, "/run/libvirt"),
        (p.etc, "/etc/libvirt"),
        (p.lib, "/var/lib/libvirt"),
        (p.cache, "/var/cache/libvirt"),
        (p.log, "/var/log/libvirt"),
    ):
        procs.run(["mount", "--bind", str(src), dst])
    # keep_kvm (HA_WEB_LAB_KVM=1; make up sets it when a tiny guest ran on KVM,
    # halab/machine/kvm.py): leave /dev/kvm as it is, for domainType kvm. Otherwise hide it:
    if os.path.exists("/dev/kvm") and not keep_kvm:
        # Read-only, so that access(W_OK) fails even for root (EROFS): libvirt then takes KVM as
        # unusable and keeps its TCG-only QEMU capabilities cached, instead of re-probing QEMU
        # (2-4 s) on every capability lookup, i.e. on every define and start.
        procs.run(["mount", "--bind", str(p.kvm_blocker), "/dev/kvm"])
        procs.run(["mount", "-o", "remount,bind,ro", "/dev/kvm"])
    timeout = start_timeout()
    # With -d each forks into the background once it is set up, and returns.
    procs.run(
        ["virtlogd", "-d", "-f", str(p.etc / "virtlogd.conf"), "-p", str(p.virtlogd_pid)],
        timeout=timeout,
    )
    procs.run(
        ["libvirtd", "-d", "-f", str(p.etc / "libvirtd.conf"), "-p", str(p.libvirtd_pid)],
        timeout=timeout,
    )


# --- stop -----------------------------------------------------------------------------------


def _remove_links(name: str) -> None:
    """Delete every link but lo in the namespace (libvirt's bridges, taps a guest left)."""
    from pyroute2 import IPRoute, NetlinkError

    with IPRoute(netns=name, flags=0) as ipr:
        for link in list(ipr.get_links()):
            ifname = link.get_attr("IFLA_IFNAME")
            if ifname == "lo":
                continue
            try:
                ipr.link("del", index=link["index"])
            except NetlinkError:
                continue  # gone with another (a veth's peer)
            say(f"removed link {ifname}")


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")[:80]


def cleanup(p: LibvirtdFolders) -> None:
    """Everything a run made, gone; definitions kept.

    Stop guests and networks through libvirt (it removes taps, bridges, dnsmasq and firewall
    rules), then the daemons, then anything left: PIDs from the pid files libvirt keeps in run/,
    then any process still in our namespace (it is ours alone), then every link in it, then it.
    """
    if running(p) and answers(p):
        for name in _names(p, "list", "--name"):
            if virsh(p, "destroy", name).returncode != 0:
                say(f"could not destroy domain {name}")
        for name in _names(p, "net-list", "--name"):
            if virsh(p, "net-destroy", name).returncode != 0:
                say(f"could not stop network {name}")
    for pidfile, exe in ((p.libvirtd_pid, "libvirtd"), (p.virtlogd_pid, "virtlogd")):
        found = identify(pidfile_pid(pidfile), exe, p)
        if found:
            end([found])
    leftovers: dict[int, int] = {}
    for pidfile in [*p.run.glob("qemu/*.pid"), *p.run.glob("network/*.pid"), *p.run.glob("*.pid")]:
        pid = pidfile_pid(pidfile)
        for exe in LEFTOVER_EXES:
            found = identify(pid, exe, p)
            if found:
                leftovers[found[0]] = found[1]
                break
    if leftovers:
        say(f"ending leftover processes from pid files: {' '.join(map(str, leftovers))}")
        end(list(leftovers.items()))
    if ours(p):
        # Never this process (a stop run through `exec`).
        inside = [(pid, procs.starttime(pid)) for pid in netns.pids(p.netns) if pid != os.getpid()]
        inside = [(pid, start) for pid, start in inside if procs.alive(pid, start)]
        for pid, _ in inside:
            say(f"ending process left in namespace {p.netns}: {pid} {_cmdline(pid)}")
        end(inside)
        _remove_links(p.netns)
        netns.remove(p.netns)
        if netns.exists(p.netns):
            raise LibvirtdError(f"network namespace {p.netns} is still there after removing it")
    elif netns.exists(p.netns):
        say(f"left network namespace {p.netns} alone: halab.machine.libvirtd did not make it")
    for made in (p.libvirtd_pid, p.virtlogd_pid, p.netns_mark):
        made.unlink(missing_ok=True)
    if p.run.is_dir():
        for entry in p.run.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    entry.unlink()


def stop(p: LibvirtdFolders | None = None) -> None:
    """Stop guests, networks and daemons; remove the namespace (definitions stay)."""
    p = p or folders()
    check_paths(p)
    _need_root()
    if not p.base.is_dir():
        say(f"not running (no {p.base})")
        return
    with _locked(p):
        if (
            not running(p)
            and not ours(p)
            and not p.libvirtd_pid.exists()
            and not p.virtlogd_pid.exists()
        ):
            say("not running")
            return
        t0 = time.monotonic()
        cleanup(p)
        say(f"stopped in {time.monotonic() - t0:.0f} s; namespace {p.netns} removed")


def status(p: LibvirtdFolders | None = None) -> int:
    """Print whether it runs (with what it holds); 0 when it runs, 3 when not."""
    p = p or folders()
    check_paths(p)
    if running(p):
        version = virsh(p, "version", "--daemon")
        answer = next(
            (line.split()[-1] for line in version.stdout.splitlines() if "daemon" in line), ""
        )
        virtlogd = pidfile_pid(p.virtlogd_pid)
        print(
            f"running: libvirtd PID {pidfile_pid(p.libvirtd_pid)}, virtlogd PID "
            f"{'?' if virtlogd is None else virtlogd}, namespace {p.netns}"
        )
        print(f"uri: {p.uri}")
        if version.returncode == 0 and answer:
            domains = len(_names(p, "list", "--name"))
            networks = len(_names(p, "net-list", "--name"))
            print(
                f"answers: libvirt {answer}; domains running: {domains}, networks active: "
                f"{networks}"
            )
        else:
            print("answers: no")
        return 0
    print("stopped")
    if netns.exists(p.netns):
        print(f"namespace {p.netns} exists (run stop to remove it)")
    return 3


def env_lines(p: LibvirtdFolders) -> list[str]:
    """Shell lines that point clients at this libvirtd (``eval "$(... env)"``)."""
    return [
        f"export LIBVIRT_DEFAULT_URI='{p.uri}'",
        f"export HA_WEB_LAB_LIBVIRT_NETNS='{p.netns}'",
    ]


def uri(p: LibvirtdFolders | None = None) -> str:
    """The URI of the libvirtd (whether it runs or not)."""
    p = p or folders()
    check_paths(p)
    return p.uri


def netns_argv(p: LibvirtdFolders, argv: Sequence[str]) -> list[str]:
    """``argv`` run inside the namespace, where the VMs' bridges are (``ip netns exec``)."""
    if not argv:
        raise LibvirtdError("exec needs a command")
    check_paths(p)
    if not netns.exists(p.netns):
        raise LibvirtdError(
            f"namespace {p.netns} does not exist: run `python -m halab libvirtd start`"
        )
    return ["ip", "netns", "exec", p.netns, *argv]


def exec_in(p: LibvirtdFolders, argv: Sequence[str]) -> None:
    """Replace this process with ``argv`` run inside the namespace."""
    os.execvpe("ip", netns_argv(p, argv), tool_env())  # noqa: S606


# --- command line ---------------------------------------------------------------------------


def _command(args: argparse.Namespace) -> int:
    p = folders()
    try:
        if args.action == "start":
            print(start(p))
        elif args.action == "stop":
            stop(p)
        elif args.action == "status":
            return status(p)
        elif args.action == "env":
            check_paths(p)
            print("\n".join(env_lines(p)))
        elif args.action == "uri":
            print(uri(p))
        elif args.action == "exec":
            cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
            exec_in(p, cmd)
        elif args.action == "__daemons":
            daemons(LibvirtdFolders.at(args.netns, Path(args.base)), args.keep_kvm)
    except (LibvirtdError, OSError, RuntimeError, subprocess.SubprocessError) as exc:
        say(str(exc))
        return 1
    return 0


def add_actions(parser: argparse.ArgumentParser) -> None:
    """``start|stop|status|env|uri|exec CMD...`` (and the internal ``__daemons``)."""
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (
        ("start", "start it (idempotent), wait until it answers, print the URI"),
        ("stop", "stop guests, networks and daemons; remove the namespace"),
        ("status", "say whether it runs (exit 0) or not (exit 3)"),
        ("env", "print export lines (LIBVIRT_DEFAULT_URI, the namespace)"),
        ("uri", "print the URI"),
    ):
        actions.add_parser(action, help=text, description=text)
    run = actions.add_parser(
        "exec",
        help="run CMD inside the namespace, where the VMs' bridges are",
        description="run CMD inside the namespace, where the VMs' bridges are",
    )
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="the command and its arguments")
    inner = actions.add_parser("__daemons")  # start's own launcher, never for users
    inner.add_argument("--base", required=True)
    inner.add_argument("--netns", required=True)
    inner.add_argument("--keep-kvm", action="store_true")
    parser.set_defaults(func=_command)


def add_libvirtd_command(subparsers: Any) -> None:
    """``python -m halab libvirtd ...``."""
    add_actions(
        subparsers.add_parser(
            "libvirtd",
            help="the project's own libvirtd, in a network namespace of its own (root)",
            description=(
                "A private root libvirtd without systemd, in the network namespace "
                f"$HA_WEB_LAB_LIBVIRT_NETNS (default {DEFAULT_NETNS}), its folder "
                "<state>/libvirtd. Clients connect from here with its URI; anything that must "
                "reach the VMs runs through exec."
            ),
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m halab.machine.libvirtd ACTION`` (what start runs in the daemons' namespace)."""
    parser = argparse.ArgumentParser(prog="python -m halab.machine.libvirtd")
    add_actions(parser)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
