"""From a spec to the lab's wiring: namespaces, one bridge per zone, veth legs, addresses, routes.

Every host of ``spec.plan.hosts`` becomes a namespace ``<lab>-<host>`` whose interfaces carry
the stack's own names (``dmz``, ``internal``, ``public``), MACs and addresses, so the rendered
configs (``interface dmz``, ``iifname "public"``) apply unchanged. The zones' bridges live in a
namespace of their own (``<lab>-sw``), the switch, so nothing is added to the machine's root
namespace. A client namespace on the public side plays the tutorial's client PC.

All netlink work goes through pyroute2; a veth pair is created in the switch with its peer placed
straight into the host's namespace, so no interface ever appears in the root namespace.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from typing import Any

from pyroute2 import IPRoute

from halab.model.plan import ResolvedHost
from halab.model.roles import ZoneName
from halab.model.spec import LabSpec
from halab.plumbing import netns

CLIENT = "client"
SWITCH = "sw"
#: The client's MAC: locally administered, so it never clashes with libvirt's 52:54:00 prefix.
CLIENT_MAC = "02:48:57:4c:00:01"


@dataclass(frozen=True)
class LegPlan:
    """One veth pair: ``ifname`` in the host's namespace, ``port`` on the zone's bridge."""

    zone: ZoneName
    ifname: str
    mac: str
    interface: IPv4Interface
    port: str


@dataclass(frozen=True)
class NodePlan:
    """One namespace with its legs and default route (a lab host or the client)."""

    name: str
    role: str
    netns: str
    legs: tuple[LegPlan, ...]
    default_gateway: IPv4Address | None


@dataclass(frozen=True)
class TopologyPlan:
    """The whole wiring of one lab."""

    lab_name: str
    switch: str
    bridges: dict[ZoneName, str]
    #: Addresses the switch's bridges get: the hypervisor's side of a zone, as libvirt gives it.
    bridge_addresses: dict[ZoneName, IPv4Interface]
    nodes: tuple[NodePlan, ...]

    @property
    def namespaces(self) -> tuple[str, ...]:
        """Every namespace of the lab, the switch first."""
        return (self.switch, *(n.netns for n in self.nodes))

    def node(self, name: str) -> NodePlan:
        """The plan of one host (or ``client``)."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)


def client_address(spec: LabSpec) -> IPv4Interface:
    """The client's public address: the zone's hypervisor address, as in the tutorial."""
    zone = spec.zones[ZoneName.PUBLIC]
    taken = {leg.address for h in spec.plan.hosts for leg in h.legs}
    ip = zone.host_ip
    if ip is None or ip in taken:
        # A bridged public zone has no hypervisor address: take the last free one.
        ip = next(a for a in reversed(list(zone.cidr.hosts())) if a not in taken)
    return IPv4Interface(f"{ip}/{zone.cidr.prefixlen}")


def plan(spec: LabSpec) -> TopologyPlan:
    """Compute the lab's wiring from a spec (pure; nothing is created)."""
    lab = spec.lab_name
    reserved = {CLIENT, SWITCH}
    clash = [h.name for h in spec.plan.hosts if h.name in reserved]
    if clash:
        raise ValueError(f"host name {clash[0]!r} is reserved by the local lab (client, sw)")
    nodes: list[NodePlan] = []
    for index, host in enumerate(spec.plan.hosts):
        nodes.append(_host_node(lab, index, host))
    client_ip = client_address(spec)
    edge = next((h for h in spec.plan.hosts if h.role.value == "edge"), None)
    gateway = edge.leg(ZoneName.PUBLIC).address if edge is not None else None
    nodes.append(
        NodePlan(
            name=CLIENT,
            role=CLIENT,
            netns=f"{lab}-{CLIENT}",
            legs=(
                LegPlan(ZoneName.PUBLIC, ZoneName.PUBLIC.value, CLIENT_MAC, client_ip, "cl-public"),
            ),
            default_gateway=gateway,
        )
    )
    used = {n.legs[0].interface.ip for n in nodes if n.legs}
    used |= {leg.interface.ip for n in nodes for leg in n.legs}
    bridge_addresses = {}
    for zone_name, zone in spec.zones.items():
        ip = zone.host_ip
        if ip is not None and ip not in used:
            bridge_addresses[zone_name] = IPv4Interface(f"{ip}/{zone.cidr.prefixlen}")
    return TopologyPlan(
        lab_name=lab,
        switch=f"{lab}-{SWITCH}",
        bridges={z: f"br-{z.value}"[:15] for z in ZoneName},
        bridge_addresses=bridge_addresses,
        nodes=tuple(nodes),
    )


