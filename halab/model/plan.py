"""The lab plan: everything derived from a validated spec, computed once.

A :class:`~halab.model.spec.LabSpec` says what one stack configures; the :class:`LabPlan` says
what follows from it: every VM with its legs (address, MAC, interface), the bridges, the VRRP
group, the edge's one firewall rule, the FortiOS object names, and every address with the device
that answers on it. Build it with :func:`plan_of`, or read it as ``spec.plan`` (cached there).

Address plan (documented in docs/architecture.md): a host address not given in
``hosts[].addresses`` is derived as ``zone network + offset + k``, where ``k`` counts the hosts of
that role, in list order, that have a leg in that zone, and the offset is the role's
(:data:`halab.model.roles.ROLES`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Literal

from halab.model.roles import ROLES, Role, ZoneName
from halab.model.sections import EdgeKind
from halab.model.spec import (
    BFD_DOWN_PRIORITY,
    FORTIGATE_VM_NAME,
    FORTIOS_PREDEFINED_SERVICES,
    Host,
    LabSpec,
    NetworkMode,
    Zone,
    leg_key,
    short_hash,
)

#: An allowed source that admits everyone: no address object, the policy says "all".
ANY_SOURCE = "0.0.0.0/0"
#: Linux allows 15 characters in an interface name: the lab's part of a bridge name, a '-' and
#: three letters of the zone.
BRIDGE_LAB_CHARS = 11


@dataclass(frozen=True)
class Leg:
    """A host's interface in one zone: everything the VM, the network-config and the lab need."""

    zone: ZoneName
    ifname: str
    mac: str
    address: IPv4Address
    network: IPv4Network

    @property
    def interface(self) -> IPv4Interface:
        """Address with prefix, as ``ip addr`` and network-config want it."""
        return IPv4Interface(f"{self.address}/{self.network.prefixlen}")


@dataclass(frozen=True)
class ResolvedHost:
    """A host with every derived value filled in."""

    name: str
    role: Role
    legs: tuple[Leg, ...]
    vcpus: int
    memory_mib: int
    default_gateway: IPv4Address | None
    dns_servers: tuple[IPv4Address, ...]
    #: Addresses allowed to SSH in: the hypervisor's address in each of the host's zones.
    ssh_sources: tuple[IPv4Address, ...]

    def leg(self, zone: ZoneName) -> Leg:
        """This host's leg in ``zone``."""
        for leg in self.legs:
            if leg.zone is zone:
                return leg
        raise KeyError(f"{self.name} has no leg in {zone}")

    @property
    def management_address(self) -> IPv4Address:
        """Where the hypervisor reaches the host over SSH (a zone where it has an address)."""
        return self.legs[-1].address if self.role is not Role.EDGE else self.legs[0].address


@dataclass(frozen=True)
class FirewallRule:
    """The edge's one inbound rule, rendered both to FortiOS objects and to nftables."""

    public_ip: IPv4Address
    ports: tuple[int, ...]
    target_vip: IPv4Address
    allowed_sources: tuple[IPv4Network, ...]
    source_nat: bool
    wan_ifname: str
    dmz_ifname: str


@dataclass(frozen=True)
class VrrpMember:
    """One LB's view of the VRRP group: its address, its peers', its priority and initial state.

    A group is two or more LBs (``hosts`` with role ``lb``); every member sends its adverts to
    each peer (unicast), and its firewall lets VRRP (and BFD) in from those peers only.
    """

    host: str
    state: Literal["MASTER", "BACKUP"]
    priority: int
    src_ip: IPv4Address
    #: The other members' DMZ addresses, in config order.
    peers: tuple[IPv4Address, ...]
    nopreempt: bool
    #: How far each BFD session that is down raises the priority (fast detection). Every member
    #: has one session per peer and the same weight, and a hard failure takes down the same
    #: sessions on every survivor, so the survivors are lifted alike and their order never
    #: changes. Lifting each to 254 made equal priorities whenever BFD was down on both sides
    #: (a stalled master, BFD lost, BFD's ~1 s restart): the backup's timer then ran out on any
    #: late advert and the pair flapped until BFD was up again (the lab, 2026-12-04: three VIP
    #: moves in 0.25 s). With every session down the preferred master reaches
    #: :data:`BFD_DOWN_PRIORITY`, never more.
    bfd_weight: int

    @property
    def bfd_lift(self) -> int:
        """The lift with every peer's BFD session down."""
        return self.bfd_weight * len(self.peers)


@dataclass(frozen=True)
class AddressClaim:
    """One address of the plan: where it is configured and which device answers on it."""

    address: IPv4Address
    key: str
    device: str
    #: The value as configured, when it is more than the address (``fortigateHost`` with a port).
    given: str = ""


