"""The FortiOS tables the lab's edge uses, each field with FortiOS's rule for it and its source.

The emulated FortiOS is 7.2 (what the provider learns from ``GET /api/v2/cmdb/system/global``,
:data:`FORTIOS_VERSION`); Ansible's option lists are read for that version's ``v_range``.

Sources, cited by these short names in the comments below:

- ``TF``: terraform-provider-fortios 1.20.0 (the upstream pulumiverse-fortios 0.0.6 wraps),
  fortios/resource_firewall_<table>.go: the provider's own schema and ``ValidateFunc`` limits.
- ``ANSIBLE``: fortinet-ansible-dev/ansible-galaxy-fortios-collection 2.4.2,
  plugins/modules/fortios_firewall_<table>.py: ``versioned_schema`` (types, option lists, per
  FortiOS version) and ``DOCUMENTATION`` ("Source <table>.name": what a reference may name).
- ``CLI``: Fortinet's FortiOS CLI reference, ``config firewall vip`` (e.g.
  docs.fortinet.com/document/fortigate/6.2.10/cli-reference/273620): defaults and sizes.

A field is refused when a value breaks its rule; a field that is not listed here is refused as
unproven (FortiOS has hundreds more, and what it does with an unknown one is not documented).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from halab.fortigate.errors import FortiOSError, invalid_value, unproven

#: FortiOS's "no address" (a VIP's extip before it is set; CLI default).
NO_ADDRESS = "0.0.0.0"  # noqa: S104 - an address value, not a socket to bind

#: What the emulator reports being: a FortiGate-VM on FortiOS 7.2 (the provider keeps the
#: version for version-dependent fields; terraform-provider-fortios sdk/sdkcore/forticlient.go).
FORTIOS_VERSION = "v7.2.8"
FORTIOS_BUILD = 1639
#: A serial no FortiGate has: "FGVMEV" is the evaluation VM prefix, the rest says "emulator".
SERIAL = "FGVMEVEMULATOR00"


class Kind(Enum):
    """How a value is checked and how FortiOS writes it back."""

    STRING = "string"
    OPTION = "option"
    INTEGER = "integer"
    INTEGER_TEXT = "integer-text"
    UUID = "uuid"
    IPV4_OR_RANGE = "ipv4-or-range"
    SUBNET = "subnet"
    PORT_RANGE = "port-range"
    SERVICE_PORTS = "service-ports"
    NAME_LIST = "name-list"
    RANGE_LIST = "range-list"


@dataclass(frozen=True)
class Field:
    """One attribute of a table: its kind, FortiOS's limits, default and references."""

    kind: Kind
    max_len: int | None = None
    choices: tuple[str, ...] = ()
    low: int | None = None
    high: int | None = None
    #: What FortiOS reads back when the attribute was never set; None: it is not read back.
    default: Any = None
    #: For a reference or a list of references: the tables a name may be found in.
    refs: tuple[str, ...] = ()
    #: Integers allowed outside ``low``-``high`` (FortiOS's special values, e.g. 255).
    also: tuple[int, ...] = ()


@dataclass(frozen=True)
class Table:
    """A CMDB table: its REST path (``firewall/vip``), its key and its fields."""

    path: str
    mkey: str
    fields: Mapping[str, Field]
    required: frozenset[str] = field(default_factory=frozenset)

    @property
    def mkey_is_integer(self) -> bool:
        """Policies are keyed by number, everything else by name."""
        return self.fields[self.mkey].kind is Kind.INTEGER


_ENABLE = ("enable", "disable")
#: TF: every name and reference of these tables is StringLenBetween(0, 79) unless noted.
_NAME = Field(Kind.STRING, max_len=79)
#: TF: ``color`` is IntBetween(0, 32) in vip, vipgrp, address and service custom; CLI: 0.
_COLOR = Field(Kind.INTEGER, low=0, high=32, default=0)
#: CLI: "automatically assigned"; the store assigns one on create.
_UUID = Field(Kind.UUID)
#: TF: interface names (extintf, interface, associated_interface) are StringLenBetween(0, 35).
_INTERFACE = ("system/interface",)

