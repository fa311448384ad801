"""``python3 -m halab.machine.fresh --boot``: proof that ``make up``'s and ``make test``'s installs
leave nothing of theirs serving, running or enabled on a Debian machine that runs systemd.

A pristine root (mmdebstrap minbase, what a newcomer has, and a booting system: systemd,
systemd-sysv, udev, dbus, iproute2) gets a clean clone of this checkout and is booted with
``systemd-nspawn --boot --keep-unit --register=no``. Then, each step run inside it through
``nsenter`` into the namespaces of its PID 1 (with ``--register=no`` there is no machine to
address; the PID is nspawn's child in a PID namespace of its own, and ``/proc/1/comm`` there
reads ``systemd``):

1. ``systemctl is-system-running --wait`` (bounded), then a snapshot: TCP/UDP listeners
   (``ss -Hltnup``), enabled units (system and user), running units, failed units, packages,
   and the few files that matter (policy-rc.d, cloud-init's marker, libvirt's autostart link);
2. ``make bootstrap``: the set-up ``make up`` runs before it creates anything; a snapshot;
3. ``scripts/bootstrap.sh tests``: the set-up of ``make test``; a snapshot;
4. a reboot (nspawn stopped, booted again): what is enabled now runs; a snapshot, and whether
   cloud-init's generator kept it off;
5. ``make up``'s first question, ``virsh -c qemu:///system version``: libvirtd starts through
   its socket and must answer, with libvirt's ``default`` network neither active nor autostarted;
   a snapshot.

6. with ``--lab``, the lab itself on the user's kind of libvirtd: the root is booted again with a
   network namespace of its own (``--private-network``, where libvirt may make bridges and
   firewall rules without touching this machine's), and ``make up`` (the ``local`` stack),
   ``make check`` and ``make down`` run in it. ``make up`` must find libvirtd at
   ``qemu:///system`` (socket-activated, as Debian installs it) and deploy there, not start the
   project's own; after ``make down`` that libvirtd holds exactly the domains, networks, pools
   and volumes it held before, and nothing of the lab listens or runs. The Pulumi CLI and the
   VM image come from this machine's caches (built here first, with the network: the root has
   none by then), bind-mounted where the root's tools look. With ``--second-lab`` a second lab
   (``neighbour``: its own address plan, VRRP router id and names) goes up beside the first;
   both are checked, and the second's ``make down`` must leave every object of the first in
   place, and the first still serving.

Each snapshot is compared with the first: a new listener, enabled unit or running unit is
unexpected unless :data:`halab.plumbing.hostdeps.EXPECTED_UNITS` lists it (or, after step 5, it is
one of :data:`ON_DEMAND` that the question itself started). A table goes to stdout, everything as
JSON to ``reports/fresh-boot/<release>/``; the exit status is 1 on anything unexpected.

The root shares this machine's network namespace: the set-up needs the package mirrors and
PyPI, and a private network would need NAT set up on this machine. So anything that listens
in the root listens here too, which is exactly what is checked: ``ss -p`` inside sees only the
root's processes, so a new listener with an owner is the root's, one without is this
machine's (reported, never counted). nspawn gives the root no CAP_NET_ADMIN without a private
network: nothing in it can add links, addresses or firewall rules to this machine.

Cleanup, also on failure or interruption: the container is powered off (SIGTERM to nspawn),
else its PID 1 is killed (with it, every process in its PID namespace), else nspawn; the root
is removed unless a mount is left below it. Standard library only, like :mod:`halab.machine.fresh`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from halab.machine import debian
from halab.machine.freshroot import (
    INNER_HOME,
    INNER_PATH,
    INNER_REPO,
    INNER_SHARED,
    NEWCOMER_PACKAGES,
    FreshError,
    Phases,
    copy_checkout,
    keep_reports,
    minbase_argv,
    remove_root,
    take_network_settings,
)
from halab.plumbing import hostdeps, procs
from halab.plumbing.hostdeps import EXPECTED_UNITS
from halab.plumbing.roots import cache_root

REPO = Path(__file__).resolve().parents[2]
#: What makes the minimal root boot as a Debian host does: systemd as PID 1, udev (every
#: Debian host booted with systemd has it; trixie's libvirt pulls it in otherwise, and its units
#: are the machine's own), the system bus (libvirt's polkit talks over it), `ss`.
BOOT_PACKAGES = ("systemd", "systemd-sysv", "udev", "dbus", "iproute2")
#: Units that step 5 starts on purpose: libvirtd through its socket answers make up's
#: question, with its helpers; each exits when idle (libvirtd --timeout 120).
ON_DEMAND: Mapping[str, str] = {
    "libvirtd.service": "started by its socket for make up's question (exits when idle)",
    # libvirt-daemon-system-systemd depends on systemd-container for it.
    "systemd-machined.service": "libvirtd asked it over the bus (D-Bus activation, exits idle)",
}
#: Units the lab's own run may leave running at the user's libvirtd after ``make down``: each
#: is libvirt's, started through its socket for the lab, and exits (or idles) on its own.
LAB_ON_DEMAND: Mapping[str, str] = {
    **ON_DEMAND,
    "virtlogd.service": "libvirt's log daemon for the guests' consoles (socket-activated)",
    "virtlockd.service": "libvirt's lock daemon for the guests' disks (socket-activated)",
}
#: The stack ``make up`` deploys when the user names none.
LAB_STACK = "local"
#: A second lab beside it: the local stack's settings (VM sizes, VRRP and health-check timers
#: that hold on emulated guests), with an address plan, a VRRP router id and names of its own.
SECOND_STACK = "neighbour"
SECOND_LAB_CONFIG: Mapping[str, object] = {
    "ha-web-lab:edge": "linux",
    "ha-web-lab:defaultMemoryMib": 512,
    "ha-web-lab:defaultVcpus": 1,
    "ha-web-lab:vrrpVersion": 3,
    "ha-web-lab:vrrpAdvertIntervalMs": 1000,
    "ha-web-lab:vrrpRealtime": True,
    "ha-web-lab:vrrpRouterId": 55,
    "ha-web-lab:readinessTimeoutS": 900,
    "ha-web-lab:healthCheckIntervalMs": 2000,
    "ha-web-lab:healthCheckFall": 3,
    "ha-web-lab:zones": {
        "public": {"cidr": "198.51.100.0/24", "mode": "route"},
        "dmz": {
            "cidr": "10.0.2.0/24", "mode": "isolated", "hostAddress": None,
            "gateway": "10.0.2.1",
        },
        "internal": {"cidr": "192.168.20.0/24", "mode": "nat"},
    },
}  # fmt: skip
#: What libvirtd at qemu:///system holds: one line per object, ``<kind> <name>``.
INVENTORY_SCRIPT = """
v() { virsh -q -c qemu:///system "$@"; }
v list --all --name | sed '/^$/d; s/^/domain /'
v net-list --all --name | sed '/^$/d; s/^/network /'
for p in $(v pool-list --all --name); do
  echo "pool $p"
  v vol-list --pool "$p" 2>/dev/null | awk -v p="$p" 'NF {print "volume " p "/" $1}'
done
echo @@end
"""
#: Files whose presence is part of the answer.
WATCHED_FILES = (
    "/usr/sbin/policy-rc.d",
    "/etc/cloud/cloud-init.disabled",
    "/etc/libvirt/qemu/networks/autostart/default.xml",
    "/run/cloud-init/enabled",
    "/run/cloud-init/disabled",
)
#: What each watched file's appearance means: (verdict, why).
FILE_VERDICTS: Mapping[str, tuple[str, str]] = {
    "/usr/sbin/policy-rc.d": ("unexpected", "the install's temporary policy-rc.d was left"),
    "/etc/cloud/cloud-init.disabled": ("expected", "cloud-init's marker: it never runs here"),
    "/etc/libvirt/qemu/networks/autostart/default.xml": (
        "unexpected",
        "libvirt's default network would autostart (virbr0, dnsmasq on 192.168.122.1)",
    ),
    "/run/cloud-init/enabled": ("unexpected", "cloud-init's generator enabled it at boot"),
    "/run/cloud-init/disabled": ("expected", "cloud-init's generator kept it off at boot"),
}
SNAPSHOT_SCRIPT = f"""
echo @@listeners; ss -Hltnup
echo @@enabled; systemctl list-unit-files --no-legend --no-pager --state=enabled,enabled-runtime
echo @@user-enabled; systemctl --global list-unit-files --no-legend --no-pager --state=enabled
echo @@running; systemctl list-units --all --no-legend --no-pager --plain \\
  --state=active,activating,reloading --type=service,socket,timer,path
echo @@failed; systemctl list-units --all --no-legend --no-pager --plain --state=failed
echo @@packages; dpkg-query -W -f='${{Package}}\\t${{db:Status-Status}}\\n'
echo @@files
for f in {" ".join(WATCHED_FILES)}; do if [ -e "$f" ] || [ -L "$f" ]; then echo "$f"; fi; done
echo @@end
"""
#: Bounds, in seconds.
LEADER_TIMEOUT = 30.0
#: ``make up`` from a warm cache, ``make check`` and ``make down`` on emulated guests: each is
#: bounded by the lab's own gates (readinessTimeoutS) well inside this.
LAB_STEP_TIMEOUT = 3600.0
BOOT_TIMEOUT = 180.0
SETUP_TIMEOUT = 2700.0
CALL_TIMEOUT = 120.0
POWEROFF_TIMEOUT = 90.0
KILL_TIMEOUT = 15.0


# --- snapshots and their comparison (pure) ----------------------------------------------------


@dataclass
class Snapshot:
    """What a root looked like at one moment (see the module doc)."""

    #: "tcp 0.0.0.0:80" -> the processes that own it, comma-separated ("" if none is the root's).
    listeners: dict[str, str] = field(default_factory=dict)
    enabled: set[str] = field(default_factory=set)
    user_enabled: set[str] = field(default_factory=set)
    running: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    packages: set[str] = field(default_factory=set)
    files: set[str] = field(default_factory=set)

    def counts(self) -> dict[str, int]:
        """The size of each part, for the summary table."""
        return {
            "listeners": len(self.listeners),
            "listeners of the root": sum(1 for owner in self.listeners.values() if owner),
            "enabled units": len(self.enabled) + len(self.user_enabled),
            "running units": len(self.running),
            "failed units": len(self.failed),
            "packages": len(self.packages),
        }

    def as_json(self) -> dict[str, object]:
        """Sorted lists, for the report."""
        return {
            "listeners": dict(sorted(self.listeners.items())),
            **{
                name: sorted(getattr(self, name))
                for name in ("enabled", "user_enabled", "running", "failed", "files")
            },
            "packages": len(self.packages),
        }


_OWNER = re.compile(r'\("([^"]+)",pid=\d+')


def parse_listener(line: str) -> tuple[str, str] | None:
    """``("tcp 0.0.0.0:80", "nginx")`` from a line of ``ss -Hltnup``; the owner is empty when no
    process of the root holds it."""
    words = line.split()
    if len(words) < 5:
        return None
    owners = sorted(set(_OWNER.findall(line)))
    return f"{words[0]} {words[4]}", ",".join(owners)


def _first_words(lines: Iterable[str]) -> set[str]:
    """The unit names of systemctl's lines (a failed unit's line may start with a bullet)."""
    names = set()
    for line in lines:
        words = line.replace("\u25cf", " ").split()
        if words:
            names.add(words[0])
    return names


def parse_snapshot(text: str) -> Snapshot:
    """A :data:`SNAPSHOT_SCRIPT` output as a :class:`Snapshot`; a part missing is an error (the
    script was cut short)."""
    parts: dict[str, list[str]] = {}
    current: str | None = None
    for line in text.splitlines():
        if line.startswith("@@"):
            current = line[2:].strip()
            parts[current] = []
        elif current is not None and line.strip():
            parts[current].append(line.strip())
    wanted = ("listeners", "enabled", "user-enabled", "running", "failed", "packages", "files")
    if "end" not in parts or any(name not in parts for name in wanted):
        raise FreshError(f"a snapshot was cut short (parts: {', '.join(parts)})")
    snap = Snapshot()
    for line in parts["listeners"]:
        found = parse_listener(line)
        if found:
            key, owner = found
            snap.listeners[key] = owner
    snap.enabled = _first_words(parts["enabled"])
    snap.user_enabled = _first_words(parts["user-enabled"])
    snap.running = _first_words(parts["running"])
    snap.failed = _first_words(parts["failed"])
    snap.packages = {
        line.split("\t")[0] for line in parts["packages"] if line.endswith("\tinstalled")
    }
    snap.files = set(parts["files"])
    return snap


@dataclass(frozen=True)
class Finding:
    """One difference from the first snapshot (or one check), with its verdict."""

    phase: str
    kind: str
    name: str
    verdict: str  # expected | unexpected | not the root's
    why: str


def compare(
    before: Snapshot,
    after: Snapshot,
    phase: str,
    *,
    expected: Mapping[str, str] = EXPECTED_UNITS,
    on_demand: Mapping[str, str] | None = None,
) -> list[Finding]:
    """Every new listener, enabled unit, running unit, failed unit and watched file of
    ``after``, judged. ``on_demand``: running units this phase started on purpose."""
    found: list[Finding] = []
    for key in sorted(after.listeners.keys() - before.listeners.keys()):
        owner = after.listeners[key]
        if owner:
            found.append(Finding(phase, "listener", key, "unexpected", f"listened on by {owner}"))
        else:
            why = "no process of the root owns it: this machine's (the network is shared)"
            found.append(Finding(phase, "listener", key, "not the root's", why))
    for kind, new in (
        ("enabled", after.enabled - before.enabled),
        ("user-enabled", after.user_enabled - before.user_enabled),
    ):
        for unit in sorted(new):
            if unit in expected:
                found.append(Finding(phase, kind, unit, "expected", expected[unit]))
            else:
                found.append(Finding(phase, kind, unit, "unexpected", "enabled by the install"))
    allowed = {**expected, **(on_demand or {})}
    for unit in sorted(after.running - before.running):
        if unit in allowed:
            found.append(Finding(phase, "running", unit, "expected", allowed[unit]))
        else:
            found.append(Finding(phase, "running", unit, "unexpected", "runs after the install"))
    for unit in sorted(after.failed - before.failed):
        found.append(Finding(phase, "failed", unit, "unexpected", "a unit tried to start"))
    for path in sorted(after.files ^ before.files):
        verdict, why = FILE_VERDICTS.get(path, ("unexpected", "changed"))
        if path not in after.files:
            verdict, why = "unexpected", "gone"
        found.append(Finding(phase, "file", path, verdict, why))
    return found


def parse_net_list(text: str) -> dict[str, tuple[str, str]]:
    """``virsh -q net-list --all``: ``{name: (state, autostart)}``."""
    nets = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 3:
            nets[words[0]] = (words[1], words[2])
    return nets


def libvirt_findings(phase: str, answered: bool, net_list: str) -> list[Finding]:
    """The lab's libvirtd answers at qemu:///system, and no network of libvirt's own is active
    or autostarted (the lab defines its own)."""
    found = [
        Finding(
            phase, "libvirt", "qemu:///system answers",
            "expected" if answered else "unexpected",
            "make up's libvirtd, socket-activated" if answered else "no answer: over-quieted",
        )
    ]  # fmt: skip
    for name, (state, autostart) in sorted(parse_net_list(net_list).items()):
        bad = state == "active" or autostart == "yes"
        found.append(
            Finding(
                phase, "libvirt", f"network {name}", "unexpected" if bad else "expected",
                f"{state}, autostart {autostart}",
            )
        )  # fmt: skip
    return found


def parse_inventory(text: str) -> set[str]:
    """:data:`INVENTORY_SCRIPT`'s output as a set of ``"<kind> <name>"``; cut short is an error."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[-1] != "@@end":
        raise FreshError("listing libvirt's objects was cut short (virsh failed?)")
    return set(lines[:-1])


