"""The emulator's objects as nftables rules: what its VIPs and policies would do on a FortiGate.

:func:`translate` turns one VDOM's addresses, VIPs, VIP groups, services and policies into a
:class:`Ruleset`; :func:`render` writes it as one table of the emulator's own (``inet
fortigate``), deleted and made again in one ``nft -f`` transaction; :class:`NftApplier` loads it.

FortiOS behaviour relied on, cited by these short names below:

- ``VIP-ORDER``: FortiOS 5.0 Help, "Exception to policy order (VIPs)"
  (help.fortinet.com/fos50hlp/50/FortiOS 5.0 Help/policies.068.05.html): VIP translation is
  checked first, before the policies, and "only applies if there is a policy that included the
  VIP".
- ``KB-LOCALIN``: Fortinet community "Technical Tip: Behavior when configured local-in policy
  to deny ..." (article 261055, tested on 7.4.4): with at least one enabled policy naming the
  VIP, traffic matching the VIP (its external port, with port forwarding) is DNATed and the
  firewall policies decide its outcome, "even if the service on the firewall policy does not
  match the VIP external port".
- ``KB-LOOKUP``: Fortinet community "Technical Tip: How FortiOS handles VIP lookup" (2024):
  VIP lookup (DNAT) comes before the policy lookup, which "occurs using the translated
  destination IP"; a session is created when a policy accepts.
- ``KB-PORT``: Fortinet community "Technical Tip: How to use virtual IPs with non-standard
  external ports" (article 262988, FortiOS 5.6+): with port forwarding 8080 -> 80, a policy whose
  service is 8080 matches nothing and the traffic hits "implicit deny policy 0"; the service to
  allow is the mapped port.
- ``KB-PF``: Fortinet community "Technical Tip: Difference between port forwarding and service
  filtering on VIP configuration" (article 404366): without port forwarding a VIP maps every
  port of the external IP (one-to-one NAT); with it, only the external port (range).
- ``KB-ORDER``: Fortinet community "Technical Tip: Virtual IP (VIP) port forwarding order of
  execution" (article 350101): "VIPs will only be checked if they are applied on at least one
  firewall policy"; they are checked top to bottom.
- ``IMPLICIT-DENY``: Fortinet community "Technical Tip: configuring a Firewall Policy with
  action DENY ..." (article 190198): "If no Firewall Policy matches the traffic, the packets are
  dropped"; debug flow names it "policy 0" (KB-PORT's trace).
- ``GUIDE-4``: FortiGate 4.0 MR1 Administration Guide, "Configuring firewall policies": a
  policy matches on source and destination interface ("Any" matches all interfaces), source
  and destination address; a virtual IP as destination makes the FortiGate apply its NAT; NAT
  (source NAT) only with action ACCEPT; "If you select a virtual IP as the Destination Address,
  but do not select the NAT option, the FortiGate unit performs destination NAT (DNAT) rather
  than full NAT".
- ``KB-SNAT``: Fortinet community "Technical Tip: Mapping VIP outbound connections" (article
  193423): without an IP pool, source NAT uses the IP of the outgoing interface.
- ``GUIDE-800``: FortiGate-800 Installation and Configuration Guide, "Enabling and disabling
  policies": "The FortiGate unit matches enabled policies but does not match disabled
  policies."
- ``VIPGRP``: FortiOS 5.6 handbook, "Virtual IP groups" (as fortinetguru.com mirrors it): a
  policy naming a group "will take into account all of the configured parameters of the
  Virtual IPs"; the group's interface is the members' one, or "any" when they differ.
- ``NSE4``: top-down first match by sequence (open-exam-prep NSE 4 "Firewall Policies").

What these do not settle is refused with the emulator's 501 (:func:`halab.fortigate.errors.
unproven`), so the change that would need it is refused too and no rule is guessed; each
refusal says why and docs/fortigate-emulator.md lists them.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, Protocol

import jinja2

from halab.fortigate.errors import FortiOSError, unproven
from halab.fortigate.schema import NO_ADDRESS
from halab.fortigate.store import Store

TABLE = "fortigate"
#: The conntrack mark a nat-enabled policy's sessions carry to the postrouting chain ("FG" 1).
MASQUERADE_MARK = "0x46470001"
#: FortiOS's interface that matches every interface (GUIDE-4: "Any ... matches all interfaces").
ANY_INTERFACE = "any"
TEMPLATE = "fortigate.nft.j2"

#: A Linux interface name: at most 15 characters (IFNAMSIZ - 1), none that nft must escape.
_LINUX_IFNAME = re.compile(r"[A-Za-z0-9_.@-]{1,15}")

Entry = Mapping[str, Any]


@dataclass(frozen=True)
class Dnat:
    """A VIP's destination NAT: packets on ``iifname`` to ``extip`` (and port) go to mappedip."""

    vip: str
    iifname: str | None  # None: extintf "any"
    extip: str
    protocol: str | None  # None: no port forwarding, every port and protocol
    extport: str | None
    mappedip: str
    mappedport: str | None  # None: the port is kept


