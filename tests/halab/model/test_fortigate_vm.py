"""``edge: fortigate-vm``: its keys, what it refuses (key and value named), its derived plan."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from halab.model.errors import ConfigError
from halab.model.roles import Role, ZoneName
from halab.model.sections import EdgeKind
from halab.model.spec import LabSpec, fortigate_vm_token_problem, load_spec
from tests.halab.model.test_spec import base, zones

TOKEN = "a" * 30


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "fortios.qcow2"
    path.write_bytes(b"QFI\xfb")
    return path


def vm_values(image: Path, **overrides: Any) -> dict[str, Any]:
    """The dev stack (a FortiGate edge) with the stack's own FortiGate-VM instead."""
    values = base(edge="fortigate-vm", fortigateImage=str(image))
    values.pop("fortigateHost")
    return {**values, **overrides}


def vm_spec(image: Path, **overrides: Any) -> LabSpec:
    return load_spec(
        vm_values(image, **overrides), stack="dev", secrets_present=frozenset({"fortigateToken"})
    )


def refused(image: Path, **overrides: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        vm_spec(image, **overrides)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(f"ha-web-lab:{info.value.key} = ")
    return info.value


def test_the_fortigate_is_planned_like_the_linux_edge_with_its_own_wan_address(
    image: Path,
) -> None:
    spec = vm_spec(image)
    assert spec.edge.kind is EdgeKind.FORTIGATE_VM
    fortigate = spec.plan.fortigate
    assert fortigate is not None and fortigate.role is Role.EDGE
    # WAN first (port1), then the DMZ gateway the LBs route through (port2).
    assert [(leg.zone, leg.ifname, str(leg.address)) for leg in fortigate.legs] == [
        (ZoneName.PUBLIC, "port1", "203.0.113.2"),
        (ZoneName.DMZ, "port2", "10.0.1.1"),
    ]
    assert fortigate.default_gateway == IPv4Address("203.0.113.1")
    assert (fortigate.vcpus, fortigate.memory_mib) == (1, 2048)
    # The provider's address: derived from the spec, static, known before anything exists.
    assert spec.fortigate_api_host == "203.0.113.2"
    # No Linux VM for it: the renderer's hosts stay the web nodes and LBs.
    assert [h.name for h in spec.plan.hosts] == ["lb-1", "lb-2", "web-1", "web-2"]
    assert fortigate in spec.plan.machines
    claims = {(c.key, str(c.address), c.device) for c in spec.plan.address_claims}
    assert ("fortigateWanAddress", "203.0.113.2", "the FortiGate") in claims
    assert ("publicIp", "203.0.113.10", "the FortiGate") in claims


def test_other_ports_addresses_and_size_follow_their_keys(image: Path) -> None:
    spec = vm_spec(
        image,
        fortigateWanAddress="203.0.113.5",
        fortigateWanInterface="port3",
        fortigateDmzInterface="port4",
        fortigateVcpus=2,
        fortigateMemoryMib=4096,
    )
    fortigate = spec.plan.fortigate
    assert fortigate is not None
    assert [(leg.ifname, str(leg.address)) for leg in fortigate.legs] == [
        ("port3", "203.0.113.5"),
        ("port4", "10.0.1.1"),
    ]
    assert (fortigate.vcpus, fortigate.memory_mib) == (2, 4096)
    assert spec.fortigate_api_host == "203.0.113.5"
    # fortigateHost is derived, so when given it must be that address.
    assert vm_spec(image, fortigateHost="203.0.113.2").fortigate_api_host == "203.0.113.2"


def test_other_edges_have_no_fortigate_vm() -> None:
    spec = load_spec(base(), stack="dev", secrets_present=frozenset({"fortigateToken"}))
    assert spec.plan.fortigate is None
    assert spec.fortigate_api_host == "203.0.113.2"  # the dev stack's fortigateHost


@pytest.mark.parametrize(
    ("overrides", "key", "value_text", "reason"),
    [
        ({"fortigateImage": ""}, "fortigateImage", "''", "pulumi config set fortigateImage"),
        ({"fortigateImage": "/nonexistent/fortios.qcow2"}, "fortigateImage",
         "/nonexistent/fortios.qcow2", "no such file"),
        ({"fortigateLicenseFile": "/nonexistent/FGVM.lic"}, "fortigateLicenseFile",
         "/nonexistent/FGVM.lic", "no such file"),
        ({"fortigateHost": "203.0.113.3"}, "fortigateHost", "203.0.113.3", "203.0.113.2"),
        ({"fortigateWanAddress": "203.0.113.10"}, "fortigateWanAddress", "203.0.113.10",
         "equals publicIp"),
        ({"fortigateWanAddress": "198.51.100.2"}, "fortigateWanAddress", "198.51.100.2",
         "outside 203.0.113.0/24"),
        ({"fortigateWanAddress": "203.0.113.1"}, "fortigateWanAddress", "203.0.113.1",
         "already used by zones.public.hostAddress"),
        ({"fortigateMemoryMib": 1024}, "fortigateMemoryMib", "1024", "2048"),
        ({"fortigateVcpus": 0}, "fortigateVcpus", "0", "1"),
        ({"fortigateWanInterface": "port 1"}, "fortigateWanInterface", "port 1",
         "not a FortiOS interface name"),
        # The factory certificate is self-signed: verify it with a CA, or say insecure.
        ({"fortigateInsecure": False}, "fortigateInsecure", "False", "CA"),
        ({"zones": zones(public={"hostAddress": None})}, "zones.public.hostAddress", "(not set)",
         "through the Public zone"),
        ({"zones": zones(dmz={"gateway": None})}, "zones.dmz.gateway", "(not set)",
         "the FortiGate-VM needs a DMZ gateway"),
        ({"hosts": [*base()["hosts"], {"name": "fortigate", "role": "web"}]}, "hosts",
         "fortigate", "taken by the FortiGate-VM"),
    ],
)  # fmt: skip
def test_refused_with_the_key_and_the_value(
    image: Path, overrides: dict[str, Any], key: str, value_text: str, reason: str
) -> None:
    err = refused(image, **overrides)
    assert err.key == key, str(err)
    assert f"= {value_text}" in str(err) or value_text in str(err.value), str(err)
    assert reason in err.reason, str(err)


def test_a_licence_that_exists_is_taken(image: Path, tmp_path: Path) -> None:
    licence = tmp_path / "FGVM01.lic"
    licence.write_text("-----BEGIN FGT VM LICENSE-----\nx\n-----END FGT VM LICENSE-----\n")
    assert vm_spec(image, fortigateLicenseFile=str(licence)).edge.fortigate.license_file == str(
        licence
    )


def test_the_token_must_be_set(image: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_spec(vm_values(image), stack="dev")
    assert info.value.key == "fortigateToken"
    assert "edge is 'fortigate-vm'" in info.value.reason


@pytest.mark.parametrize("token", ["a" * 29, "a" * 31, "a" * 29 + "!", ""])
def test_a_token_fortios_would_not_take_in_plain_text_is_refused_without_showing_it(
    token: str,
) -> None:
    problem = fortigate_vm_token_problem(token)
    assert problem is not None and problem.key == "fortigateToken"
    assert f"{len(token)} characters" in str(problem)
    assert (token or "\0") not in str(problem)
    assert fortigate_vm_token_problem(TOKEN) is None
    assert fortigate_vm_token_problem("0123456789abcdefABCDEF01234567") is None