def lab_findings(before: set[str], during: set[str], after: set[str]) -> list[Finding]:
    """The lab was deployed at qemu:///system (its objects appeared there), and ``make down``
    left that libvirtd as it found it: nothing of the lab left, nothing of the user's gone."""
    phase = "make up / make down"
    made = during - before
    found = [
        Finding(
            phase, "libvirt", "the lab at qemu:///system",
            "expected" if any(o.startswith("domain ") for o in made) else "unexpected",
            f"make up made {len(made)} objects there" if made
            else "no domain of the lab at qemu:///system: make up went elsewhere",
        )
    ]  # fmt: skip
    found += [
        Finding(phase, "libvirt", obj, "unexpected", "left by make down")
        for obj in sorted(after - before)
    ]
    found += [
        Finding(phase, "libvirt", obj, "unexpected", "there before make up, gone after")
        for obj in sorted(before - after)
    ]
    return found


def neighbour_findings(first: set[str], before: set[str], now: set[str]) -> list[Finding]:
    """After the second lab's ``make down``: libvirtd holds what it held before plus the first
    lab's objects, exactly (the second's all gone, none of the first's touched)."""
    phase = "second lab's make down"
    expected = before | first
    found = [
        Finding(phase, "libvirt", obj, "unexpected", "the first lab's, gone with the second")
        for obj in sorted(expected - now)
    ]
    found += [
        Finding(phase, "libvirt", obj, "unexpected", "left by the second lab's make down")
        for obj in sorted(now - expected)
    ]
    return found or [
        Finding(phase, "libvirt", "the first lab", "expected", f"all {len(first)} objects kept")
    ]


