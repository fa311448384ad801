"""FortiGateEdge with other ports and restricted sources."""

from __future__ import annotations

from components.edge import FortiGateEdge, FortiGateEdgeArgs
from halab.model.spec import load_spec
from halab.model.stackconfig import read_stack
from tests.conftest import Graph, build


def test_other_ports_get_custom_services_and_sources_get_address_objects(graph: Graph) -> None:
    values = {
        **read_stack("dev").values,
        "edgePorts": [8080, 443],
        "edgeAllowedSources": ["198.51.100.0/24", "192.0.2.7/32"],
        "edgeSourceNat": True,
    }
    spec = load_spec(values, stack="dev", secrets_present=frozenset({"fortigateToken"}))
    build(lambda: FortiGateEdge("edge", FortiGateEdgeArgs(spec=spec)))
    vips = {r.inputs["extport"]: r.inputs for r in graph.of_type("fortios:firewall/vip:Vip")}
    assert set(vips) == {"8080", "443"}
    (service,) = graph.of_type("fortios:firewall/service/custom:Custom")
    assert service.inputs["tcpPortrange"] == "8080" and service.inputs["name"] == "hwl-dev-tcp-8080"
    addresses = sorted(
        r.inputs["subnet"] for r in graph.of_type("fortios:firewall/address:Address")
    )
    assert addresses == ["192.0.2.7/32", "198.51.100.0/24"]
    (policy,) = graph.of_type("fortios:firewall/policy:Policy")
    assert sorted(s["name"] for s in policy.inputs["services"]) == ["HTTPS", "hwl-dev-tcp-8080"]
    assert sorted(s["name"] for s in policy.inputs["srcaddrs"]) == [
        "hwl-dev-src-192.0.2.7_32",
        "hwl-dev-src-198.51.100.0_24",
    ]
    assert policy.inputs["nat"] == "enable"
    assert service.urn in policy.dependencies
