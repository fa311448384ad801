"""The lab's wiring plan, computed from a spec (no root needed)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface

import pytest

from halab.model.roles import ZoneName
from halab.nslab import topology
from halab.nslab.lab import lab_spec, lab_values


def _plan(stack: str) -> topology.TopologyPlan:
    values, secrets = lab_values(stack)
    return topology.plan(lab_spec(stack, values, secrets))


def test_dev_plan_names_and_addresses() -> None:
    topo = _plan("dev")
    assert topo.switch == "hwl-dev-sw"
    assert topo.namespaces == (
        "hwl-dev-sw",
        "hwl-dev-lb-1",
        "hwl-dev-lb-2",
        "hwl-dev-web-1",
        "hwl-dev-web-2",
        "hwl-dev-edge",
        "hwl-dev-client",
    )
    lb1 = topo.node("lb-1")
    assert [(leg.ifname, leg.interface) for leg in lb1.legs] == [
        ("dmz", IPv4Interface("10.0.1.11/24")),
        ("internal", IPv4Interface("192.168.10.2/24")),
    ]
    assert lb1.default_gateway == IPv4Address("10.0.1.1")
    edge = topo.node("edge")
    assert {leg.ifname: str(leg.interface.ip) for leg in edge.legs} == {
        "public": "203.0.113.10",
        "dmz": "10.0.1.1",
    }
    client = topo.node("client")
    assert client.legs[0].interface == IPv4Interface("203.0.113.1/24")
    # The client routes everything to the edge, so the firewall (not a missing route) is what
    # keeps it away from the DMZ and the internal zone.
    assert client.default_gateway == IPv4Address("203.0.113.10")
    # The hypervisor's side of the internal zone lives on the switch's bridge.
    assert topo.bridge_addresses == {ZoneName.INTERNAL: IPv4Interface("192.168.10.1/24")}


@pytest.mark.parametrize("stack", ["dev", "staging", "tutorial"])
def test_interface_names_fit_the_kernel_limit(stack: str) -> None:
    topo = _plan(stack)
    names = [leg.port for n in topo.nodes for leg in n.legs] + list(topo.bridges.values())
    assert all(len(n) <= 15 for n in names)
    assert len(set(names)) == len(names)


def test_reserved_host_names_are_refused() -> None:
    values, secrets = lab_values("dev")
    hosts = [*values["hosts"], {"name": "client", "role": "web"}]
    spec = lab_spec("dev", {**values, "hosts": hosts}, secrets)
    with pytest.raises(ValueError, match="reserved"):
        topology.plan(spec)