def verdict_table(findings: Sequence[Finding]) -> str:
    """One row per finding."""
    rows = [f"{'phase':<26} {'kind':<12} {'name':<44} {'verdict':<14} why"]
    rows += [
        f"{f.phase:<26} {f.kind:<12} {f.name:<44} {f.verdict:<14} {f.why}" for f in findings
    ] or ["(no difference from the first snapshot)"]
    return "\n".join(rows)


def summary_table(snapshots: Mapping[str, Snapshot]) -> str:
    """Counts per snapshot, one column each."""
    names = list(snapshots)
    keys = list(next(iter(snapshots.values())).counts()) if snapshots else []
    width = max([len(name) for name in names] + [8]) + 2
    rows = [f"{'':<22}" + "".join(f"{name:>{width}}" for name in names)]
    for key in keys:
        rows.append(f"{key:<22}" + "".join(f"{snapshots[n].counts()[key]:>{width}}" for n in names))
    return "\n".join(rows)


# --- the container ----------------------------------------------------------------------------


def nspawn_argv(
    root: Path, binds: Sequence[tuple[Path, Path]], *, private_network: bool = False
) -> list[str]:
    """Boot ``root`` with systemd as PID 1, in this process's unit (no machined, no scope).

    ``private_network``: a network namespace of its own with only loopback, where the root gets
    CAP_NET_ADMIN, so libvirt can make the lab's bridges and rules without reaching this
    machine's; it then has no route out."""
    return [
        "systemd-nspawn", "--boot", "--keep-unit", "--register=no", "--quiet",
        "--console=read-only", "--resolv-conf=copy-host", f"--directory={root}",
        *(["--private-network"] if private_network else []),
        *(f"--bind={src}:{dst}" for src, dst in binds),
    ]  # fmt: skip


