"""A deployed lab of VMs as a drill target: the drills of :mod:`halab.drills`, unchanged.

Everything that must reach the VMs (SSH, the probe) runs in the network namespace where the
lab's bridges live (the project's own libvirtd, :mod:`halab.machine.libvirtd`), or directly when
there is none (a real hypervisor whose lab networks this machine routes to). libvirt itself is
reached through its URI from anywhere.

- probe: ``python -m halab.target.probe`` as a process in that namespace, against the public URL;
- VIP holders: one long-lived SSH session per LB prints ``ip -o -4 addr show dev dmz`` once,
  then every change of the DMZ's addresses as it happens (``ip monitor``), and a heartbeat every
  :data:`HEARTBEAT_S`; a read is a look at the last state of each (a silent LB, e.g. a destroyed
  one, stops counting after :data:`STALE_S`). Waiting for events instead of running ``ip``
  every 0.2 s matters under emulation: there that loop alone kept an LB's vCPU a fifth busy;
- faults: ``virsh destroy`` / ``virsh start`` of a domain, ``systemctl kill -s KILL`` of a unit;
- HAProxy's view: ``show servers state`` on its admin socket, through ``python3`` on the LB.

Every SSH command goes through one ControlMaster connection per host, so a command costs a
channel, not a handshake; :meth:`VmLab.close` ends the masters.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from halab.machine.libvirtd import netns_name
from halab.model.drill_settings import TargetKind
from halab.model.plan import ResolvedHost
from halab.model.roles import ROLES, Role
from halab.model.spec import LabSpec
from halab.plumbing import netns
from halab.plumbing.virsh import Virsh
from halab.target.probe import ProbeConfig
from halab.target.probe_process import PopenHandle, ProbeProcess
from halab.target.protocol import SpecDrillTarget
from halab.vmlab import usage
from halab.vmlab.parse import holds_vip, servers_state, vip_change

#: A VIP report older than this no longer counts (the LB is gone or frozen).
STALE_S = 3.0
#: How often an LB's VIP stream says it is still there when nothing changes.
HEARTBEAT_S = 1
#: The VIP stream: the state once, then changes as they happen and a heartbeat; the monitor
#: goes with the stream (a write to a closed session ends the loop).
_VIP_STREAM = (
    "ip -o -4 addr show dev dmz; echo .; "
    "ip -o -4 monitor address dev dmz & m=$!; "
    "trap 'kill $m 2>/dev/null; exit 0' PIPE HUP TERM INT; "
    f"while sleep {HEARTBEAT_S}; do echo . || break; done; kill $m"
)


def _admin_socket(command: str) -> str:
    """A shell command that sends ``command`` to HAProxy's admin socket and prints the answer
    (``python3`` is on every VM; no socat needed)."""
    script = (
        "import socket; s = socket.socket(socket.AF_UNIX); s.settimeout(3); "
        f"s.connect('/run/haproxy/admin.sock'); s.sendall(b'{command}\\n'); "
        "d = b''\n"
        "while True:\n"
        "    c = s.recv(65536)\n"
        "    if not c: break\n"
        "    d += c\n"
        "print(d.decode())"
    )
    return f"sudo python3 -c {shlex.quote(script)}"


_REPO_ROOT = Path(__file__).resolve().parent.parent.parent


class VmLabError(RuntimeError):
    """A step of the e2e run failed; the message says which and why."""


def runs_in_netns(name: str) -> bool:
    """True when this process already runs in the named network namespace."""
    return netns.holds(os.getpid(), name)


@dataclass(frozen=True)
class SshConfig:
    """How to log in to the VMs."""

    user: str
    key: Path | None
    control_dir: Path

    def args(self, address: str) -> list[str]:
        """``ssh`` with a shared master connection per host and bounded waits."""
        args = [
            "ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-o", "ConnectTimeout=5", "-o", "ServerAliveInterval=2",
            "-o", "ServerAliveCountMax=2", "-o", "ControlMaster=auto",
            "-o", f"ControlPath={self.control_dir}/%h", "-o", "ControlPersist=120",
        ]  # fmt: skip
        if self.key is not None:
            args += ["-i", str(self.key), "-o", "IdentitiesOnly=yes"]
        return [*args, f"{self.user}@{address}"]


class _VipStream:
    """One LB's VIP reports, from a long-lived SSH session, read by a thread."""

    def __init__(self, lab: VmLab, host: ResolvedHost, vip: str) -> None:
        self.name = host.name
        self.vip = vip
        self.seen_at = 0.0
        self.holding = False
        self.proc = subprocess.Popen(
            lab.ssh_argv(host, _VIP_STREAM),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.thread = threading.Thread(target=self._run, name=f"vip-{host.name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        assert self.proc.stdout is not None
        block: list[str] | None = []  # the first state, until its "."; then None: events
        for line in self.proc.stdout:
            if block is not None:
                if line.strip() == ".":
                    self.holding = holds_vip("\n".join(block), self.vip)
                    self.seen_at = time.monotonic()
                    block = None
                else:
                    block.append(line)
                continue
            change = vip_change(line, self.vip)
            if change is not None:
                self.holding = change
            self.seen_at = time.monotonic()

    def current(self) -> bool:
        """Holds the VIP, by a report younger than :data:`STALE_S`."""
        return self.holding and time.monotonic() - self.seen_at < STALE_S

    def close(self) -> None:
        """End the session (our own child process)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5.0)
        self.thread.join(2.0)


class VmLab(SpecDrillTarget):
    """The :class:`halab.target.protocol.DrillTarget` of a deployed lab of VMs."""

    KIND = TargetKind.VMS

    def __init__(
        self,
        spec: LabSpec,
        *,
        ssh_key: Path | None,
        workdir: Path,
        netns: str | None = None,
        libvirt_uri: str | None = None,
        python: str = sys.executable,
    ) -> None:
        self.spec = spec
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        control = workdir / "ssh"
        control.mkdir(mode=0o700, exist_ok=True)
        self.ssh = SshConfig(spec.vm.admin_user, ssh_key, control)
        self.netns = netns if netns and not runs_in_netns(netns) else None
        self.uri = libvirt_uri or spec.vm.libvirt_uri
        self.python = python
        self.lbs = list(spec.plan.lbs_by_priority)
        self.webs = list(spec.plan.hosts_with_role(Role.WEB))

    # --- plumbing ----------------------------------------------------------------------------

    def _ns(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv] if self.netns else argv

    def host(self, name: str) -> ResolvedHost:
        """A host of the spec by name."""
        return self.spec.plan.host(name)

    def domain(self, name: str) -> str:
        """The libvirt domain of a host (components/vm.py names it so)."""
        return f"{self.spec.lab_name}-{name}"

    def ssh_argv(self, host: ResolvedHost, command: str) -> list[str]:
        """The full command line running ``command`` on ``host``."""
        return self._ns([*self.ssh.args(str(host.management_address)), command])

    def run(self, name: str, command: str, timeout: float = 30.0) -> str:
        """Run a shell command on a host; its stdout, or :class:`VmLabError` with its stderr."""
        try:
            done = subprocess.run(
                self.ssh_argv(self.host(name), command),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise VmLabError(f"{name}: `{command}` did not finish in {timeout:.0f}s") from exc
        if done.returncode != 0:
            raise VmLabError(f"{name}: `{command}` exit {done.returncode}: {done.stderr.strip()}")
        return done.stdout

    def virsh(self, *args: str, timeout: float = 60.0) -> str:
        """``virsh -c URI ARGS``; its stdout, or :class:`VmLabError`."""
        try:
            return Virsh(self.uri)(*args, timeout=timeout)
        except subprocess.CalledProcessError as exc:
            raise VmLabError(f"virsh {' '.join(args)}: {exc.stderr.strip()}") from None

    def drop_master(self, name: str) -> None:
        """End the SSH master connection to a host (after its VM was destroyed)."""
        argv = self._ns([*self.ssh.args(str(self.host(name).management_address))[:-1]])
        target = f"{self.ssh.user}@{self.host(name).management_address}"
        subprocess.run(
            [*argv, "-O", "exit", target],
            capture_output=True,
            timeout=10,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    def close(self) -> None:
        """End every SSH master connection."""
        for h in (*self.lbs, *self.webs):
            self.drop_master(h.name)

    # --- DrillTarget (names and settings: SpecDrillTarget) -----------------------------------

    def start_probe(self, cfg: ProbeConfig, duration: float) -> ProbeProcess:
        """Start :mod:`halab.target.probe` where the lab is reachable; returns once it sends."""
        env = {**os.environ, "PYTHONPATH": str(_REPO_ROOT)}

        def launch(cmd: Sequence[str], log: Path) -> PopenHandle:
            return PopenHandle.start(self._ns(list(cmd)), log, env)

        return ProbeProcess.start(
            cfg, duration, self.workdir, launch, python=self.python, error=VmLabError
        )

    @contextlib.contextmanager
    def vip_reader(self) -> Iterator[Callable[[], list[str]]]:
        """A reader of the VIP holders; waits (10 s at most) until every LB reported once."""
        vip = str(self.spec.vip_address)
        streams = [_VipStream(self, lb, vip) for lb in self.lbs]
        try:
            deadline = time.monotonic() + 10.0
            while time.monotonic() < deadline and not all(s.seen_at for s in streams):
                time.sleep(0.02)

            def read() -> list[str]:
                return [s.name for s in streams if s.current()]

            yield read
        finally:
            for s in streams:
                s.close()

    def crash_host(self, host: str) -> float:
        """``virsh destroy``: the VM stops at once, like a power cut."""
        t = time.time()
        self.virsh("destroy", self.domain(host))
        self.drop_master(host)
        return t

    def restore_host(self, host: str, timeout: float = 300.0) -> float:
        """``virsh start``, then wait for SSH and the role's daemons; returns the start time."""
        t = time.time()
        self.drop_master(host)
        self.virsh("start", self.domain(host))
        self.wait_healthy(host, timeout)
        return t

    def wait_healthy(self, host: str, timeout: float = 300.0) -> float:
        """Until the host answers SSH and its role's units are active; the time it did."""
        names = ROLES[self.host(host).role].units
        units = " ".join(names)
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                self.run(host, f"systemctl is-active --quiet {units}", timeout=20.0)
                return time.time()
            except VmLabError as exc:
                last = str(exc)
                time.sleep(2.0)
        raise VmLabError(
            f"{host} not healthy within {timeout:.0f}s: {last}{self._why_unhealthy(host, names)}"
        )

    def _why_unhealthy(self, host: str, units: Sequence[str]) -> str:
        """Each unit's state and the end of its journal this boot, for the error: the quiet
        check above says only that one is not active."""
        states = f"systemctl is-active {' '.join(units)}"
        journal = "sudo journalctl -b --no-pager -n 30 " + " ".join(f"-u {u}" for u in units)
        try:
            # `true` last: is-active fails for an inactive unit, which is the answer wanted.
            told = self.run(
                host,
                f"{states}; {journal}; true",
                timeout=30.0,
            )
        except VmLabError as exc:
            return f"\n(and asking it why failed: {exc})"
        return f"\n{told.strip()}"

    def unit(self, host: str, name: str) -> str:
        """The systemd unit of a host's daemon (its role's definition)."""
        return ROLES[self.host(host).role].daemon(name).unit

    def kill_daemon(self, host: str, name: str) -> float:
        """SIGKILL a daemon's unit."""
        t = time.time()
        self.run(host, f"sudo systemctl kill -s KILL {shlex.quote(self.unit(host, name))}")
        return t

    def start_daemon(self, host: str, name: str) -> float:
        """Start a daemon's unit again."""
        t = time.time()
        unit = shlex.quote(self.unit(host, name))
        self.run(host, f"sudo systemctl reset-failed {unit}; sudo systemctl start {unit}")
        return t

    def backends(self, lb: str) -> dict[str, str]:
        """HAProxy's view of its servers on one LB."""
        return servers_state(self.run(lb, _admin_socket("show servers state")))

    def usage_snapshot(self) -> usage.UsageSnapshot:
        """Every VM's CPU jiffies, and each LB's ``show stat``, now (:mod:`halab.vmlab.usage`);
        a VM that does not answer (crashed) is left out."""
        snapshot = usage.UsageSnapshot(time.time())
        for host in self.spec.plan.hosts:
            command = "head -n1 /proc/stat"
            if host.role is Role.LB:
                command += f"; echo; {_admin_socket('show stat')}"
            try:
                text = self.run(host.name, command, timeout=20.0)
            except VmLabError:
                continue
            first, _, rest = text.partition("\n")
            snapshot.cpu[host.name] = usage.cpu_jiffies(first)
            if host.role is Role.LB:
                snapshot.haproxy[host.name] = usage.haproxy_stat(rest)
        return snapshot

    def wait_backends(self, timeout: float = 30.0, up: Sequence[str] | None = None) -> float:
        """Until every LB that answers sees ``up`` (default: every web node) RUNNING."""
        want = set(up if up is not None else self.web_names)
        deadline = time.monotonic() + timeout
        last: dict[str, dict[str, str]] = {}
        while time.monotonic() < deadline:
            for lb in self.lb_names:
                try:
                    last[lb] = self.backends(lb)
                except VmLabError:
                    last.pop(lb, None)
            if last and all(
                all(states.get(w) == "RUNNING" for w in want) for states in last.values()
            ):
                return time.time()
            time.sleep(0.5)
        raise VmLabError(f"backends {sorted(want)} not all UP within {timeout:.0f}s: {last}")

    def set_vrrp_partition(self, cut: bool) -> float:
        """Not on VMs (the DMZ is a libvirt bridge; the namespace lab drills this)."""
        raise NotImplementedError("the VRRP partition drill runs in the namespace lab only")

    def stall_host(self, host: str, seconds: float) -> tuple[float, float]:
        """``virsh suspend``, then ``resume``: the guest stops, nothing of it is lost."""
        t = time.time()
        start = time.monotonic()
        self.virsh("suspend", self.domain(host))
        try:
            time.sleep(seconds)
        finally:
            self.virsh("resume", self.domain(host))
        return t, time.monotonic() - start

    def set_bfd_loss(self, cut: bool) -> float:
        """Not on VMs (the DMZ is a libvirt bridge; the namespace lab drills this)."""
        raise NotImplementedError("the BFD-loss drill runs in the namespace lab only")

    @contextlib.contextmanager
    def cpu_hog(self, seconds: float) -> Iterator[None]:
        """Not on VMs: TCG guests are CPU-starved already."""
        raise NotImplementedError("the load drill runs in the namespace lab only")
        yield  # pragma: no cover


def default_netns() -> str | None:
    """The project's libvirtd namespace when it exists (where its labs are reachable)."""
    name = netns_name()
    return name if netns.exists(name) else None


def vip_holder(spec: LabSpec, ssh_key: Path | None, workdir: Path) -> str | None:
    """Who holds the VIP in the running lab of ``spec`` (asked over SSH), None if not one LB."""
    lab = VmLab(spec, ssh_key=ssh_key, workdir=workdir, netns=default_netns())
    try:
        with lab.vip_reader() as read:
            holders = read()
    finally:
        lab.close()
    return holders[0] if len(holders) == 1 else None