ADDRESS = Table(
    path="firewall/address",
    mkey="name",
    required=frozenset({"name"}),
    fields={
        "name": _NAME,
        "uuid": _UUID,
        # ANSIBLE fortios_firewall_address: type options for 7.2 (route-tag is 7.4+,
        # wildcard-fqdn ended with 6.0.11). CLI default: ipmask.
        "type": Field(
            Kind.OPTION,
            choices=(
                "ipmask",
                "iprange",
                "fqdn",
                "geography",
                "wildcard",
                "dynamic",
                "interface-subnet",
                "mac",
            ),
            default="ipmask",
        ),
        # FortiOS writes a subnet back as "address mask": the provider converts it back to the
        # CIDR it was given (TF config.go validateConvIPMask2CIDR, used by
        # flattenFirewallAddressSubnet), and pyfortiapi's docs show the read
        # ('10.0.0.0 255.0.0.0'). CLI default: 0.0.0.0 0.0.0.0.
        "subnet": Field(Kind.SUBNET, default="0.0.0.0 0.0.0.0"),
        "comment": Field(Kind.STRING, max_len=255, default=""),  # TF: 0..255
        "associated-interface": Field(Kind.STRING, max_len=35, default="", refs=_INTERFACE),
        "color": _COLOR,
        "allow-routing": Field(Kind.OPTION, choices=_ENABLE, default="disable"),  # ANSIBLE
    },
)

VIP = Table(
    path="firewall/vip",
    mkey="name",
    required=frozenset({"name"}),
    fields={
        "name": _NAME,
        "id": Field(Kind.INTEGER, low=0, high=65535, default=0),  # TF fosid, CLI: 0..65535, 0
        "uuid": _UUID,
        "comment": Field(Kind.STRING, max_len=255, default=""),  # TF, CLI: 255
        # ANSIBLE fortios_firewall_vip: type options (access-proxy from 7.0); CLI: static-nat.
        "type": Field(
            Kind.OPTION,
            choices=(
                "static-nat",
                "load-balance",
                "server-load-balance",
                "dns-translation",
                "fqdn",
                "access-proxy",
            ),
            default="static-nat",
        ),
        # CLI: "IP address or address range on the external interface" (type user).
        "extip": Field(Kind.IPV4_OR_RANGE, default=NO_ADDRESS),
        # ANSIBLE: a list of {range}; TF: each range StringLenBetween(0, 79).
        "mappedip": Field(Kind.RANGE_LIST, max_len=79),
        # TF 0..35; ANSIBLE: "Source system.interface.name"; the provider's own test config
        # uses "any" (terraform-provider-fortios#123), so "any" is a valid value.
        "extintf": Field(Kind.STRING, max_len=35, default="", refs=_INTERFACE),
        "arp-reply": Field(Kind.OPTION, choices=_ENABLE, default="enable"),  # CLI: "Enabled
        # by default."; ANSIBLE: disable|enable.
        "portforward": Field(Kind.OPTION, choices=_ENABLE, default="disable"),  # ANSIBLE, CLI
        "status": Field(Kind.OPTION, choices=_ENABLE, default="enable"),  # ANSIBLE (7.0+), CLI
        "protocol": Field(
            Kind.OPTION, choices=("tcp", "udp", "sctp", "icmp"), default="tcp"
        ),  # ANSIBLE; CLI default tcp
        # CLI: "type user"; a port or a port range (FortiExtender's VIP reference: 1-65535).
        "extport": Field(Kind.PORT_RANGE),
        "mappedport": Field(Kind.PORT_RANGE),
        "color": _COLOR,
    },
)

VIP_GROUP = Table(
    path="firewall/vipgrp",
    mkey="name",
    required=frozenset({"name", "interface"}),
    fields={
        "name": _NAME,
        "uuid": _UUID,
        # TF 0..35; ANSIBLE: "Interface. Source system.interface.name".
        "interface": Field(Kind.STRING, max_len=35, refs=_INTERFACE),
        "color": _COLOR,
        "comments": Field(Kind.STRING, max_len=255, default=""),  # TF: 0..255
        # ANSIBLE: member {name}, "VIP name. Source firewall.vip.name."
        "member": Field(Kind.NAME_LIST, max_len=79, refs=("firewall/vip",)),
    },
)