def host_has_cgroup_v1(mounts: str | None = None) -> bool:
    """Whether this machine still mounts cgroup v1 controllers (a legacy or hybrid layout)."""
    if mounts is None:
        try:
            mounts = Path("/proc/self/mounts").read_text(encoding="utf-8")
        except OSError:
            return False
    return any(line.split()[2:3] == ["cgroup"] for line in mounts.splitlines())


def nspawn_env(
    base: Mapping[str, str], *, lab: bool, cgroup_v1: bool | None = None
) -> dict[str, str]:
    """nspawn's environment. For the lab, on a machine still on cgroup v1: the root gets the
    unified hierarchy (cgroup v2), the only one a Debian 13 host has. On v1, nspawn hands the
    root its controllers read-only, and libvirt cannot make a guest's cgroup there ("Failed to
    create v1 controller cpu for group: Read-only file system"), which no user's host does."""
    env = dict(base)
    if lab and (host_has_cgroup_v1() if cgroup_v1 is None else cgroup_v1):
        env["SYSTEMD_NSPAWN_UNIFIED_HIERARCHY"] = "1"
    return env


def inner_argv(leader: int, command: Sequence[str]) -> list[str]:
    """``command`` in every namespace of the container's PID 1, with a clean environment."""
    env = ["env", "-i", f"HOME={INNER_HOME}", f"PATH={INNER_PATH}", "LANG=C.UTF-8", "TERM=dumb"]
    return ["nsenter", f"--target={leader}", "--all", *env, *command]