@dataclass(frozen=True)
class FortiOSNames:
    """The name of every FortiOS object the FortiGate edge creates. Each starts with the lab's
    prefix, so two labs can share one FortiGate."""

    #: ``fortigateNamePrefix``, or the lab name when it is empty.
    prefix: str
    ports: tuple[int, ...]
    #: The allowed source networks that need an address object (all but ``0.0.0.0/0``).
    sources: tuple[str, ...]

    def vip(self, port: int) -> str:
        """The VIP that forwards one port of the public IP."""
        return f"{self.prefix}-{port}"

    @property
    def vip_group(self) -> str:
        """The group of every VIP, which the policy names."""
        return f"{self.prefix}-vips"

    @property
    def policy(self) -> str:
        """The one inbound policy."""
        return f"{self.prefix}-inbound"

    def service(self, port: int) -> str:
        """The custom service of a port that has no predefined one."""
        return f"{self.prefix}-tcp-{port}"

    def address(self, network: str) -> str:
        """The address object of one allowed source network."""
        return f"{self.prefix}-src-{network.replace('/', '_')}"

    @property
    def objects(self) -> tuple[tuple[str, str], ...]:
        """(FortiOS object kind, name) of every named object, as FortiOS limits their names."""
        return (
            *(("vip", self.vip(port)) for port in self.ports),
            ("vip group", self.vip_group),
            ("policy", self.policy),
            *(
                ("service", self.service(p))
                for p in self.ports
                if p not in FORTIOS_PREDEFINED_SERVICES
            ),
            *(("address", self.address(n)) for n in self.sources),
        )


@dataclass(frozen=True)
class LabPlan:
    """What one validated spec makes: every VM, bridge, VRRP member, name and address."""

    #: Every VM of the lab (lb, web, then the linux edge) with all values derived.
    hosts: tuple[ResolvedHost, ...]
    #: ``edge: fortigate-vm``: the FortiGate-VM, planned like the linux edge (its legs, MACs and
    #: gateway), but not a Linux host: nothing of the renderer's cloud-init is for it.
    fortigate: ResolvedHost | None
    #: Each zone's Linux bridge name (at most 15 characters): ``zones.*.bridge``, else derived
    #: from the lab name.
    bridges: Mapping[ZoneName, str]
    #: Every LB's VRRP settings, in config order.
    vrrp_members: tuple[VrrpMember, ...]
    #: The LB hosts, the preferred master (highest VRRP priority) first.
    lbs_by_priority: tuple[ResolvedHost, ...]
    #: The edge's inbound rule: public IP:ports -> VIP, from the allowed sources only.
    firewall_rule: FirewallRule
    #: The names of the FortiGate edge's objects.
    fortios: FortiOSNames
    #: Every address, with the config key it comes from and the device that answers on it, in
    #: the order they are checked (the later of two clashing keys is named).
    address_claims: tuple[AddressClaim, ...]
    #: Directory of the lab's libvirt storage pool.
    pool_path: str
    #: What the public URL speaks.
    scheme: str
    #: Where a client reaches the lab.
    public_url: str

    @property
    def machines(self) -> tuple[ResolvedHost, ...]:
        """Every VM of the lab, the FortiGate-VM included (each MAC and bridge port is one's)."""
        return (*self.hosts, *((self.fortigate,) if self.fortigate is not None else ()))

    def host(self, name: str) -> ResolvedHost:
        """A resolved host by name."""
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def hosts_with_role(self, role: Role) -> tuple[ResolvedHost, ...]:
        """Resolved hosts of one role, in config order."""
        return tuple(h for h in self.hosts if h.role is role)

    def vrrp_member(self, host: str) -> VrrpMember:
        """One LB's VRRP settings."""
        for member in self.vrrp_members:
            if member.host == host:
                return member
        raise KeyError(f"{host} is not an lb host")


def plan_of(spec: LabSpec) -> LabPlan:
    """Derive the plan of a spec whose input checks passed (``spec.plan`` keeps it).

    The checks that need the plan (each address one device's, each bridge and MAC one
    interface's) are the spec's; they run on what this returns.
    """
    hosts = _resolve_hosts(spec)
    fortigate = _fortigate_vm(spec)
    members = _vrrp_members(spec, hosts)
    priority = {m.host: m.priority for m in members}
    lbs = tuple(h for h in hosts if h.role is Role.LB)
    scheme = "https" if 443 in spec.edge.ports else "http"
    target = spec.public_address if spec.edge.kind is not EdgeKind.NONE else spec.vip_address
    return LabPlan(
        hosts=hosts,
        fortigate=fortigate,
        bridges={zone: _bridge_name(spec, zone) for zone in spec.zones},
        vrrp_members=members,
        lbs_by_priority=tuple(sorted(lbs, key=lambda h: -priority[h.name])),
        firewall_rule=FirewallRule(
            public_ip=spec.public_address,
            ports=spec.edge.ports,
            target_vip=spec.vip_address,
            allowed_sources=spec.edge.allowed_sources,
            source_nat=spec.edge.source_nat,
            wan_ifname=ZoneName.PUBLIC.value,
            dmz_ifname=ZoneName.DMZ.value,
        ),
        fortios=FortiOSNames(
            prefix=spec.edge.fortigate.name_prefix or spec.lab_name,
            ports=spec.edge.ports,
            sources=tuple(str(n) for n in spec.edge.allowed_sources if str(n) != ANY_SOURCE),
        ),
        address_claims=_address_claims(spec, hosts, fortigate),
        pool_path=spec.vm.storage_pool_path or f"/var/lib/libvirt/images/{spec.lab_name}",
        scheme=scheme,
        public_url=f"{scheme}://{target}/",
    )


