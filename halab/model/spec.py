"""The lab spec: a typed, validated model of one stack's config, with its checks.

Config keys are camelCase (``ha-web-lab:vrrpAdvertIntervalMs``), as Pulumi users write them; the
model's fields are snake_case. Every check runs here, before any resource exists, and every failure
becomes a :class:`halab.model.errors.ConfigError` that names the key and the value.

What follows from the config (every host's addresses, MACs and interfaces, the bridges, the VRRP
group, the firewall rule, the FortiOS names) is the plan, :mod:`halab.model.plan`, derived once
per spec as ``spec.plan``; the checks that need it (one device per address, per bridge, per MAC)
read it. The spec fills in its own defaults: the VIP is the DMZ network + 100, the public IP the
public network + 10, the VRRP priorities :func:`derived_priorities`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Mapping
from enum import StrEnum
from functools import cached_property
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from halab.model.errors import ConfigError, TopologyError, from_validation_error
from halab.model.roles import ROLES, Role, ZoneName
from halab.model.sections import (
    FORTIOS_PLAIN_TOKEN,
    Address,
    EdgeKind,
    EdgeSpec,
    HaproxySpec,
    Integer,
    ReadinessSpec,
    VmSpec,
    VrrpSpec,
    check_text,
    group_keys,
    section_names,
)
from halab.plumbing.roots import PROJECT

if TYPE_CHECKING:
    from halab.model.plan import AddressClaim, LabPlan


class NetworkMode(StrEnum):
    """How libvirt connects a zone's bridge to the hypervisor.

    ``nat``/``route``/``isolated`` make a libvirt-managed bridge (the host gets ``hostAddress``);
    ``bridge`` attaches to an existing host bridge, e.g. one a FortiGate-VM already uses.
    """

    NAT = "nat"
    ROUTE = "route"
    ISOLATED = "isolated"
    BRIDGE = "bridge"


VIP_OFFSET = 100
PUBLIC_IP_OFFSET = 10
#: ``edge: fortigate-vm``: the FortiGate's WAN port (its API address) is the public network + 2
#: unless ``fortigateWanAddress`` says otherwise (the dev stack's FortiGate sits there too).
FORTIGATE_WAN_OFFSET = 2
#: The FortiGate-VM's name in the plan (its libvirt domain is ``<lab>-fortigate``).
FORTIGATE_VM_NAME = "fortigate"

#: Matched whole (fullmatch): ``$`` would also match before a final line break.
DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
IFNAME = re.compile(r"[a-z][a-z0-9-]{0,14}")
#: FortiOS limits the provider enforces (terraform-provider-fortios 1.20.0, the one pulumiverse
#: fortios 0.0.6 wraps): name lengths per object kind (the largest policy id: halab.model.sections).
FORTIOS_NAME_LIMITS = {"vip": 79, "vip group": 79, "policy": 35, "service": 79, "address": 79}
#: The preferred master's priority while BFD says its peer is down (fast detection); every LB is
#: lifted by the same amount, so their order never changes. The master-down timer is adverts x
#: interval + (256 - priority)/256 of an interval: the higher the lift, the sooner a backup takes
#: over once BFD is down, and the less a lifted backup tolerates a late advert. BFD goes down
#: falsely too (Keepalived 2.2.7 expires a session that has just come up: see
#: halab.model.sections.VRRP_STARTUP_DELAY_S); at 254 (0.3 ms of margin at 40 ms adverts) a
#: returning LB, lifted by such a bounce, took the VIP from a live master in the lab. 230
#: leaves 26/256 of an interval (4 ms at 40 ms adverts) and costs as much on a takeover.
BFD_DOWN_PRIORITY = 230
#: FortiOS predefined services for the ports the lab forwards; others get a custom service.
FORTIOS_PREDEFINED_SERVICES = {80: "HTTP", 443: "HTTPS"}

#: Keys whose values are Pulumi secrets. The spec only learns whether they are set.
SECRET_KEYS = ("fortigateToken", "tlsCertificate", "tlsPrivateKey", "sshPrivateKey")


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_enum_values=False,
    )

    @field_validator("*", mode="before")
    @classmethod
    def _plain_text(cls, value: Any) -> Any:
        # Names, addresses and paths are one clean line (halab.model.sections.check_text).
        return check_text(value)


class Zone(_Model):
    """One zone: a libvirt network with one IPv4 subnet."""

    cidr: IPv4Network
    mode: NetworkMode = NetworkMode.NAT
    #: The hypervisor's address on the bridge. Unset: the first usable address (none for
    #: ``bridge``). ``null``: a pure layer-2 segment, e.g. when a firewall owns the gateway.
    host_address: Address | None = None
    #: Default router for hosts whose default route points into this zone. Unset: hostAddress.
    gateway: Address | None = None
    #: Bridge name; required for ``mode: bridge``, else derived from the lab name.
    bridge: str | None = None

    @field_validator("cidr", mode="before")
    @classmethod
    def _cidr_is_a_network(cls, value: Any) -> Any:
        # ip_network() gives a clearer message than pydantic's generic one.
        try:
            net = ipaddress.ip_network(str(value), strict=True)
        except ValueError as exc:
            raise ValueError(f"not an IPv4 network in CIDR form ({exc})") from None
        if not isinstance(net, IPv4Network):
            raise ValueError("only IPv4 networks are supported")
        if net.prefixlen > 29:
            raise ValueError("prefix longer than /29 leaves no room for a lab")
        return net

    @property
    def host_ip(self) -> IPv4Address | None:
        """The hypervisor's address on this zone's bridge, if it has one."""
        if "host_address" in self.model_fields_set:
            return self.host_address
        if self.mode is NetworkMode.BRIDGE:
            return None
        return self.cidr.network_address + 1

    @property
    def gateway_ip(self) -> IPv4Address | None:
        """The default router inside this zone."""
        return self.gateway if self.gateway is not None else self.host_ip


class Host(_Model):
    """One VM (web or lb) as configured; legs follow from the role."""

    name: str
    role: Role
    addresses: dict[ZoneName, Address] = Field(default_factory=dict)
    vcpus: Integer | None = Field(default=None, ge=1, le=64)
    memory_mib: Integer | None = Field(default=None, ge=256, le=262144)

    @field_validator("name")
    @classmethod
    def _name_is_dns_label(cls, value: str) -> str:
        if not DNS_LABEL.fullmatch(value) or len(value) > 40:
            raise ValueError(
                "not a valid hostname: use 1-40 lowercase letters, digits and '-', "
                "not starting or ending with '-'"
            )
        return value

    @field_validator("role")
    @classmethod
    def _configurable_role(cls, value: Role) -> Role:
        if not ROLES[value].configurable:
            raise ValueError(
                f"role {value.value!r} is not configured by hand: set ha-web-lab:edge instead"
            )
        return value


class LabSpec(_Model):
    """Everything one stack says, validated. Construct it with :func:`load_spec`."""

    stack: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
    #: Secret keys that are set in the stack (their values never enter the spec).
    secrets_present: frozenset[str] = frozenset()

    zones: dict[ZoneName, Zone]
    hosts: tuple[Host, ...]
    vip: Address | None = None

    vm: VmSpec = Field(default_factory=VmSpec)
    vrrp: VrrpSpec = Field(default_factory=VrrpSpec)
    haproxy: HaproxySpec = Field(default_factory=HaproxySpec)
    edge: EdgeSpec = Field(default_factory=EdgeSpec)
    readiness: ReadinessSpec = Field(default_factory=ReadinessSpec)

    # ---- field checks -------------------------------------------------------------------------

    @model_validator(mode="before")
    @classmethod
    def _sections(cls, data: Any) -> Any:
        # Users write flat keys; each section takes its own (halab/model/sections.py).
        return group_keys(cls, data)

    @field_validator("vip", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # Pulumi.yaml declares it as a string with default "": that means "derive it".
        return None if value == "" else value

    # ---- cross-field checks -------------------------------------------------------------------

    @model_validator(mode="after")
    def _topology(self) -> LabSpec:
        missing = [z.value for z in ZoneName if z not in self.zones]
        if missing:
            raise TopologyError("zones", sorted(self.zones), f"zone {missing[0]!r} is missing")
        self._check_zones()
        self._check_hosts()
        self._check_vrrp()
        self._check_edge()
        self._check_access()
        # The input is whole: what follows checks the plan derived from it.
        self._check_legs()
        self._check_addresses()
        self._check_links()
        return self

    def _check_zones(self) -> None:
        items = list(self.zones.items())
        for i, (name, zone) in enumerate(items):
            for other_name, other in items[i + 1 :]:
                if zone.cidr.overlaps(other.cidr):
                    raise TopologyError(
                        f"zones.{other_name}.cidr",
                        str(other.cidr),
                        f"overlaps zones.{name}.cidr {zone.cidr}",
                    )
            for key, ip in (("hostAddress", zone.host_ip), ("gateway", zone.gateway)):
                if ip is not None:
                    _check_in_zone(f"zones.{name}.{key}", ip, zone.cidr)
            first = zone.cidr.network_address + 1
            if zone.mode is not NetworkMode.BRIDGE and zone.host_ip not in (None, first):
                raise TopologyError(
                    f"zones.{name}.hostAddress",
                    str(zone.host_ip),
                    f"libvirt gives its bridge the first address ({first}): use it or null",
                )
            if zone.mode is NetworkMode.BRIDGE and not zone.bridge:
                raise TopologyError(
                    f"zones.{name}.bridge", None, "mode 'bridge' needs the existing bridge's name"
                )
            if zone.bridge is not None and not IFNAME.fullmatch(zone.bridge):
                raise TopologyError(
                    f"zones.{name}.bridge", zone.bridge, "not a valid bridge name (max 15 chars)"
                )

    def _check_hosts(self) -> None:
        names: set[str] = set()
        for i, host in enumerate(self.hosts):
            if host.name in names:
                raise TopologyError(f"hosts[{i}].name", host.name, "used twice")
            names.add(host.name)
            legs = ROLES[host.role].legs
            for zone, ip in host.addresses.items():
                key = f"hosts[{i}].addresses.{zone.value}"
                if zone not in legs:
                    raise TopologyError(key, str(ip), f"a {host.role} host has no leg in {zone}")
                _check_in_zone(key, ip, self.zones[zone].cidr)
        if "edge" in names and self.edge.kind is EdgeKind.LINUX:
            raise TopologyError("hosts", "edge", "the name 'edge' is taken by the linux edge VM")
        if FORTIGATE_VM_NAME in names and self.edge.kind is EdgeKind.FORTIGATE_VM:
            raise TopologyError(
                "hosts", FORTIGATE_VM_NAME, "the name 'fortigate' is taken by the FortiGate-VM"
            )
        if not self.web_hosts:
            raise TopologyError("hosts", [h.name for h in self.hosts], "no host has role 'web'")
        if len(self.lb_hosts) < 2:
            raise TopologyError(
                "hosts",
                [h.name for h in self.lb_hosts],
                f"at least 2 hosts need role 'lb' (a VRRP group), found {len(self.lb_hosts)}",
            )

    def _check_vrrp(self) -> None:
        priorities = self.vrrp.priorities
        if priorities and len(priorities) != len(self.lb_hosts):
            raise TopologyError(
                "vrrpPriorities",
                list(priorities),
                f"give one priority per lb host ({len(self.lb_hosts)}: "
                f"{', '.join(h.name for h in self.lb_hosts)}), or none to derive them",
            )
        if self.vrrp.fast_detection:
            self._check_fast_detection()
        dmz = self.zones[ZoneName.DMZ].cidr
        _check_in_zone("vip", self.vip_address, dmz)

    def _check_fast_detection(self) -> None:
        # The section checked the timers; the lift depends on how many LBs there are.
        priorities = self.lb_priorities
        if max(priorities) >= BFD_DOWN_PRIORITY:
            raise TopologyError(
                "vrrpPriorities",
                list(priorities),
                f"fast detection lifts every LB while BFD is down, the highest to "
                f"{BFD_DOWN_PRIORITY}: keep each priority below {BFD_DOWN_PRIORITY}",
            )
        peers = len(priorities) - 1
        if (BFD_DOWN_PRIORITY - max(priorities)) < peers:
            raise TopologyError(
                "vrrpPriorities",
                list(priorities),
                f"fast detection splits the lift ({BFD_DOWN_PRIORITY} minus the highest "
                f"priority) over the {peers} BFD sessions of each LB, at least 1 each: lower "
                f"the highest priority to {BFD_DOWN_PRIORITY - peers} or less",
            )

    def _check_edge(self) -> None:
        public = self.zones[ZoneName.PUBLIC].cidr
        if self.edge.kind is not EdgeKind.NONE:
            _check_in_zone("publicIp", self.public_address, public)
        dmz = self.zones[ZoneName.DMZ]
        if self.edge.kind in (EdgeKind.LINUX, EdgeKind.FORTIGATE_VM):
            # Both are VMs of this stack that own the DMZ gateway, the LBs' default route.
            owner = "the linux edge" if self.edge.kind is EdgeKind.LINUX else "the FortiGate-VM"
            if dmz.gateway_ip is None:
                raise TopologyError(
                    "zones.dmz.gateway", None, f"{owner} needs a DMZ gateway address to own"
                )
            if dmz.host_ip is not None and dmz.host_ip == dmz.gateway_ip:
                raise TopologyError(
                    "zones.dmz.hostAddress",
                    str(dmz.host_ip),
                    f"equals the DMZ gateway, which {owner} owns: set "
                    "zones.dmz.hostAddress to null (or another address) or set zones.dmz.gateway",
                )
        if self.edge.kind.is_fortigate:
            # The section checked its own keys (host, interfaces, TLS); the token is a secret.
            if "fortigateToken" not in self.secrets_present:
                raise TopologyError(
                    "fortigateToken",
                    None,
                    f"edge is {self.edge.kind.value!r} but no API token is set: run "
                    "`pulumi config set --secret fortigateToken <REST API admin token>` "
                    "(or `pulumi config set edge linux` to use the Linux edge)",
                )
            self._check_fortigate_names()
        if self.edge.kind is EdgeKind.FORTIGATE_VM:
            self._check_fortigate_vm()
        tls = {"tlsCertificate", "tlsPrivateKey"} & self.secrets_present
        if len(tls) == 1:
            (given,) = tls
            other = ({"tlsCertificate", "tlsPrivateKey"} - tls).pop()
            raise TopologyError(
                other, None, f"{given} is set but {other} is not: set both or neither"
            )

    @property
    def access_enforcement(self) -> dict[str, str | None]:
        """Each setting that restricts who reaches the lab, by key, and what enforces it; None
        where nothing would (a restriction that is set but applied nowhere)."""
        sources = {str(n) for n in self.edge.allowed_sources}
        if sources == {"0.0.0.0/0"}:
            return {}
        enforcer = {
            EdgeKind.LINUX: "the edge VM's nftables (DNAT and forward rules)",
            EdgeKind.FORTIGATE: "the FortiGate's policy (source addresses)",
            EdgeKind.FORTIGATE_VM: "the FortiGate's policy (source addresses)",
            EdgeKind.NONE: None,
        }[self.edge.kind]
        return {"edgeAllowedSources": enforcer}

    def _check_access(self) -> None:
        for key, enforcer in self.access_enforcement.items():
            if enforcer is None:
                sources = [str(n) for n in self.edge.allowed_sources]
                raise TopologyError(
                    key,
                    sources,
                    f"restricts who reaches the lab, but edge is {self.edge.kind.value!r}: no "
                    "edge enforces it and clients reach the VIP from anywhere; set edge linux "
                    "or fortigate, or remove edgeAllowedSources",
                )

    def _check_fortigate_vm(self) -> None:
        public = self.zones[ZoneName.PUBLIC]
        wan = self.fortigate_wan_address
        _check_in_zone("fortigateWanAddress", wan, public.cidr)
        if public.host_ip is None:
            # The provider and the readiness wait call the API from this machine, through the
            # Public zone's bridge; the bootstrap config trusts only that address.
            raise TopologyError(
                "zones.public.hostAddress",
                None,
                "edge 'fortigate-vm' is configured from this machine through the Public zone: "
                "give the hypervisor an address there",
            )
        if wan == self.public_address:
            raise TopologyError(
                "fortigateWanAddress",
                str(wan),
                "equals publicIp: the lab forwards the public IP's ports (443 too) to the VIP, "
                "and the API's HTTPS must stay the FortiGate's own; give them two addresses",
            )
        given = self.edge.fortigate.host
        if given and given not in (str(wan), f"{wan}:443"):
            raise TopologyError(
                "fortigateHost",
                given,
                f"edge 'fortigate-vm' calls the API on the FortiGate's WAN address {wan}: "
                "remove fortigateHost, or set fortigateWanAddress",
            )

    @property
    def fortigate_wan_address(self) -> IPv4Address:
        """The FortiGate-VM's own address in the Public zone (``edge: fortigate-vm``)."""
        public = self.zones[ZoneName.PUBLIC].cidr
        return self.edge.fortigate.wan_address or public.network_address + FORTIGATE_WAN_OFFSET

    @property
    def fortigate_api_host(self) -> str:
        """Where the FortiOS provider calls the API: ``fortigateHost``, or for the stack's own
        FortiGate-VM its WAN address (static, so known before anything exists)."""
        if self.edge.kind is EdgeKind.FORTIGATE_VM:
            return str(self.fortigate_wan_address)
        return self.edge.fortigate.host

    def _check_fortigate_names(self) -> None:
        # FortiOS limits its object names; the provider checks them only at preview, after this
        # spec said yes, so each is checked here with the key that fixes it.
        prefix = self.plan.fortios.prefix
        for kind, name in self.plan.fortios.objects:
            limit = FORTIOS_NAME_LIMITS[kind]
            if len(name) > limit:
                room = limit - (len(name) - len(prefix))
                raise TopologyError(
                    "fortigateNamePrefix",
                    prefix,
                    f"makes the FortiOS {kind} name {name!r} {len(name)} characters, over "
                    f"FortiOS's {limit}: set fortigateNamePrefix to at most {room} characters",
                )

    def _check_legs(self) -> None:
        # A derived address (network + offset + k) can fall outside a small zone.
        for index, host in enumerate(self.plan.hosts):
            for leg in host.legs:
                _check_in_zone(leg_key(index, host.role, leg.zone), leg.address, leg.network)
        # The FortiGate-VM's legs are fortigateWanAddress and the DMZ gateway, checked above.

    def _check_addresses(self) -> None:
        # One device per address: two hosts, a host and the VIP, the VIP and a gateway or the
        # hypervisor's own address would each answer ARP for it and split the traffic.
        first: dict[IPv4Address, AddressClaim] = {}
        for claim in self.plan.address_claims:
            earlier = first.setdefault(claim.address, claim)
            if earlier.device != claim.device:
                raise TopologyError(
                    claim.key,
                    claim.given or str(claim.address),
                    f"already used by {earlier.key} ({earlier.device})",
                )

    def _check_links(self) -> None:
        # Bridges and MACs are the layer-2 twins of addresses: each must be one device's.
        bridges: dict[str, ZoneName] = {}
        for zone_name, bridge in self.plan.bridges.items():
            if bridge in bridges:
                raise TopologyError(
                    f"zones.{zone_name.value}.bridge",
                    bridge,
                    f"zones.{bridges[bridge].value} uses that bridge too",
                )
            bridges[bridge] = zone_name
        macs: dict[str, str] = {}
        for host in self.plan.machines:
            for leg in host.legs:
                owner = macs.setdefault(leg.mac, f"{host.name}/{leg.zone.value}")
                if owner != f"{host.name}/{leg.zone.value}":
                    # Derived from a hash: one in ~16 million per pair; a rename resolves it.
                    raise TopologyError(
                        "hosts", host.name, f"its {leg.zone.value} MAC {leg.mac} equals {owner}'s"
                    )

    # ---- the plan, and values with their defaults filled in -----------------------------------

    @cached_property
    def plan(self) -> LabPlan:
        """Everything derived from this spec (:class:`halab.model.plan.LabPlan`), computed once.

        The checks above read it before they pass, so it exists for every valid spec.
        """
        # Imported here: the plan module builds on this one (a cycle at import time).
        from halab.model.plan import plan_of

        return plan_of(self)

    def deploy_problems(
        self, *, agent_socket: str | None = None, agent_answers: bool = False
    ) -> ConfigError | None:
        """What stops a real deployment but not rendering or the local lab: the readiness
        gates log in over SSH, so they need a public key on the VMs and a way to use it.

        ``agent_socket`` is ``SSH_AUTH_SOCK`` of the Pulumi run, ``agent_answers`` whether an
        agent accepts connections there. pulumi-command dials that socket before any login,
        even when a private key is given, so a stale one breaks the key too.
        """
        if not self.readiness.enabled:
            return None
        if not self.vm.ssh_public_keys:
            return ConfigError(
                "sshPublicKeys",
                [],
                "the readiness gates log in over SSH: add your key with `pulumi config set "
                "--path 'sshPublicKeys[0]' \"$(cat ~/.ssh/id_ed25519.pub)\"` "
                "(or `pulumi config set readiness false`)",
            )
        if agent_socket and not agent_answers:
            return ConfigError(
                "SSH_AUTH_SOCK",
                agent_socket,
                "no SSH agent answers there, and pulumi-command dials it before it logs in, "
                "with sshPrivateKey too: start the agent, or unset SSH_AUTH_SOCK",
            )
        if "sshPrivateKey" not in self.secrets_present and not agent_socket:
            return ConfigError(
                "sshPrivateKey",
                None,
                "the readiness gates need SSH: run an ssh-agent with your key, or `cat "
                "~/.ssh/id_ed25519 | pulumi config set --secret sshPrivateKey`, or `pulumi "
                "config set readiness false`",
            )
        return None

    @property
    def lab_name(self) -> str:
        """Prefix of every libvirt object and namespace of the lab, so two stacks on one
        hypervisor never clash: ``hwl-`` and the stack name where that is already lowercase
        letters, digits and '-'; else the name folded to those and a short hash of the name as
        it is (``my_lab``, ``my.lab`` and ``My-lab`` would all fold to ``my-lab``)."""
        folded = re.sub(r"[^a-z0-9-]", "-", self.stack.lower())
        if folded == self.stack:
            return f"hwl-{folded}"
        return f"hwl-{folded}-{short_hash(self.stack)}"

    @property
    def web_hosts(self) -> tuple[Host, ...]:
        """Configured hosts with role web, in config order."""
        return tuple(h for h in self.hosts if h.role is Role.WEB)

    @property
    def lb_hosts(self) -> tuple[Host, ...]:
        """Configured hosts with role lb, in config order (``vrrpPriorities`` follows it)."""
        return tuple(h for h in self.hosts if h.role is Role.LB)

    @property
    def lb_priorities(self) -> tuple[int, ...]:
        """Each lb host's VRRP priority, in config order (``vrrpPriorities``, or derived)."""
        return self.vrrp.priorities or derived_priorities(len(self.lb_hosts))

    @property
    def vip_address(self) -> IPv4Address:
        """The VRRP virtual IP in the DMZ."""
        return self.vip or self.zones[ZoneName.DMZ].cidr.network_address + VIP_OFFSET

    @property
    def public_address(self) -> IPv4Address:
        """The public IP the edge maps onto the VIP."""
        return (
            self.edge.public_ip
            or self.zones[ZoneName.PUBLIC].cidr.network_address + PUBLIC_IP_OFFSET
        )