SERVICE = Table(
    path="firewall.service/custom",
    mkey="name",
    required=frozenset({"name"}),
    fields={
        "name": _NAME,
        # ANSIBLE fortios_firewall_service_custom: protocol options for 7.2 (TCP/UDP/SCTP until
        # 7.4.4, TCP/UDP/UDP-Lite/SCTP from 7.6); no uuid before 7.4.2.
        "protocol": Field(
            Kind.OPTION,
            choices=(
                "TCP/UDP/SCTP",
                "ICMP",
                "ICMP6",
                "IP",
                "HTTP",
                "FTP",
                "CONNECT",
                "SOCKS-TCP",
                "SOCKS-UDP",
                "ALL",
            ),
            default="TCP/UDP/SCTP",
        ),
        "tcp-portrange": Field(Kind.SERVICE_PORTS, default=""),
        "comment": Field(Kind.STRING, max_len=255, default=""),  # TF: 0..255
        "category": Field(Kind.STRING, max_len=63, default=""),  # TF: 0..63
        "color": _COLOR,
    },
)

POLICY = Table(
    path="firewall/policy",
    mkey="policyid",
    # ANSIBLE marks policyid required; srcintf is Required in TF.
    required=frozenset({"policyid", "srcintf", "dstintf"}),
    fields={
        # ANSIBLE: "Policy ID (0 - 4294967294)"; TF is narrower (1..2147482999). Policy 0 is
        # how the CLI asks for the next free id, which the REST API's answer to is unproven:
        # the store refuses it.
        "policyid": Field(Kind.INTEGER, low=0, high=4294967294),
        "name": Field(Kind.STRING, max_len=35, default=""),  # TF: 0..35
        "uuid": _UUID,
        # ANSIBLE: interfaces are "Source system.interface.name system.zone.name
        # system.sdwan.zone.name"; TF: each name 0..79.
        "srcintf": Field(Kind.NAME_LIST, max_len=79, refs=_INTERFACE),
        "dstintf": Field(Kind.NAME_LIST, max_len=79, refs=_INTERFACE),
        # ANSIBLE: srcaddr "Source firewall.address.name firewall.addrgrp.name
        # system.external-resource.name"; dstaddr adds firewall.vip.name firewall.vipgrp.name.
        "srcaddr": Field(Kind.NAME_LIST, max_len=79, refs=("firewall/address",)),
        "dstaddr": Field(
            Kind.NAME_LIST,
            max_len=79,
            refs=("firewall/address", "firewall/vip", "firewall/vipgrp"),
        ),
        # ANSIBLE: "Source firewall.service.custom.name firewall.service.group.name".
        "service": Field(Kind.NAME_LIST, max_len=79, refs=("firewall.service/custom",)),
        "action": Field(
            Kind.OPTION, choices=("accept", "deny", "ipsec"), default="deny"
        ),  # ANSIBLE; CLI default deny
        # TF 0..35; ANSIBLE: "Source firewall.schedule.onetime.name
        # firewall.schedule.recurring.name firewall.schedule.group.name".
        "schedule": Field(
            Kind.STRING, max_len=35, default="", refs=("firewall.schedule/recurring",)
        ),
        "nat": Field(Kind.OPTION, choices=_ENABLE, default="disable"),  # ANSIBLE, CLI
        "logtraffic": Field(
            Kind.OPTION, choices=("all", "utm", "disable"), default="utm"
        ),  # ANSIBLE; CLI default utm
        "status": Field(Kind.OPTION, choices=_ENABLE, default="enable"),  # ANSIBLE, CLI
        "comments": Field(Kind.STRING, max_len=1023, default=""),  # TF: 0..1023
        # The provider sends these on every update once they are in its state (GetOkExists in
        # getObjectFirewallPolicy), so FortiOS's reads of them matter. ANSIBLE: "VLAN ...
        # user priority: 255 passthrough, 0 lowest, 7 highest"; TF takes 0..7 from a user, and
        # a read back of 255 (passthrough, FortiOS's default) keeps an update from setting 0.
        "vlan-cos-fwd": Field(Kind.INTEGER, low=0, high=7, also=(255,), default=255),
        "vlan-cos-rev": Field(Kind.INTEGER, low=0, high=7, also=(255,), default=255),
        # TF IntBetween(0, 65535); CLI default 0.
        "tcp-mss-sender": Field(Kind.INTEGER, low=0, high=65535, default=0),
        "tcp-mss-receiver": Field(Kind.INTEGER, low=0, high=65535, default=0),
        # ANSIBLE: "Source firewall.internet-service-reputation.id"; the emulator has no such
        # table, so only 0 (none, CLI default) is known.
        "reputation-minimum": Field(Kind.INTEGER, low=0, high=0, default=0),
        "reputation-minimum6": Field(Kind.INTEGER, low=0, high=0, default=0),
        # TF intBetweenWithZero(300, 604800): 0 is "use the system's" (ANSIBLE). ANSIBLE types
        # it a string, and the provider sends it as one ("0"). What FortiOS reads back for it is
        # unproven, so nothing is read back.
        "session-ttl": Field(Kind.INTEGER_TEXT, low=300, high=604800, also=(0,)),
    },
)