def mac_for(lab_name: str, host: str, zone: ZoneName) -> str:
    """Pinned MAC: stable across runs, so network-config can match on it (libvirt's OUI)."""
    digest = hashlib.sha256(f"{lab_name}/{host}/{zone.value}".encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])


def _bridge_name(spec: LabSpec, zone: ZoneName) -> str:
    configured = spec.zones[zone].bridge
    if configured:
        return configured
    lab = spec.lab_name
    if len(lab) > BRIDGE_LAB_CHARS:
        # Cut, two labs could share a prefix (staging2, staging3): the hash tells them apart.
        cut = short_hash(lab)
        lab = lab[: BRIDGE_LAB_CHARS - len(cut)] + cut
    return f"{lab}-{zone.value[:3]}"


def _resolve_hosts(spec: LabSpec) -> tuple[ResolvedHost, ...]:
    plan: list[tuple[str, Role, Host | None]] = [(h.name, h.role, h) for h in spec.hosts]
    if spec.edge.kind is EdgeKind.LINUX:
        plan.append(("edge", Role.EDGE, None))
    counters: dict[tuple[Role, ZoneName], int] = {}
    return tuple(_resolve(spec, name, role, host, counters) for name, role, host in plan)


def _fortigate_vm(spec: LabSpec) -> ResolvedHost | None:
    """The FortiGate-VM as the linux edge is planned (the edge role's legs: Public, then DMZ;
    the DMZ gateway; the Public zone's gateway as its default route), with its own WAN address
    and size. Its interfaces are FortiOS's ports (``fortigateWanInterface``...), in leg order."""
    if spec.edge.kind is not EdgeKind.FORTIGATE_VM:
        return None
    fortigate = spec.edge.fortigate
    host = _resolve(spec, FORTIGATE_VM_NAME, Role.EDGE, None, {}, wan=spec.fortigate_wan_address)
    ports = {ZoneName.PUBLIC: fortigate.wan_interface, ZoneName.DMZ: fortigate.dmz_interface}
    return replace(
        host,
        legs=tuple(replace(leg, ifname=ports[leg.zone]) for leg in host.legs),
        vcpus=fortigate.vcpus,
        memory_mib=fortigate.memory_mib,
        dns_servers=(),
    )


def _resolve(
    spec: LabSpec,
    name: str,
    role: Role,
    host: Host | None,
    counters: dict[tuple[Role, ZoneName], int],
    *,
    wan: IPv4Address | None = None,
) -> ResolvedHost:
    """One host with its legs; ``wan``: an edge's Public address, when not the public IP."""
    legs = tuple(
        Leg(
            zone=zone_name,
            ifname=zone_name.value,
            mac=mac_for(spec.lab_name, name, zone_name),
            address=(
                wan
                if wan is not None and zone_name is ZoneName.PUBLIC
                else _leg_address(spec, role, zone_name, host, counters)
            ),
            network=spec.zones[zone_name].cidr,
        )
        for zone_name in ROLES[role].legs
    )
    gateway = spec.zones[ROLES[role].legs[0]].gateway_ip
    if role is Role.EDGE:
        gateway = spec.zones[ZoneName.PUBLIC].gateway_ip
    # libvirt's dnsmasq answers on-link on its own bridges, so no route is needed for DNS.
    dns = tuple(
        ip
        for z in ROLES[role].legs[:2]
        if _provides_dns(spec.zones[z]) and (ip := spec.zones[z].host_ip) is not None
    )[:1]
    ssh_sources = tuple(
        ip
        for z in ROLES[role].legs
        if (ip := spec.zones[z].host_ip) is not None
        and not (role is Role.EDGE and z is ZoneName.DMZ)
    )
    return ResolvedHost(
        name=name,
        role=role,
        legs=legs,
        vcpus=(host.vcpus if host and host.vcpus else spec.vm.default_vcpus),
        memory_mib=(host.memory_mib if host and host.memory_mib else spec.vm.default_memory_mib),
        default_gateway=gateway,
        dns_servers=dns,
        ssh_sources=ssh_sources,
    )