class Container:
    """One booted root: nspawn, the PID of its init, and how to run things in it."""

    def __init__(self, root: Path, binds: Sequence[tuple[Path, Path]], log: Path) -> None:
        self.root = root
        self.binds = list(binds)
        self.log = log
        #: Whether the next :meth:`boot` gives the root a network namespace of its own.
        self.private_network = False
        self.nspawn: subprocess.Popen[bytes] | None = None
        self.nspawn_start = 0
        self.leader = 0
        self.leader_start = 0

    def boot(self) -> None:
        """Start nspawn, find its PID 1, wait (bounded) until systemd says it is up."""
        with self.log.open("ab") as out:
            self.nspawn = subprocess.Popen(
                nspawn_argv(self.root, self.binds, private_network=self.private_network),
                env=nspawn_env(os.environ, lab=self.private_network),
                stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.nspawn_start = procs.starttime(self.nspawn.pid)
        self.leader, self.leader_start = self._find_leader()
        # Until systemd's own socket is up, systemctl cannot connect and answers at once: ask
        # again until it waited for the start-up to end, within the bound.
        deadline = time.monotonic() + BOOT_TIMEOUT
        state = ""
        while time.monotonic() < deadline and state not in ("running", "degraded"):
            left = max(1, int(deadline - time.monotonic()))
            state = self.run(
                ["timeout", str(left), "systemctl", "is-system-running", "--wait"],
                timeout=left + 30,
                check=False,
            ).strip()
            if state not in ("running", "degraded"):
                time.sleep(1)
        if state not in ("running", "degraded"):
            raise FreshError(f"systemd in the root did not come up: {state or 'no answer'}")
        # The proof that nsenter reaches the container: its /proc has systemd as PID 1.
        comm = self.run(["cat", "/proc/1/comm"], timeout=CALL_TIMEOUT).strip()
        if comm != "systemd":
            raise FreshError(f"PID 1 of the root runs {comm!r}, not systemd")
        print(f"fresh: the root is up (its PID 1, {self.leader} here, is systemd: {state})")

    def _find_leader(self) -> tuple[int, int]:
        """nspawn's child in another PID namespace: the container's PID 1."""
        assert self.nspawn is not None
        ours = os.readlink("/proc/self/ns/pid")
        deadline = time.monotonic() + LEADER_TIMEOUT
        while time.monotonic() < deadline:
            if self.nspawn.poll() is not None:
                raise FreshError(f"systemd-nspawn exited ({self.nspawn.returncode}): {self.log}")
            for pid, start in procs.direct_children(self.nspawn.pid).items():
                try:
                    # In a PID namespace of its own, and systemd already exec'd in it.
                    if (
                        os.readlink(f"/proc/{pid}/ns/pid") != ours
                        and procs.comm(pid, start) == "systemd"
                    ):
                        return pid, start
                except OSError:
                    continue
            time.sleep(0.2)
        raise FreshError(f"no container PID 1 under systemd-nspawn within {LEADER_TIMEOUT:.0f} s")

    def run(
        self,
        command: Sequence[str],
        *,
        timeout: float,
        check: bool = True,
        stream: bool = False,
    ) -> str:
        """``command`` inside the root; its stdout (``stream``: shown as it comes, not kept)."""
        argv = inner_argv(self.leader, command)
        try:
            done = subprocess.run(
                argv, stdin=subprocess.DEVNULL, timeout=timeout, check=False,
                stdout=None if stream else subprocess.PIPE, text=True,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise FreshError(f"{shlex.join(command)} took over {timeout:.0f} s") from None
        if check and done.returncode != 0:
            raise FreshError(f"{shlex.join(command)} failed (exit {done.returncode})")
        return done.stdout or ""

    def run_in_checkout(self, command: str, *, timeout: float) -> None:
        """A shell command in the root's clone of the checkout, as a user types it there, its
        output shown as it comes."""
        where = f"cd {shlex.quote(str(INNER_REPO))} && exec "
        self.run(["bash", "-c", where + command], timeout=timeout, stream=True)

    def snapshot(self) -> Snapshot:
        """A :class:`Snapshot` of the root now."""
        return parse_snapshot(self.run(["sh", "-c", SNAPSHOT_SCRIPT], timeout=CALL_TIMEOUT))

    def stop(self) -> None:
        """Power off (nspawn turns SIGTERM into the init's poweroff); else kill its PID 1,
        which ends its whole PID namespace; else nspawn. Bounded; by PID and start time."""
        if self.nspawn is None:
            return
        pid = self.nspawn.pid
        steps = [
            ((pid, self.nspawn_start), signal.SIGTERM, POWEROFF_TIMEOUT),
            ((self.leader, self.leader_start), signal.SIGKILL, KILL_TIMEOUT),
            ((pid, self.nspawn_start), signal.SIGKILL, KILL_TIMEOUT),
        ]
        for (target, start), sig, wait in steps:
            if self.nspawn.poll() is not None:
                break
            if target and procs.signal_pid(target, start, sig):
                try:
                    self.nspawn.wait(timeout=wait)
                except subprocess.TimeoutExpired:
                    print(f"fresh: PID {target} still there {wait:.0f} s after signal {sig}")
        if self.nspawn.poll() is None:
            print(f"fresh: systemd-nspawn (PID {pid}) did not end", file=sys.stderr)
        self.nspawn = None
        self.leader = 0


# --- the run ----------------------------------------------------------------------------------


def check_preconditions() -> None:
    """Root, and the tools the boot needs on this machine."""
    hostdeps.require_root("mmdebstrap's root mode and systemd-nspawn need it", FreshError)
    hostdeps.require_tools(("mmdebstrap", "systemd-nspawn", "nsenter", "git"), FreshError)


@dataclass
class Report:
    """Everything the run found, for the table and the JSON."""

    release: str
    snapshots: dict[str, Snapshot] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    error: str = ""

    @property
    def unexpected(self) -> list[Finding]:
        """What fails the run."""
        return [f for f in self.findings if f.verdict == "unexpected"]

    def write(self, folder: Path, phases: Phases) -> Path:
        """``report.json`` in ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "report.json"
        data = {
            "release": self.release,
            "ok": not self.error and not self.unexpected,
            "error": self.error,
            "expected_units": dict(EXPECTED_UNITS),
            "on_demand_units": dict(ON_DEMAND),
            "summary": {name: snap.counts() for name, snap in self.snapshots.items()},
            "findings": [asdict(f) for f in self.findings],
            "snapshots": {name: snap.as_json() for name, snap in self.snapshots.items()},
            "seconds": phases.seconds,
        }
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        return path


def steps(box: Container, report: Report, phases: Phases) -> None:
    """The steps of the module doc, each snapshot compared with the first."""
    snaps = report.snapshots
    with phases.timed("boot"):
        box.boot()
    snaps["before"] = first = box.snapshot()
    for name, phase, command in (
        ("after make up's set-up", "make bootstrap (host set)", "make bootstrap"),
        ("after make test's set-up", "bootstrap.sh tests", "scripts/bootstrap.sh tests"),
    ):
        print(f"fresh: {phase} in the booted root ...", flush=True)
        with phases.timed(phase):
            box.run_in_checkout(command, timeout=SETUP_TIMEOUT)
        snaps[name] = box.snapshot()
        report.findings += compare(first, snaps[name], name)
    with phases.timed("reboot"):
        box.stop()
        box.boot()
    snaps["after a reboot"] = box.snapshot()
    report.findings += compare(first, snaps["after a reboot"], "after a reboot")
    with phases.timed("make up's question to libvirt"):
        virsh = ["virsh", "-q", "-c", "qemu:///system"]
        answered = bool(box.run([*virsh, "version"], timeout=CALL_TIMEOUT, check=False).strip())
        nets = box.run([*virsh, "net-list", "--all"], timeout=CALL_TIMEOUT, check=False)
    name = "after libvirtd answered"
    snaps[name] = box.snapshot()
    report.findings += compare(first, snaps[name], name, on_demand=ON_DEMAND)
    report.findings += libvirt_findings(name, answered, nets)


class LabRun:
    """The lab steps' commands in the booted root, each timed and shown as it runs."""

    def __init__(self, box: Container, phases: Phases) -> None:
        self.box = box
        self.phases = phases

    def make(self, target: str, stack: str, *extra: str) -> None:
        """``make TARGET STACK=stack`` (or, with ``extra``, ``python -m halab TARGET``)."""
        if extra:
            command = shlex.join(
                ["venv/bin/python", "-m", "halab", target, "--stack", stack, *extra]
            )
        else:
            command = f"make {target} STACK={shlex.quote(stack)}"
        label = f"make {target} ({stack}{', ' + ' '.join(extra) if extra else ''})"
        print(f"fresh: {label} in the booted root ...", flush=True)
        with self.phases.timed(label):
            self.box.run_in_checkout(command, timeout=LAB_STEP_TIMEOUT)

    def inventory(self) -> set[str]:
        """What libvirtd at qemu:///system holds now."""
        return parse_inventory(self.box.run(["sh", "-c", INVENTORY_SCRIPT], timeout=CALL_TIMEOUT))


def write_second_stack(root: Path) -> None:
    """The second lab's stack file in the root's clone. JSON is YAML, and the standard library
    writes it (this module runs before the venv exists)."""
    path = root / INNER_REPO.relative_to("/") / f"Pulumi.{SECOND_STACK}.yaml"
    path.write_text(json.dumps({"config": SECOND_LAB_CONFIG}, indent=2) + "\n", encoding="utf-8")


def lab_steps(
    box: Container, report: Report, phases: Phases, reports: Path, *, second: bool = False
) -> None:
    """Step 6 of the module doc: the lab at the root's own libvirtd, in a network of its own;
    the lab's own reports (make up's picture, make check's drills) are kept in ``reports``.

    ``second``: a second lab with its own address plan beside the first, on the same libvirtd:
    both up, both checked, then the second's ``make down`` must leave the first as it was
    (its objects all there, and it still serves)."""
    snaps = report.snapshots
    with phases.timed("boot with a private network"):
        box.stop()
        box.private_network = True
        box.boot()
    snaps["before make up"] = start = box.snapshot()
    lab = LabRun(box, phases)
    before = lab.inventory()
    stacks = [LAB_STACK, *([SECOND_STACK] if second else [])]
    if second:
        write_second_stack(box.root)
    up: list[str] = []
    made: dict[str, set[str]] = {}
    try:
        for stack in stacks:
            held = lab.inventory()
            up.append(stack)
            lab.make("up", stack)
            made[stack] = lab.inventory() - held
        for stack in stacks:
            lab.make("check", stack)
        if second:
            up.remove(SECOND_STACK)
            lab.make("down", SECOND_STACK)
            report.findings += neighbour_findings(made[LAB_STACK], before, lab.inventory())
            # The first lab still serves, and its drills still pass, with the second gone.
            lab.make("check", LAB_STACK, "--steps", "round-robin", "--tag", "after-neighbour-down")
    finally:
        keep_reports(box.root / INNER_REPO.relative_to("/") / "reports", reports)
        # Whatever make up did (a failure of its is what the run reports), make down runs.
        for stack in reversed(up):
            try:
                lab.make("down", stack)
            except FreshError as exc:
                report.findings.append(
                    Finding("make down", "step", f"make down ({stack})", "unexpected", str(exc))
                )
        after = lab.inventory()
        name = "after make down"
        snaps[name] = box.snapshot()
        report.findings += compare(start, snaps[name], name, on_demand=LAB_ON_DEMAND)
        report.findings += lab_findings(before, before.union(*made.values()), after)


def prepare_lab(release: str, phases: Phases) -> list[tuple[Path, Path]]:
    """The Pulumi CLI and the VM image of ``release``, built (or found) in this machine's cache
    while there is a network; the binds that show them to the root where its tools look."""
    phases.run("the Pulumi CLI (cached)", [sys.executable, "-m", "halab.machine.engine"])
    venv_python = REPO / "venv" / "bin" / "python"
    phases.run(
        f"the {release} VM image (cached)",
        [str(venv_python), "-m", "halab", "image", "--release", release],
    )
    inner_cache = INNER_HOME / ".cache" / "ha-web-lab"
    binds = [(cache_root() / name, inner_cache / name) for name in ("engine", "image")]
    shared = (REPO.parent / "shared").resolve()
    if shared.is_dir():
        # The registry's plugins, installed from this mirror by make up (no network there).
        binds.append((shared, INNER_SHARED))
    return binds


def run(args: argparse.Namespace) -> int:
    """Build the root, boot it, run the steps, stop it, remove it; 1 on anything unexpected."""
    check_preconditions()
    phases = Phases()
    report = Report(args.release)
    work = Path(tempfile.mkdtemp(prefix="fresh-boot-", dir=args.work_dir))
    root = work / "root"
    cache = cache_root() / "fresh"
    # Downloads only, each checked by its tool: apt's .debs against the signed lists, pip's wheels.
    binds = [
        (cache / "apt-archives", Path("/var/cache/apt/archives")),
        (cache / "pip", INNER_HOME / ".cache" / "pip"),
    ]
    for source, _ in binds:
        source.mkdir(parents=True, exist_ok=True)
    box = Container(root, binds, work / "console.log")
    try:
        with procs.signals_raise():
            if args.lab:
                box.binds += prepare_lab(args.release, phases)
            phases.run(
                f"mmdebstrap (Debian {debian.RELEASES[args.release]} minbase + systemd)",
                minbase_argv(args.release, root, (*NEWCOMER_PACKAGES, *BOOT_PACKAGES)),
            )
            with phases.timed("network settings, clone"):
                take_network_settings(root)
                copy_checkout(REPO, root / INNER_REPO.relative_to("/"))
            try:
                steps(box, report, phases)
                if args.lab:
                    lab_steps(
                        box, report, phases, args.reports / args.release / "lab",
                        second=args.second_lab,
                    )  # fmt: skip
            finally:
                with phases.timed("power off"):
                    box.stop()
    except (FreshError, KeyboardInterrupt, OSError, subprocess.SubprocessError) as exc:
        report.error = str(exc) or type(exc).__name__
        print(f"fresh: {report.error}", file=sys.stderr)
    finally:
        remove_root(work, root, keep=args.keep)
    print(phases.table())
    if report.snapshots:
        print(summary_table(report.snapshots))
    print(verdict_table(report.findings))
    path = report.write(args.reports / args.release, phases)
    bad = report.unexpected
    print(f"fresh: {len(bad)} unexpected; report {path}")
    if report.error:
        print(f"fresh: the run did not finish: {report.error}", file=sys.stderr)
    return 1 if bad or report.error else 0