#: Tables the emulator serves for writing, by REST path.
TABLES: dict[str, Table] = {t.path: t for t in (ADDRESS, VIP, VIP_GROUP, SERVICE, POLICY)}

#: Tables that exist only as reference targets, read-only here: what a factory FortiGate-VM has.
REFERENCE_TABLES = ("system/interface", "firewall.schedule/recurring")


def _ipv4(text: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        raise invalid_value(text, "not an IPv4 address") from None


def _check_range(text: str) -> str:
    """``a.b.c.d`` or ``a.b.c.d-e.f.g.h`` with the first not after the second."""
    first, dash, last = text.partition("-")
    low = _ipv4(first)
    if dash and _ipv4(last) < low:
        raise invalid_value(text, "an address range must not end before it starts")
    return text


def _check_subnet(text: str) -> str:
    """CIDR or "address mask" in; FortiOS's "address mask" out."""
    parts = text.split()
    spec = "/".join(parts) if len(parts) == 2 else text
    try:
        network = ipaddress.IPv4Network(spec, strict=False)
    except ValueError:
        raise invalid_value(text, "not an IPv4 subnet") from None
    if network.network_address != ipaddress.IPv4Interface(spec).ip:
        # FortiOS may keep the host bits or clear them: no source says which.
        raise unproven(f"subnet {text!r} has host bits set")
    return f"{network.network_address} {network.netmask}"


_PORT_RANGE = re.compile(r"(\d{1,5})(?:-(\d{1,5}))?")


def _check_port_range(text: str) -> str:
    found = _PORT_RANGE.fullmatch(text)
    if found is None:
        raise invalid_value(text, "not a port or a port range")
    low = int(found[1])
    high = int(found[2]) if found[2] else low
    # FortiExtender's VIP reference gives 1-65535; what FortiOS does with port 0 is unproven.
    if low == 0:
        raise unproven(f"port 0 in {text!r}")
    if high > 65535 or high < low:
        raise invalid_value(text, "ports are 1-65535, the range low to high")
    return text


def _check_service_ports(text: str) -> str:
    # CLI ``set tcp-portrange <dstport_low>[-<dstport_high>:<srcport_low>-<srcport_high>]``,
    # space-separated; the emulator takes destination ports only.
    for item in text.split():
        if ":" in item:
            raise unproven(f"source ports in tcp-portrange {text!r}")
        _check_port_range(item)
    return " ".join(text.split())


def _check_string(name: str, spec: Field, value: Any) -> str:
    if not isinstance(value, str):
        raise invalid_value(value, f"{name} takes a string")
    if spec.max_len is not None and len(value) > spec.max_len:
        raise invalid_value(value, f"{name} is longer than {spec.max_len} characters")
    return value


def _check_name_list(name: str, spec: Field, value: Any, key: str) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise invalid_value(value, f"{name} takes a list of {{{key}}} objects")
    out: list[dict[str, str]] = []
    for item in value:
        if not isinstance(item, dict) or set(item) != {key}:
            raise unproven(f"{name} entry {item!r} (only {{{key!r}: ...}} is known)")
        text = _check_string(f"{name}.{key}", spec, item[key])
        if any(existing[key] == text for existing in out):
            # The CLI keeps a set of names per list; a duplicate's answer is unproven.
            raise unproven(f"{name} names {text!r} twice")
        out.append({key: text})
    return out


def check_value(name: str, spec: Field, value: Any) -> Any:
    """One attribute's value in FortiOS's normal form, or the FortiOS error it would give."""
    checks: dict[Kind, Callable[[], Any]] = {
        Kind.STRING: lambda: _check_string(name, spec, value),
        Kind.UUID: lambda: _check_uuid(value),
        Kind.OPTION: lambda: _check_option(name, spec, value),
        Kind.INTEGER: lambda: _check_integer(name, spec, value),
        Kind.INTEGER_TEXT: lambda: _check_integer_text(name, spec, value),
        Kind.IPV4_OR_RANGE: lambda: _check_range(_check_string(name, spec, value)),
        Kind.SUBNET: lambda: _check_subnet(_check_string(name, spec, value)),
        Kind.PORT_RANGE: lambda: _check_port_range(_check_string(name, spec, value)),
        Kind.SERVICE_PORTS: lambda: _check_service_ports(_check_string(name, spec, value)),
        Kind.NAME_LIST: lambda: _check_name_list(name, spec, value, "name"),
        Kind.RANGE_LIST: lambda: [
            {"range": _check_range(r["range"])}
            for r in _check_name_list(name, spec, value, "range")
        ],
    }
    return checks[spec.kind]()


def _check_uuid(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", value
    ):
        raise invalid_value(value, "not a UUID")
    return value


def _check_option(name: str, spec: Field, value: Any) -> str:
    if value not in spec.choices:
        raise invalid_value(value, f"{name} is one of {', '.join(spec.choices)}")
    return str(value)


def _check_integer(name: str, spec: Field, value: Any) -> int:
    # JSON numbers only: whether FortiOS parses "1000" for an integer is unproven.
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise unproven(f"{name} given as {type(value).__name__} {value!r}")
    if value in spec.also:
        return int(value)
    if (spec.low is not None and value < spec.low) or (spec.high is not None and value > spec.high):
        also = "".join(f" or {v}" for v in spec.also)
        raise invalid_value(value, f"{name} is {spec.low}-{spec.high}{also}")
    return int(value)


def _check_integer_text(name: str, spec: Field, value: Any) -> str:
    # A number written as a string (FortiOS types some numbers so); a JSON number is unproven.
    if not isinstance(value, str):
        raise unproven(f"{name} given as {type(value).__name__} {value!r}")
    if not value.isdigit():
        raise invalid_value(value, f"{name} takes a number")
    return str(_check_integer(name, spec, int(value)))


def check_body(table: Table, body: Mapping[str, Any]) -> dict[str, Any]:
    """Every attribute of a request body checked and normalised; unknown ones refused."""
    out: dict[str, Any] = {}
    for name, value in body.items():
        spec = table.fields.get(name)
        if spec is None:
            raise unproven(f"attribute {name!r} of {table.path}")
        out[name] = check_value(name, spec, value)
    return out


def defaults(table: Table) -> dict[str, Any]:
    """What FortiOS reads back for attributes never set (the ones the emulator knows)."""
    return {name: spec.default for name, spec in table.fields.items() if spec.default is not None}


def references(table: Table, entry: Mapping[str, Any]) -> list[tuple[str, str, tuple[str, ...]]]:
    """(attribute, name, tables it may be in) for every reference an entry makes."""
    out: list[tuple[str, str, tuple[str, ...]]] = []
    for name, spec in table.fields.items():
        if not spec.refs or name not in entry:
            continue
        value = entry[name]
        if spec.kind is Kind.NAME_LIST:
            out.extend((name, item["name"], spec.refs) for item in value)
        elif value:
            out.append((name, value, spec.refs))
    return out


__all__ = [
    "ADDRESS",
    "FORTIOS_VERSION",
    "POLICY",
    "REFERENCE_TABLES",
    "SERVICE",
    "TABLES",
    "VIP",
    "VIP_GROUP",
    "Field",
    "FortiOSError",
    "Kind",
    "Table",
    "check_body",
    "check_value",
    "defaults",
    "references",
]