def fortigate_vm_token_problem(token: str) -> ConfigError | None:
    """What is wrong with ``fortigateToken`` for ``edge: fortigate-vm``, or None.

    The config drive creates the API admin with this very token, and FortiOS takes a token in
    plain text there only when it is 30 characters (:data:`FORTIOS_PLAIN_TOKEN`). The value is a
    secret: the message never shows it, only its length.
    """
    if FORTIOS_PLAIN_TOKEN.fullmatch(token):
        return None
    return ConfigError(
        "fortigateToken",
        f"(secret, {len(token)} characters)",
        "edge 'fortigate-vm' gives this token to the FortiGate's API admin in its bootstrap "
        "config, where FortiOS takes exactly 30 letters and digits: make one with "
        "`openssl rand -hex 15` and `pulumi config set --secret fortigateToken <it>`",
    )


SHORT_HASH_CHARS = 6


def short_hash(text: str) -> str:
    """Six hex digits of the SHA-256 of ``text``: names that a cut or a fold made alike differ."""
    return hashlib.sha256(text.encode()).hexdigest()[:SHORT_HASH_CHARS]


def derived_priorities(count: int) -> tuple[int, ...]:
    """VRRP priorities for ``count`` LBs when ``vrrpPriorities`` is empty: the first lb host
    150, then evenly lower down to 50 at the least (150, 100 for the usual pair; 150, 100, 50
    for three), so the order is the config order and there is room below BFD's lift."""
    step = min(50, 100 // max(1, count - 1))
    return tuple(150 - k * step for k in range(count))


def leg_key(index: int, role: Role, zone: ZoneName) -> str:
    """The config key a leg's address comes from (the edge's legs have keys of their own)."""
    if role is Role.EDGE:
        return "publicIp" if zone is ZoneName.PUBLIC else "zones.dmz.gateway"
    return f"hosts[{index}].addresses.{zone.value}"


def _check_in_zone(key: str, ip: IPv4Address, cidr: IPv4Network) -> None:
    if ip not in cidr:
        raise TopologyError(key, str(ip), f"is outside {cidr}")
    if ip in (cidr.network_address, cidr.broadcast_address):
        raise TopologyError(key, str(ip), f"is the network or broadcast address of {cidr}")


def load_spec(
    values: Mapping[str, Any], *, stack: str, secrets_present: frozenset[str] = frozenset()
) -> LabSpec:
    """Validate a stack's config (keys without the ``ha-web-lab:`` prefix) into a spec.

    Raises :class:`ConfigError` naming the offending key and value; never anything else for
    bad input.
    """
    if not isinstance(values, Mapping):
        raise ConfigError(PROJECT, values, "the stack config must be a mapping of keys to values")
    # A secret given in the values (e.g. by a test) counts as set; its value is dropped here.
    unknown_secret = {k for k, v in values.items() if k in SECRET_KEYS and v}
    data = {k: v for k, v in values.items() if k not in SECRET_KEYS}
    present = frozenset(secrets_present | unknown_secret)
    try:
        return LabSpec.model_validate(
            {**data, "stack": stack, "secretsPresent": present}, by_alias=True, by_name=False
        )
    except ValidationError as exc:
        raise from_validation_error(exc, data, section_names(LabSpec)) from None
    except RecursionError:
        raise ConfigError(PROJECT, "...", "config is nested too deeply") from None