@dataclass(frozen=True)
class ForwardRule:
    """One policy for one VIP: what it matches after the DNAT, and its verdict."""

    policy: int
    name: str
    iifnames: tuple[str, ...]  # empty: any
    oifnames: tuple[str, ...]  # empty: any
    saddrs: tuple[str, ...]  # empty: all
    vip: str
    extip: str
    protocol: str | None
    extport: str | None
    mappedip: str
    service_ports: tuple[str, ...] | None  # None: every service (ALL)
    verdict: Literal["accept", "drop"]
    masquerade: bool


@dataclass(frozen=True)
class Ruleset:
    """Everything the emulator's table holds, in the order FortiOS would consult it."""

    dnats: tuple[Dnat, ...]
    forwards: tuple[ForwardRule, ...]

    @property
    def masquerades(self) -> bool:
        """True when some accepting policy has source NAT."""
        return any(r.masquerade for r in self.forwards)


def parse_interface(text: str) -> tuple[str, str | None]:
    """``port1=eth0`` -> (port1, eth0); ``port1`` -> (port1, None): a port with no Linux side."""
    name, sep, linux = text.partition("=")
    if not name or (sep and not _LINUX_IFNAME.fullmatch(linux)):
        raise ValueError(
            f"{text!r}: give NAME or NAME=LINUX_IFNAME (a Linux name of 1-15 letters, digits, "
            "_ . @ -)"
        )
    return name, (linux if sep else None)


def _refuse(what: str) -> FortiOSError:
    return unproven(f"forwarding: {what}")


def _single_address(text: str, what: str) -> str:
    if "-" in text:
        # FortiOS maps an external range one to one onto a mapped range; not translated here.
        raise _refuse(f"{what} {text!r} is a range (only single addresses are translated)")
    return text


@dataclass(frozen=True)
class _Vip:
    name: str
    iifname: str | None
    extintf: str
    extip: str
    protocol: str | None
    extport: str | None
    mappedip: str
    mappedport: str | None


