"""The FortiGate stand-in's plan from a spec, and what it reads back (no namespace, no root)."""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any

import pytest

from halab.e2e.standin import (
    IFNAME_MAX,
    FortiGateStandIn,
    StandInError,
    StandInPlan,
    dnat_ports,
    standin_plan,
)
from halab.model.roles import ZoneName
from halab.model.spec import LabSpec
from halab.model.stackconfig import StackConfig, read_stack, stack_spec


def _dev(**changes: Any) -> LabSpec:
    """The dev stack's spec with some values changed (zones: the dev zones, updated)."""
    cfg = read_stack("dev")
    values = dict(cfg.values)
    zones = {k: dict(v) for k, v in values["zones"].items()}
    for zone, update in changes.pop("zones", {}).items():
        zones[zone].update(update)
    values["zones"] = zones
    values.update(changes)
    return StackConfig("dev", values, cfg.secrets_present).spec(offline=True)


def test_the_dev_stack_s_stand_in_plays_its_fortigate_on_its_bridges() -> None:
    spec = stack_spec("dev")
    plan = standin_plan(spec, Path("/run/x"))
    assert plan.netns == "hwl-dev-fortigate"
    assert (plan.listen, plan.port, plan.hostname) == (
        IPv4Address("203.0.113.2"),
        443,
        "203.0.113.2",
    )
    # port1 on the public bridge: fortigateHost and the public IP; port2 on the DMZ's: its gateway.
    assert (plan.wan.fortios, plan.wan.zone, plan.wan.bridge) == (
        "port1", ZoneName.PUBLIC, spec.plan.bridges[ZoneName.PUBLIC],
    )  # fmt: skip
    assert plan.wan.addresses == (
        IPv4Interface("203.0.113.2/24"),
        IPv4Interface("203.0.113.10/24"),
    )
    assert (plan.dmz.fortios, plan.dmz.bridge) == ("port2", spec.plan.bridges[ZoneName.DMZ])
    assert plan.dmz.addresses == (IPv4Interface("10.0.1.1/24"),)
    # The bridge-side ends: valid names, distinct, named after the lab (the final check sees
    # any that is left).
    outer = [p.outer for p in plan.ports]
    assert len(set(outer)) == 2
    assert all(len(n) <= IFNAME_MAX and n.startswith("hwl-dev-") for n in outer)
    assert (plan.vip, plan.object_prefix) == (IPv4Address("10.0.1.100"), "hwl-dev-")
    assert (plan.ca_file, plan.token_file) == (
        Path("/run/x/fortigate-tls/ca.pem"),
        Path("/run/x/fortigate-tls/token"),
    )


def test_the_emulator_forwards_by_what_it_was_told_on_the_stand_in_s_ports() -> None:
    argv = standin_plan(stack_spec("dev"), Path("/f")).argv()
    assert argv[1:4] == ["-m", "halab", "fortigate-emulator"]
    assert argv[argv.index("--listen") + 1] == "203.0.113.2:443"
    assert argv[argv.index("--state") + 1] == "/f/fortigate.json"
    assert {"--interface=any", "--interface=port1=port1", "--interface=port2=port2"} <= set(argv)
    assert argv[-1] == "--apply-nft"


def test_a_port_in_fortigate_host_is_where_the_emulator_listens() -> None:
    plan = standin_plan(_dev(fortigateHost="203.0.113.2:8443"), Path("/x"))
    assert (plan.port, plan.hostname) == (8443, "203.0.113.2:8443")


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"fortigateHost": "198.51.100.2"}, "free address of the public zone"),
        ({"fortigateHost": "203.0.113.10"}, "free address of the public zone"),  # the public IP
        ({"fortigateHost": "fgt.example"}, "IPv4 address"),
        ({"zones": {"dmz": {"hostAddress": "10.0.1.1", "gateway": None}}}, "layer-2 segment"),
    ],
)
def test_a_stand_in_that_cannot_be_made_is_refused(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(StandInError, match=says):
        standin_plan(_dev(**changes), Path("/x"))


def test_a_linux_edge_has_no_fortigate_to_play() -> None:
    with pytest.raises(StandInError, match="not fortigate"):
        standin_plan(stack_spec("e2e"), Path("/x"))


RULESET = """table inet fortigate {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "port1" ip daddr 203.0.113.10 tcp dport 80 dnat ip to 10.0.1.100 comment "VIP hwl-dev-80"
		iifname "port1" ip daddr 203.0.113.10 tcp dport 443 dnat ip to 10.0.1.100 comment "VIP hwl-dev-443"
		iifname "port1" ip daddr 203.0.113.11 tcp dport 8080 dnat ip to 10.0.1.1000:80
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct status dnat ct original ip daddr 203.0.113.10 ip daddr 10.0.1.100 tcp dport { 80, 443 } accept
	}
}
"""  # noqa: E501 - nft's own lines


def test_dnat_ports_are_the_ports_translated_to_the_vip() -> None:
    assert dnat_ports(RULESET, IPv4Address("10.0.1.100")) == {80, 443}
    assert dnat_ports(RULESET, IPv4Address("10.0.1.10")) == set()
    assert dnat_ports("table inet fortigate {\n}\n", IPv4Address("10.0.1.100")) == set()


def _plan(folder: Path) -> StandInPlan:
    return standin_plan(stack_spec("dev"), folder)


def test_the_lab_s_objects_are_read_from_the_emulator_s_state(tmp_path: Path) -> None:
    standin = FortiGateStandIn(_plan(tmp_path))
    assert standin.objects() == {}  # no state yet
    state = {
        "vdoms": {
            "root": {
                "firewall/vip": [{"name": "hwl-dev-80"}, {"name": "other-80"}],
                "firewall/policy": [{"policyid": 1000, "name": "hwl-dev-inbound"}],
                "firewall.service/custom": [{"name": "ALL"}],
            }
        }
    }
    (tmp_path / "fortigate.json").write_text(json.dumps(state))
    assert standin.objects() == {
        "firewall/vip": ["hwl-dev-80"],
        "firewall/policy": ["hwl-dev-inbound"],
    }