def _host_node(lab: str, index: int, host: ResolvedHost) -> NodePlan:
    legs = tuple(
        LegPlan(
            zone=leg.zone,
            ifname=leg.ifname,
            mac=leg.mac,
            interface=leg.interface,
            port=f"h{index}-{leg.zone.value}"[:15],
        )
        for leg in host.legs
    )
    return NodePlan(
        name=host.name,
        role=host.role.value,
        netns=f"{lab}-{host.name}",
        legs=legs,
        default_gateway=host.default_gateway,
    )


def _index(ipr: Any, ifname: str) -> int:
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        raise RuntimeError(f"interface {ifname} not found")
    return int(found[0])


def create_namespace(name: str) -> None:
    """Create one named network namespace (fails if it exists: no double starts)."""
    if netns.exists(name):
        raise FileExistsError(f"network namespace {name} exists already: run `lab down` first")
    netns.create(name)


def build_switch(topo: TopologyPlan) -> None:
    """Create the zones' bridges in the switch namespace (it must exist)."""
    with IPRoute(netns=topo.switch) as sw:
        sw.link("set", index=_index(sw, "lo"), state="up")
        for zone, bridge in topo.bridges.items():
            # No STP, no forwarding delay: a port forwards the moment it is up.
            sw.link("add", ifname=bridge, kind="bridge", br_stp_state=0, br_forward_delay=0)
            index = _index(sw, bridge)
            if zone in topo.bridge_addresses:
                iface = topo.bridge_addresses[zone]
                sw.addr(
                    "add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen
                )
            sw.link("set", index=index, state="up")


def wire_node(topo: TopologyPlan, node: NodePlan) -> None:
    """Create a node's veth legs, addresses and default route (its namespace must exist)."""
    with IPRoute(netns=topo.switch) as sw:
        for leg in node.legs:
            sw.link(
                "add",
                ifname=leg.port,
                kind="veth",
                peer={"ifname": leg.ifname, "address": leg.mac, "net_ns_fd": node.netns},
            )
            port = _index(sw, leg.port)
            sw.link("set", index=port, master=_index(sw, topo.bridges[leg.zone]), state="up")
    with IPRoute(netns=node.netns) as ipr:
        ipr.link("set", index=_index(ipr, "lo"), state="up")
        for leg in node.legs:
            index = _index(ipr, leg.ifname)
            ipr.addr(
                "add",
                index=index,
                address=str(leg.interface.ip),
                prefixlen=leg.interface.network.prefixlen,
            )
            ipr.link("set", index=index, state="up")
        if node.default_gateway is not None:
            ipr.route("add", dst="0.0.0.0/0", gateway=str(node.default_gateway))


def add_address(ns: str, ifname: str, interface: IPv4Interface) -> None:
    """A second address on a node's leg (the FortiGate's own beside the public IP)."""
    with IPRoute(netns=ns) as ipr:
        ipr.addr(
            "add",
            index=_index(ipr, ifname),
            address=str(interface.ip),
            prefixlen=interface.network.prefixlen,
        )


def set_port_state(topo: TopologyPlan, node: NodePlan, up: bool) -> None:
    """Cut (or restore) every link of a node at the switch: the cable is pulled."""
    with IPRoute(netns=topo.switch) as sw:
        for leg in node.legs:
            sw.link("set", index=_index(sw, leg.port), state="up" if up else "down")


def remove_namespace(name: str) -> None:
    """Delete a named namespace; its interfaces go with it (veth peers too)."""
    netns.remove(name)