class _Translator:
    def __init__(self, tables: Mapping[str, Sequence[Entry]], interfaces: Mapping[str, str]):
        self._by_name = {
            path: {str(e["name"]): e for e in entries}
            for path, entries in tables.items()
            if path != "firewall/policy"
        }
        self._policies = list(tables.get("firewall/policy", ()))
        self._interfaces = interfaces

    def _linux(self, port: str, where: str) -> str | None:
        if port == ANY_INTERFACE:
            return None
        linux = self._interfaces.get(port)
        if linux is None:
            raise _refuse(
                f"{where} names {port!r}, which has no Linux interface (give --interface "
                f"{port}=IFNAME)"
            )
        return linux

    def _vip(self, entry: Entry) -> _Vip:
        name = str(entry["name"])
        if entry.get("type", "static-nat") != "static-nat":
            raise _refuse(f"VIP {name!r} of type {entry.get('type')!r} (only static-nat)")
        if entry.get("status", "enable") != "enable":
            # What a policy naming a disabled VIP then matches is not documented.
            raise _refuse(f"a policy names VIP {name!r}, which is disabled")
        extip = _single_address(str(entry.get("extip", NO_ADDRESS)), f"VIP {name!r} extip")
        if ipaddress.IPv4Address(extip).is_unspecified:
            # 0.0.0.0 stands for the external interface's own address on a FortiGate; the
            # emulator does not know that address.
            raise _refuse(f"VIP {name!r} has no extip (0.0.0.0: the interface's own address)")
        mapped = entry.get("mappedip") or []
        if len(mapped) != 1:
            raise _refuse(f"VIP {name!r} has {len(mapped)} mapped ranges (only one is translated)")
        mappedip = _single_address(str(mapped[0]["range"]), f"VIP {name!r} mappedip")
        extintf = str(entry.get("extintf") or "")
        if not extintf:
            raise _refuse(f"VIP {name!r} has no extintf")
        iifname = self._linux(extintf, f"VIP {name!r} extintf")
        protocol = extport = mappedport = None
        if entry.get("portforward", "disable") == "enable":
            protocol = str(entry.get("protocol", "tcp"))
            if protocol not in ("tcp", "udp", "sctp"):
                raise _refuse(f"VIP {name!r} forwards protocol {protocol!r} (no ports)")
            extport, mapped_text = entry.get("extport"), entry.get("mappedport")
            if not extport or not mapped_text:
                # Which port FortiOS takes when one is missing is not documented.
                raise _refuse(f"VIP {name!r} forwards ports without extport and mappedport")
            mappedport = _mapped_port(name, str(extport), str(mapped_text))
        return _Vip(name, iifname, extintf, extip, protocol, extport, mappedip, mappedport)

    def _dstaddr_vips(self, policy_id: int, names: Iterable[str]) -> list[_Vip]:
        vips: list[_Vip] = []
        for name in names:
            group = self._by_name.get("firewall/vipgrp", {}).get(name)
            if group is not None:
                members = [self._vip_entry(m["name"]) for m in group.get("member", [])]
                if not members:
                    raise _refuse(f"policy {policy_id} names VIP group {name!r}, which is empty")
                found = [self._vip(m) for m in members]
                grp_intf = str(group.get("interface", ""))
                if grp_intf != ANY_INTERFACE and any(v.extintf != grp_intf for v in found):
                    # VIPGRP: a group's interface is its members' or "any"; FortiOS's answer to
                    # a mismatch is not documented.
                    raise _refuse(
                        f"VIP group {name!r} has interface {grp_intf!r} and a member on "
                        "another interface"
                    )
                vips.extend(found)
            elif name in self._by_name.get("firewall/vip", {}):
                vips.append(self._vip(self._vip_entry(name)))
            else:
                # Whether a policy to an ordinary address also matches VIP-translated traffic
                # depends on FortiOS's version and match-vip; only VIP destinations are known.
                raise _refuse(
                    f"policy {policy_id} has destination {name!r}, which is not a VIP or VIP "
                    "group (only policies to VIPs are translated)"
                )
        return vips

    def _vip_entry(self, name: str) -> Entry:
        return self._by_name["firewall/vip"][name]

    def _sources(self, policy_id: int, names: Sequence[str]) -> tuple[str, ...]:
        if not names:
            raise _refuse(f"policy {policy_id} has no srcaddr")
        nets = []
        for name in names:
            address = self._by_name.get("firewall/address", {}).get(name)
            if address is None or address.get("type", "ipmask") != "ipmask":
                kind = "missing" if address is None else address.get("type")
                raise _refuse(f"source {name!r} of policy {policy_id} ({kind}; only ipmask)")
            net = ipaddress.IPv4Network("/".join(str(address["subnet"]).split()))
            if net.prefixlen == 0:
                return ()  # "all": every source
            nets.append(str(net))
        return tuple(nets)

    def _services(self, policy_id: int, names: Sequence[str]) -> tuple[str, ...] | None:
        if not names:
            raise _refuse(f"policy {policy_id} has no service")
        ports: list[str] = []
        for name in names:
            service = self._by_name.get("firewall.service/custom", {}).get(name)
            if service is None:
                raise _refuse(f"service {name!r} of policy {policy_id} is not a custom service")
            protocol = service.get("protocol", "TCP/UDP/SCTP")
            if name == "ALL" and protocol == "IP":
                return None  # the factory ALL: every protocol and port
            ranges = str(service.get("tcp-portrange", "")).split()
            if protocol != "TCP/UDP/SCTP" or not ranges:
                raise _refuse(
                    f"service {name!r} ({protocol}, tcp-portrange {' '.join(ranges) or 'none'}): "
                    "only TCP port services and ALL are translated"
                )
            ports.extend(r for r in ranges if r not in ports)
        return tuple(ports)

    def translate(self) -> Ruleset:
        dnats: dict[str, Dnat] = {}
        forwards: list[ForwardRule] = []
        # NSE4: FortiOS takes policies in sequence; the store keeps them in the order they were
        # made, and a new one goes last (the provider cannot move them).
        for policy in self._policies:
            policy_id = int(policy["policyid"])
            if policy.get("status", "enable") != "enable":
                continue  # GUIDE-800: a disabled policy matches nothing
            action = policy.get("action", "deny")
            if action not in ("accept", "deny"):
                raise _refuse(f"policy {policy_id} action {action!r}")
            if policy.get("schedule") != "always":
                raise _refuse(f"policy {policy_id} schedule {policy.get('schedule')!r}")
            iifnames = self._interfaces_of(policy, "srcintf")
            oifnames = self._interfaces_of(policy, "dstintf")
            saddrs = self._sources(policy_id, [a["name"] for a in policy.get("srcaddr", [])])
            dstaddr = [a["name"] for a in policy.get("dstaddr", [])]
            if not dstaddr:
                raise _refuse(f"policy {policy_id} has no dstaddr")
            vips = self._dstaddr_vips(policy_id, dstaddr)
            ports = self._services(policy_id, [s["name"] for s in policy.get("service", [])])
            for vip in vips:
                # VIP-ORDER, KB-LOCALIN, KB-ORDER: a VIP translates once an enabled policy names
                # it, whatever that policy's action, sources or service; VIPs keep their order.
                dnats.setdefault(
                    vip.name,
                    Dnat(vip.name, vip.iifname, vip.extip, vip.protocol, vip.extport,
                         vip.mappedip, vip.mappedport),
                )  # fmt: skip
                if ports is not None and vip.protocol not in (None, "tcp"):
                    continue  # a TCP-port service never matches this VIP's UDP/SCTP traffic
                forwards.append(
                    ForwardRule(
                        policy=policy_id,
                        name=str(policy.get("name", "")),
                        iifnames=iifnames,
                        oifnames=oifnames,
                        saddrs=saddrs,
                        vip=vip.name,
                        extip=vip.extip,
                        protocol=vip.protocol,
                        extport=vip.extport,
                        mappedip=vip.mappedip,
                        # KB-PORT, KB-LOOKUP: the service is matched after the DNAT, on the
                        # mapped port.
                        service_ports=ports,
                        verdict="accept" if action == "accept" else "drop",
                        # GUIDE-4: source NAT only for accepted traffic; KB-SNAT: to the
                        # outgoing interface's address (no IP pools here).
                        masquerade=action == "accept" and policy.get("nat") == "enable",
                    )
                )
        vip_order = list(self._by_name.get("firewall/vip", {}))
        ordered = sorted(dnats.values(), key=lambda d: vip_order.index(d.vip))
        return Ruleset(tuple(ordered), tuple(forwards))

    def _interfaces_of(self, policy: Entry, attribute: str) -> tuple[str, ...]:
        ports = [i["name"] for i in policy.get(attribute, [])]
        if not ports:
            raise _refuse(f"policy {policy['policyid']} has no {attribute}")
        linux = [self._linux(p, f"policy {policy['policyid']} {attribute}") for p in ports]
        if any(name is None for name in linux):
            return ()  # GUIDE-4: "any" matches every interface
        return tuple(name for name in linux if name is not None)


