"""ZoneNetwork: libvirt modes, host addresses and bridges per zone."""

from __future__ import annotations

from typing import Any

import pulumi

from components.network import ZoneNetwork, ZoneNetworkArgs
from halab.model.roles import ZoneName
from halab.model.spec import load_spec
from halab.model.stackconfig import read_stack
from tests.conftest import Graph, build


def _spec(**zones: dict[str, Any]) -> Any:
    values = dict(read_stack("staging").values)
    values["zones"] = {**values["zones"], **zones}
    return load_spec(values, stack="staging")


def zone_args(spec: Any, zone: ZoneName) -> ZoneNetworkArgs:
    """The args HaWebLab gives a zone's network."""
    return ZoneNetworkArgs(
        network_name=f"{spec.lab_name}-{zone.value}",
        zone=spec.zones[zone],
        bridge=spec.plan.bridges[zone],
    )


def test_bridge_mode_attaches_to_an_existing_bridge(graph: Graph) -> None:
    spec = _spec(public={"cidr": "198.51.100.0/24", "mode": "bridge", "bridge": "br-wan"})
    build(lambda: ZoneNetwork("zone-public", zone_args(spec, ZoneName.PUBLIC)))
    (net,) = graph.of_type("libvirt:index/network:Network")
    assert net.inputs["mode"] == "bridge" and net.inputs["bridge"] == "br-wan"
    assert "addresses" not in net.inputs and "dhcp" not in net.inputs
    assert net.name == "zone-public-net"


def test_isolated_zone_with_host_address_gets_dns_but_no_dhcp(graph: Graph) -> None:
    spec = _spec()
    build(lambda: ZoneNetwork("zone-internal", zone_args(spec, ZoneName.INTERNAL)))
    (net,) = graph.of_type("libvirt:index/network:Network")
    assert net.inputs["name"] == "hwl-staging-internal"
    assert net.inputs["bridge"] == "hwl-staging-int"
    assert net.inputs["addresses"] == ["172.20.10.0/24"]
    assert net.inputs["dhcp"] == {"enabled": False}
    assert net.inputs["dns"] == {"enabled": True, "localOnly": True}


def test_bridge_names_fit_linux_limits_for_long_stack_names(graph: Graph) -> None:
    values = dict(read_stack("staging").values)
    spec = load_spec(values, stack="customer-acceptance-2026")
    names = {spec.plan.bridges[z] for z in ZoneName}
    assert len(names) == 3 and all(len(n) <= 15 for n in names)
    assert pulumi is not None