def _leg_address(
    spec: LabSpec,
    role: Role,
    zone_name: ZoneName,
    host: Host | None,
    counters: dict[tuple[Role, ZoneName], int],
) -> IPv4Address:
    if role is Role.EDGE:
        if zone_name is ZoneName.PUBLIC:
            return spec.public_address
        gateway = spec.zones[ZoneName.DMZ].gateway_ip
        assert gateway is not None  # the spec's edge check refuses a linux edge without one
        return gateway
    k = counters.get((role, zone_name), 0)
    counters[(role, zone_name)] = k + 1
    if host is not None and zone_name in host.addresses:
        return host.addresses[zone_name]
    offset = ROLES[role].derived_offsets[zone_name]
    return spec.zones[zone_name].cidr.network_address + offset + k


def _vrrp_members(spec: LabSpec, hosts: tuple[ResolvedHost, ...]) -> tuple[VrrpMember, ...]:
    lbs = [h for h in hosts if h.role is Role.LB]
    priorities = spec.lb_priorities
    addresses = [lb.leg(ZoneName.DMZ).address for lb in lbs]
    # Split so that every session down lifts the preferred master to BFD_DOWN_PRIORITY.
    weight = (BFD_DOWN_PRIORITY - max(priorities)) // (len(lbs) - 1)
    members = []
    for lb, prio, src in zip(lbs, priorities, addresses, strict=True):
        top = prio == max(priorities)
        # nopreempt only works with state BACKUP on every node (keepalived PR #346).
        state: Literal["MASTER", "BACKUP"] = "MASTER" if top and spec.vrrp.preempt else "BACKUP"
        members.append(
            VrrpMember(
                host=lb.name,
                state=state,
                priority=prio,
                src_ip=src,
                peers=tuple(a for a in addresses if a != src),
                nopreempt=not spec.vrrp.preempt,
                bfd_weight=weight,
            )
        )
    return tuple(members)


def _address_claims(
    spec: LabSpec, hosts: tuple[ResolvedHost, ...], fortigate: ResolvedHost | None
) -> tuple[AddressClaim, ...]:
    # The hypervisor owns each zone's hostAddress and a gateway left to default; the linux edge
    # owns the public IP and the DMZ gateway (its own legs); a FortiGate owns the public IP, the
    # DMZ gateway and its API address, which may be any of its interfaces (the FortiGate-VM's
    # is its WAN port). Device names can never be a host's ("host <DNS label>"), so no host can
    # pass for one.
    owner_of_edge = {
        EdgeKind.LINUX: "host edge",
        EdgeKind.FORTIGATE: "the FortiGate",
        EdgeKind.FORTIGATE_VM: "the FortiGate",
    }.get(spec.edge.kind)
    claims: list[AddressClaim] = []
    for zone_name, zone in spec.zones.items():
        if zone.host_ip is not None:
            key = f"zones.{zone_name.value}.hostAddress"
            claims.append(AddressClaim(zone.host_ip, key, "the hypervisor"))
        if zone.gateway is not None:
            device = f"the {zone_name.value} gateway"
            if zone.gateway == zone.host_ip:
                device = "the hypervisor"
            elif zone_name is ZoneName.DMZ and owner_of_edge:
                device = owner_of_edge
            claims.append(AddressClaim(zone.gateway, f"zones.{zone_name.value}.gateway", device))
    claims.append(AddressClaim(spec.vip_address, "vip", "the VIP"))
    if owner_of_edge:
        claims.append(AddressClaim(spec.public_address, "publicIp", owner_of_edge))
    for index, host in enumerate(hosts):
        for leg in host.legs:
            key = leg_key(index, host.role, leg.zone)
            claims.append(AddressClaim(leg.address, key, f"host {host.name}"))
    if fortigate is not None:
        wan = fortigate.leg(ZoneName.PUBLIC).address
        claims.append(AddressClaim(wan, "fortigateWanAddress", "the FortiGate"))
    if spec.edge.kind is EdgeKind.FORTIGATE:
        api = _ipv4_or_none(spec.edge.fortigate.host.rsplit(":", 1)[0])
        if api is not None and any(api in z.cidr for z in spec.zones.values()):
            claims.append(
                AddressClaim(api, "fortigateHost", "the FortiGate", spec.edge.fortigate.host)
            )
    return tuple(claims)


def _provides_dns(zone: Zone) -> bool:
    # libvirt runs dnsmasq on its own bridges; a bridged or host-less zone has no resolver we know.
    return zone.mode is not NetworkMode.BRIDGE and zone.host_ip is not None


def _ipv4_or_none(text: str) -> IPv4Address | None:
    try:
        return IPv4Address(text)
    except ValueError:
        return None