def _mapped_port(vip: str, extport: str, mappedport: str) -> str | None:
    """The DNAT's port: None keeps it (same port or same range), else the one mapped port."""
    if extport == mappedport:
        return None
    if "-" in extport or "-" in mappedport:
        # FortiOS maps ranges one to one (portmapping-type 1-to-1) or many to one (m-to-n);
        # nftables has no offset mapping, so only the same range or single ports translate.
        raise _refuse(f"VIP {vip!r} maps port range {extport} to {mappedport}")
    return mappedport


def translate(tables: Mapping[str, Sequence[Entry]], interfaces: Mapping[str, str]) -> Ruleset:
    """One VDOM's tables (path -> entries, as the store reads them) as a :class:`Ruleset`.

    ``interfaces`` maps FortiOS port names to Linux interface names. Raises the emulator's 501
    (:class:`FortiOSError`) for whatever no public source settles.
    """
    return _Translator(tables, interfaces).translate()


def tables_of(store: Store, vdom: str) -> dict[str, list[dict[str, Any]]]:
    """The tables :func:`translate` reads, from a store."""
    paths = ("firewall/address", "firewall/vip", "firewall/vipgrp", "firewall.service/custom",
             "firewall/policy")  # fmt: skip
    return {path: store.list(vdom, path) for path in paths}


