"""The FortiGate of a stack with ``edge: fortigate``, played on the lab's own bridges.

No FortiGate exists where the e2e runs, so the project's FortiOS emulator
(``python -m halab fortigate-emulator --apply-nft``) stands in for it: in a network namespace of
its own, with one veth leg into the public zone's bridge (FortiOS ``fortigateWanInterface``,
holding ``fortigateHost`` and the public IP) and one into the DMZ's (``fortigateDmzInterface``,
holding the DMZ's gateway), forwarding on. What it forwards is what the FortiOS provider told it:
the emulator turns its VIPs and policies into one nftables table there, and nothing else.

:func:`standin_plan` says what it makes from the spec (pure); :class:`FortiGateStandIn` makes it,
in this order: the namespace and its legs with their addresses (the bridge-side ends wait,
down, in the caller's namespace), the emulator (its CA and token in the run's folder); then,
once ``pulumi up`` has made the zones' networks, :meth:`FortiGateStandIn.attach` puts the
bridge-side ends into the bridges. It runs in the project's libvirtd namespace (where the e2e
runs and the bridges live); every interface it makes is a veth pair whose inner end lives in its
own namespace, and :meth:`FortiGateStandIn.stop` removes both (the emulator by its PID).
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import time
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute

from halab.fortigate.site import EmulatorSite, listen_address
from halab.model.roles import ZoneName
from halab.model.sections import EdgeKind
from halab.model.spec import LabSpec
from halab.plumbing import netns, procs

REPO = Path(__file__).resolve().parents[2]
#: Linux's longest interface name.
IFNAME_MAX = 15
#: How long the emulator may take to listen (its CA is made at its first start).
LISTEN_TIMEOUT_S = 30.0
#: What a process of the stand-in gets after SIGTERM before SIGKILL.
STOP_TIMEOUT_S = 10.0


class StandInError(RuntimeError):
    """The stand-in cannot be made or does not behave; the message says why."""


@dataclass(frozen=True)
class StandInPort:
    """One leg: a FortiOS port, the veth pair that plays it, the bridge it joins."""

    #: The FortiOS port name (``port1``), also the interface's name inside the stand-in.
    fortios: str
    zone: ZoneName
    #: The veth end in the libvirtd's namespace, put into ``bridge`` once that exists.
    outer: str
    bridge: str
    addresses: tuple[IPv4Interface, ...]


@dataclass(frozen=True)
class StandInPlan(EmulatorSite):
    """Everything the stand-in makes, from the spec (no I/O): the emulator's site (where it
    listens, its folder of state, CA and token), its namespace and legs."""

    netns: str
    wan: StandInPort
    dmz: StandInPort
    #: What its VIPs translate to (the LBs' VIP), and how the lab's FortiOS objects' names
    #: begin (``fortigateNamePrefix`` or the lab's name, and a ``-``).
    vip: IPv4Address
    object_prefix: str

    @property
    def ports(self) -> tuple[StandInPort, StandInPort]:
        """Both legs, WAN first."""
        return (self.wan, self.dmz)


def _ifname_ok(name: str) -> bool:
    return 0 < len(name) <= IFNAME_MAX and re.fullmatch(r"[A-Za-z0-9_.-]+", name) is not None


def standin_plan(spec: LabSpec, folder: Path) -> StandInPlan:
    """The stand-in of a stack whose edge is ``fortigate``: on the WAN leg ``fortigateHost`` and
    the public IP, on the DMZ leg the DMZ's gateway; each leg joins its zone's bridge."""
    if spec.edge.kind is not EdgeKind.FORTIGATE:
        raise StandInError(f"stack {spec.stack!r}: edge is {spec.edge.kind.value!r}, not fortigate")
    settings = spec.edge.fortigate
    public, dmz = spec.zones[ZoneName.PUBLIC], spec.zones[ZoneName.DMZ]
    try:
        listen, port = listen_address(settings.host)
    except ValueError:
        raise StandInError(
            f"fortigateHost {settings.host!r}: the stand-in needs an IPv4 address of the public "
            f"zone ({public.cidr}) to listen on"
        ) from None
    taken = {public.cidr.network_address, public.cidr.broadcast_address, spec.public_address}
    if public.host_ip is not None:
        taken.add(public.host_ip)
    if listen not in public.cidr or listen in taken:
        raise StandInError(
            f"fortigateHost {listen} must be a free address of the public zone {public.cidr} "
            f"(not its network, broadcast, hypervisor address or the public IP "
            f"{spec.public_address})"
        )
    if spec.public_address not in public.cidr:
        raise StandInError(f"publicIp {spec.public_address} is not in the public zone")
    gateway = dmz.gateway_ip
    if gateway is None or dmz.host_ip is not None:
        raise StandInError(
            "the DMZ must be a pure layer-2 segment (hostAddress: null) whose gateway the "
            "FortiGate owns (zones.dmz.gateway)"
        )
    if settings.wan_interface == settings.dmz_interface:
        raise StandInError("fortigateWanInterface and fortigateDmzInterface must differ")
    for name in (settings.wan_interface, settings.dmz_interface):
        if not _ifname_ok(name):
            raise StandInError(f"FortiOS port {name!r} cannot name a Linux interface")
    # The bridge-side ends start with the lab's name, so the e2e's final check sees any left.
    stem = spec.lab_name[:8]
    wan = StandInPort(
        fortios=settings.wan_interface,
        zone=ZoneName.PUBLIC,
        outer=f"{stem}-fg{ZoneName.PUBLIC.value[:3]}",
        bridge=spec.plan.bridges[ZoneName.PUBLIC],
        addresses=(
            IPv4Interface(f"{listen}/{public.cidr.prefixlen}"),
            IPv4Interface(f"{spec.public_address}/{public.cidr.prefixlen}"),
        ),
    )
    dmz_port = StandInPort(
        fortios=settings.dmz_interface,
        zone=ZoneName.DMZ,
        outer=f"{stem}-fg{ZoneName.DMZ.value[:3]}",
        bridge=spec.plan.bridges[ZoneName.DMZ],
        addresses=(IPv4Interface(f"{gateway}/{dmz.cidr.prefixlen}"),),
    )
    return StandInPlan(
        netns=f"{spec.lab_name}-fortigate",
        wan=wan,
        dmz=dmz_port,
        listen=listen,
        port=port,
        # Each FortiOS port is the namespace's interface of the same name.
        interfaces=tuple((p.fortios, p.fortios) for p in (wan, dmz_port)),
        folder=folder,
        vip=spec.vip_address,
        object_prefix=f"{spec.plan.fortios.prefix}-",
    )


def _index(ipr: Any, ifname: str) -> int | None:
    found = ipr.link_lookup(ifname=ifname)
    return int(found[0]) if found else None


def _require(ipr: Any, ifname: str) -> int:
    index = _index(ipr, ifname)
    if index is None:
        raise StandInError(f"interface {ifname} not found")
    return index


class FortiGateStandIn:
    """The stand-in's life: :meth:`start`, :meth:`attach`, then :meth:`stop` whatever happened."""

    def __init__(self, plan: StandInPlan) -> None:
        self.plan = plan
        #: The emulator's (pid, starttime), while it runs.
        self.emulator: tuple[int, int] | None = None
        self.made_netns = False

    # --- start and attach -----------------------------------------------------------------

    def start(self) -> None:
        """The namespace, its legs (bridge-side ends down, in no bridge yet), forwarding on, and
        the emulator listening with its CA and token made. A failure undoes what it made."""
        plan = self.plan
        if netns.exists(plan.netns):
            raise StandInError(f"network namespace {plan.netns} exists already")
        with IPRoute() as ipr:
            for port in plan.ports:
                if _index(ipr, port.outer) is not None:
                    raise StandInError(f"interface {port.outer} exists already")
        try:
            netns.create(plan.netns)
            self.made_netns = True
            with IPRoute() as ipr:
                for port in plan.ports:
                    ipr.link(
                        "add",
                        ifname=port.outer,
                        kind="veth",
                        peer={"ifname": port.fortios, "net_ns_fd": plan.netns},
                    )
            with IPRoute(netns=plan.netns) as inner:
                inner.link("set", index=_require(inner, "lo"), state="up")
                for port in plan.ports:
                    index = _require(inner, port.fortios)
                    for address in port.addresses:
                        inner.addr(
                            "add",
                            index=index,
                            address=str(address.ip),
                            prefixlen=address.network.prefixlen,
                        )
                    inner.link("set", index=index, state="up")
            self._in_netns(["/usr/sbin/sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
            plan.folder.mkdir(parents=True, exist_ok=True)
            argv = procs.nsexec_argv(plan.argv(), net=plan.netns, env={"PYTHONPATH": str(REPO)})
            pid = procs.spawn(argv, plan.log_file)
            self.emulator = (pid, procs.starttime(pid))
            self._wait_listening(LISTEN_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise

    def _in_netns(self, argv: list[str], timeout: float = 10.0) -> str:
        try:
            return procs.run(procs.nsexec_argv(argv, net=self.plan.netns), timeout=timeout).stdout
        except (RuntimeError, subprocess.SubprocessError) as exc:
            raise StandInError(str(exc)) from None

    def _wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.emulator is not None and not procs.alive(*self.emulator):
                raise StandInError(f"the emulator exited at its start:\n{self.log_tail()}")
            try:
                with contextlib.closing(netns.socket_in(self.plan.netns)) as sock:
                    sock.settimeout(1.0)
                    sock.connect((str(self.plan.listen), self.plan.port))
                if self.plan.ca_file.is_file() and self.plan.token_file.is_file():
                    return
            except OSError as exc:
                last = str(exc)
            time.sleep(0.1)
        raise StandInError(
            f"the emulator did not listen on {self.plan.hostname} within {timeout:.0f} s "
            f"({last}):\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 15) -> str:
        """The end of the emulator's log."""
        try:
            text = self.plan.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def missing_bridges(self) -> list[str]:
        """The bridges the legs join that do not exist (yet)."""
        with IPRoute() as ipr:
            return [p.bridge for p in self.plan.ports if _index(ipr, p.bridge) is None]

    def attach(self) -> None:
        """Each leg's bridge-side end into its zone's bridge, up (the bridges must exist)."""
        missing = self.missing_bridges()
        if missing:
            raise StandInError(f"bridge(s) {', '.join(missing)} do not exist: no networks yet?")
        with IPRoute() as ipr:
            for port in self.plan.ports:
                ipr.link(
                    "set",
                    index=_require(ipr, port.outer),
                    master=_require(ipr, port.bridge),
                    state="up",
                )

    def reachable(self, timeout: float = 3.0) -> bool:
        """True when the emulator answers a TCP connect from here (the caller's namespace,
        through the public bridge)."""
        try:
            with socket.create_connection((str(self.plan.listen), self.plan.port), timeout):
                return True
        except OSError:
            return False

    # --- what it holds ----------------------------------------------------------------------

    def objects(self) -> dict[str, list[str]]:
        """The lab's objects in the emulator (named with the plan's prefix), per table (its
        state file; policies by name)."""
        try:
            saved = json.loads(self.plan.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        found: dict[str, list[str]] = {}
        for vdom in (saved.get("vdoms") or {}).values():
            for path, entries in vdom.items():
                names = [str(e.get("name", "")) for e in entries if isinstance(e, dict)]
                mine = sorted(n for n in names if n.startswith(self.plan.object_prefix))
                if mine:
                    found.setdefault(path, []).extend(mine)
        return found

    def ruleset(self) -> str:
        """``nft list ruleset`` in the stand-in's namespace."""
        return self._in_netns(["/usr/sbin/nft", "list", "ruleset"])

    def dnat_ports(self) -> set[int]:
        """The public ports the stand-in translates to the VIP right now."""
        return dnat_ports(self.ruleset(), self.plan.vip)

    # --- stop -------------------------------------------------------------------------------

    def stop(self) -> list[str]:
        """The emulator stopped by its PID, both veth pairs and the namespace removed; returns
        what is still there afterwards (nothing, when all went well)."""
        if self.emulator is not None:
            pid, start = self.emulator
            procs.signal_pid(pid, start, 15)
            if procs.wait_gone([(pid, start)], STOP_TIMEOUT_S):
                procs.kill_tree([(pid, start)])
            procs.reap(pid)
            self.emulator = None
        with IPRoute() as ipr:
            for port in self.plan.ports:
                index = _index(ipr, port.outer)
                if index is not None:
                    # Deleting one end of a veth pair deletes the other (in the namespace).
                    with contextlib.suppress(Exception):
                        ipr.link("del", index=index)
        if self.made_netns:
            netns.remove(self.plan.netns)
        return self.left()

    def left(self) -> list[str]:
        """What of the stand-in still exists: its namespace, a bridge-side end."""
        left = [f"netns {self.plan.netns}"] if netns.exists(self.plan.netns) else []
        with IPRoute() as ipr:
            left += [f"link {p.outer}" for p in self.plan.ports if _index(ipr, p.outer) is not None]
        return left


def dnat_ports(ruleset: str, target: IPv4Address) -> set[int]:
    """The TCP ports an nftables listing translates to ``target`` (``... tcp dport N ... dnat ip
    to TARGET``; one-to-one rules with no port are port 0)."""
    found: set[int] = set()
    for line in ruleset.splitlines():
        if not re.search(rf"dnat (ip )?to {re.escape(str(target))}(?![\d.])", line):
            continue
        port = re.search(r"tcp dport (\d+)", line)
        found.add(int(port.group(1)) if port else 0)
    return found
