"""The other networks on the hypervisor a lab goes to: another lab's, libvirt's ``default``, a
user's own. ``make up`` asks the libvirtd for them before it makes anything, and refuses a stack
whose zones would take a bridge name or an address range one of them already has: libvirt would
refuse the second network minutes into ``pulumi up``, or worse, two labs would route each
other's addresses.

What a network holds comes from ``virsh net-dumpxml`` (libvirt's network XML: ``<bridge
name=.../>`` and ``<ip address=... prefix=...|netmask=...>``), read with the standard library's
XML parser.
"""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from ipaddress import IPv4Network

from halab.model.errors import ConfigError
from halab.model.spec import LabSpec, NetworkMode
from halab.plumbing.virsh import Virsh

#: How long one ``virsh`` question may take.
VIRSH_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class LibvirtNetwork:
    """One network a libvirtd has: its name, its bridge and the ranges the host has on it."""

    name: str
    bridge: str | None
    ranges: tuple[IPv4Network, ...]


def parse_network_xml(text: str) -> LibvirtNetwork:
    """A network from its ``virsh net-dumpxml`` XML (IPv4 ranges only)."""
    root = ET.fromstring(text)  # noqa: S314 - the XML of the user's own libvirtd
    bridge = root.find("bridge")
    ranges = []
    for ip in root.findall("ip"):
        if ip.get("family", "ipv4") != "ipv4" or not ip.get("address"):
            continue
        mask = ip.get("prefix") or ip.get("netmask") or "32"
        ranges.append(IPv4Network(f"{ip.get('address')}/{mask}", strict=False))
    return LibvirtNetwork(
        name=root.findtext("name", default=""),
        bridge=bridge.get("name") if bridge is not None else None,
        ranges=tuple(ranges),
    )


def clashes(spec: LabSpec, networks: list[LibvirtNetwork]) -> list[ConfigError]:
    """Every zone of ``spec`` whose bridge or range another network already has (the lab's own
    networks, from an earlier ``up`` of the same stack, are no clash)."""
    found = []
    own = f"{spec.lab_name}-"
    for zone_name, zone in spec.zones.items():
        # A zone in mode bridge joins a bridge the user made for it: sharing it is the point.
        bridge = spec.plan.bridges[zone_name] if zone.mode is not NetworkMode.BRIDGE else None
        for other in networks:
            if other.name.startswith(own):
                continue
            if bridge is not None and other.bridge == bridge:
                found.append(
                    ConfigError(
                        f"zones.{zone_name.value}",
                        bridge,
                        f"libvirt network {other.name!r} on this hypervisor already has bridge "
                        f"{bridge}: another lab's? Pick another stack name, or set "
                        f"zones.{zone_name.value}.bridge",
                    )
                )
            overlap = next((r for r in other.ranges if r.overlaps(zone.cidr)), None)
            if overlap is not None:
                found.append(
                    ConfigError(
                        f"zones.{zone_name.value}.cidr",
                        str(zone.cidr),
                        f"overlaps {overlap} of libvirt network {other.name!r} (bridge "
                        f"{other.bridge}) on this hypervisor: give this lab its own range",
                    )
                )
    return found


def networks_of(uri: str) -> list[LibvirtNetwork]:
    """Every network (active or not) of the libvirtd at ``uri``."""
    virsh = Virsh(uri, timeout=VIRSH_TIMEOUT_S)
    try:
        names = virsh("net-list", "--all", "--name").split()
        return [parse_network_xml(virsh("net-dumpxml", name)) for name in names]
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"virsh {' '.join(exc.cmd[4:])}: {exc.stderr.strip()}") from None


def refuse_clashes(spec: LabSpec, uri: str) -> None:
    """Raise the first clash of ``spec`` with the networks at ``uri`` (one line, both named)."""
    found = clashes(spec, networks_of(uri))
    if found:
        raise found[0]