def nft_set(items: Iterable[str]) -> str:
    """An nftables match value: one element as itself, several as an anonymous set."""
    values = [str(i) for i in items]
    return values[0] if len(values) == 1 else "{ " + ", ".join(values) + " }"


def _nft_names(items: Iterable[str]) -> str:
    return nft_set(f'"{i}"' for i in items)


def _nft_comment(text: str) -> str:
    # FortiOS names may hold any character; nft comments end at a quote and hold 128 bytes.
    return re.sub(r"[^A-Za-z0-9 _.,:/+=@()-]", "?", text)[:120]


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - an nftables file, not HTML
    )
    env.filters["nft_set"] = nft_set
    env.filters["nft_names"] = _nft_names
    env.filters["nft_comment"] = _nft_comment
    return env


def render(ruleset: Ruleset, table: str = TABLE) -> str:
    """The ruleset as an ``nft -f`` file that replaces ``table inet <table>`` atomically."""
    return (
        _environment()
        .get_template(TEMPLATE)
        .render(ruleset=ruleset, table=table, mark=MASQUERADE_MARK)
    )


class Applier(Protocol):
    """Loads a rendered ruleset into the kernel; raises :class:`ApplyError` when it cannot."""

    def apply(self, text: str) -> None:
        """Make ``text`` the kernel's ruleset for the emulator's table."""


class ApplyError(RuntimeError):
    """The kernel refused the ruleset (or nft could not run)."""


@dataclass
class NftApplier:
    """``nft -f`` in the emulator's own network namespace; the file is kept for reading."""

    path: Path
    nft: str = "nft"
    timeout: float = 20.0

    def apply(self, text: str) -> None:
        """Write the ruleset beside ``path`` and load it; ``path`` holds the last one loaded."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", dir=self.path.parent, prefix=self.path.name, suffix=".new", delete=False
        ) as handle:
            handle.write(text)
        candidate = Path(handle.name)
        try:
            done = subprocess.run(
                [self.nft, "-f", str(candidate)],
                capture_output=True, text=True, timeout=self.timeout, check=False,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as error:
            candidate.unlink(missing_ok=True)
            raise ApplyError(f"{self.nft} -f could not run: {error}") from error
        if done.returncode != 0:
            candidate.unlink(missing_ok=True)
            raise ApplyError((done.stderr or done.stdout).strip() or f"exit {done.returncode}")
        candidate.replace(self.path)


@dataclass
class Forwarding:
    """What ``--apply-nft`` turns on: a VDOM's objects translated and loaded after each change."""

    applier: Applier
    interfaces: Mapping[str, str]
    vdom: str = "root"

    def ruleset(self, store: Store) -> str:
        """The rendered ruleset for the store as it is (FortiOSError when it cannot be had)."""
        return render(translate(tables_of(store, self.vdom), self.interfaces))

    def sync(self, store: Store) -> None:
        """Make the kernel hold the store's meaning; FortiOSError (nothing loaded) otherwise."""
        text = self.ruleset(store)
        try:
            self.applier.apply(text)
        except ApplyError as error:
            # The emulator's own failure, in FortiOS's shape (HTTP 500, status error, the text in
            # cli_error) with no FortiOS code: no FortiGate fails this way.
            raise FortiOSError(
                500,
                None,
                f"fortigate-emulator: loading the forwarding rules failed, the change was rolled "
                f"back: {error}",
            ) from error


__all__ = [
    "MASQUERADE_MARK",
    "TABLE",
    "Applier",
    "ApplyError",
    "Dnat",
    "ForwardRule",
    "Forwarding",
    "NftApplier",
    "Ruleset",
    "parse_interface",
    "render",
    "tables_of",
    "translate",
]
