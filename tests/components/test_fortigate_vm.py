"""``edge: fortigate-vm`` under Pulumi mocks: the FortiGate-VM, its disks and NICs, the config
drive, the wait for its API, and the FortiOS objects that wait for it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest

from halab.model.roles import ZoneName
from halab.model.spec import load_spec
from halab.model.stackconfig import read_stack
from tests.conftest import TEST_SSH_KEY, Graph, Registered

Program = Callable[..., Graph]
TOKEN = "0123456789abcdefABCDEF01234567"
COMMAND = "command:local:Command"


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "fortios.qcow2"
    path.write_bytes(b"QFI\xfb")
    return path


def run(program: Program, image: Path, **overrides: Any) -> Graph:
    return program(
        "dev",
        edge="fortigate-vm",
        fortigateImage=str(image),
        fortigateHost="",
        fortigateToken=TOKEN,
        **overrides,
    )


def children(graph: Graph, component: Registered) -> list[Registered]:
    return [r for r in graph.resources if r.parent == component.urn]


def test_the_vm_its_disks_and_its_nics(program: Program, graph: Graph, image: Path) -> None:
    run(program, image, fortigateVcpus=2, fortigateMemoryMib=3072)
    values = {**read_stack("dev").values, "sshPublicKeys": [TEST_SSH_KEY]}
    values.update(edge="fortigate-vm", fortigateImage=str(image), fortigateHost="")
    plan = load_spec(values, stack="dev", secrets_present=frozenset({"fortigateToken"})).plan
    assert plan.fortigate is not None

    (vm,) = graph.of_type("ha-web-lab:index:FortiGateVm")
    assert graph.by_urn(vm.parent).type == "ha-web-lab:index:HaWebLab"
    names = {r.name for r in children(graph, vm)}
    assert names == {
        "lab-fortigate-image",
        "lab-fortigate-config-drive-file",
        "lab-fortigate-config-drive",
        "lab-fortigate-root",
        "lab-fortigate-domain",
        "lab-fortigate-ready",
    }
    image_volume = graph.named("lab-fortigate-image").inputs
    assert image_volume["source"] == str(image) and image_volume["format"] == "qcow2"
    root = graph.named("lab-fortigate-root").inputs
    assert root["baseVolumeId"] == "lab-fortigate-image-id"

    domain = graph.named("lab-fortigate-domain")
    d = domain.inputs
    assert (d["name"], d["vcpu"], d["memory"]) == ("hwl-dev-fortigate", 2, 3072)
    assert d["cpu"] == {"mode": "host-passthrough"}
    drive = graph.named("lab-fortigate-config-drive").inputs
    assert drive["name"].endswith(".iso") and drive["format"] == "raw"
    # The root disk by volume; the drive by its file in the pool, so the provider makes it a
    # CD-ROM.
    assert d["disks"] == [
        {"volumeId": "lab-fortigate-root-id"},
        {"file": f"{plan.pool_path}/{drive['name']}"},
    ]
    # One NIC per leg, in leg order (port1 Public, port2 DMZ), each on its zone's network and
    # with the plan's MAC.
    assert d["networkInterfaces"] == [
        {"networkId": f"lab-zone-{leg.zone.value}-net-id", "mac": leg.mac}
        for leg in plan.fortigate.legs
    ]
    assert [leg.zone for leg in plan.fortigate.legs] == [ZoneName.PUBLIC, ZoneName.DMZ]
    assert graph.named("lab-fortigate-config-drive").urn in domain.dependencies


def test_the_config_drive_is_built_with_the_token_kept_secret(
    program: Program, graph: Graph, image: Path
) -> None:
    run(program, image)
    build = graph.named("lab-fortigate-config-drive-file")
    script = build.inputs["create"]
    assert "-volid config-2" in script and "HWL_DRIVE_FILE_0" in script
    assert TOKEN not in script and "create" not in build.secret_inputs
    # The files come in the environment, secret: the bootstrap config holds the token.
    assert "environment" in build.secret_inputs
    assert set(build.inputs["environment"]) == {"HWL_DRIVE_FILE_0", "HWL_DRIVE_FILE_1"}
    drive = graph.named("lab-fortigate-config-drive")
    assert drive.inputs["source"].endswith(f"/fortigate/{drive.inputs['name']}")
    assert build.urn in drive.dependencies
    # The ISO is removed with the resource: it holds the token.
    assert build.inputs["delete"] == f"rm -f {drive.inputs['source']}"
    for r in graph.resources:
        if TOKEN in str(r.inputs):
            assert r.secret_inputs, f"{r.name} holds the token in plain inputs"


def test_the_fortios_objects_wait_for_the_fortigate_to_answer(
    program: Program, graph: Graph, image: Path
) -> None:
    run(program, image)
    ready = graph.named("lab-fortigate-ready")
    assert ready.type == COMMAND
    assert graph.named("lab-fortigate-domain").urn in ready.dependencies
    assert "https://203.0.113.2/api/v2/monitor/system/status" in ready.inputs["create"]
    assert TOKEN not in ready.inputs["create"] and "environment" in ready.secret_inputs
    fortios = [r for r in graph.resources if r.type.startswith("fortios:")]
    assert {r.type for r in fortios} >= {
        "fortios:firewall/vip:Vip",
        "fortios:firewall/vipgrp:Vipgrp",
        "fortios:firewall/policy:Policy",
    }
    for r in fortios:
        assert ready.urn in r.dependencies, f"{r.name} does not wait for the FortiGate"
    # One provider, at the FortiGate-VM's WAN address, made once the wait is done.
    (provider,) = graph.of_type("pulumi:providers:fortios")
    assert provider.inputs["hostname"] == "203.0.113.2"
    assert ready.urn in provider.dependencies
    assert all(r.provider.startswith(provider.urn) for r in fortios)
    # The public IP answers once the FortiGate forwards it: the tier gate waits for the policy.
    (policy,) = graph.of_type("fortios:firewall/policy:Policy")
    assert policy.urn in graph.named("lab-gate-through-vip").dependencies


def test_a_token_fortios_would_not_take_stops_before_any_resource(
    program: Program, graph: Graph, image: Path
) -> None:
    with pytest.raises(pulumi.RunError, match=r"ha-web-lab:fortigateToken = .*31 characters"):
        program(
            "dev",
            edge="fortigate-vm",
            fortigateImage=str(image),
            fortigateHost="",
            fortigateToken=TOKEN + "x",
        )
    assert graph.resources == []


def test_a_missing_image_stops_before_any_resource(program: Program, graph: Graph) -> None:
    with pytest.raises(
        pulumi.RunError, match=r"ha-web-lab:fortigateImage = '/nonexistent.qcow2': no such file"
    ):
        program(
            "dev",
            edge="fortigate-vm",
            fortigateImage="/nonexistent.qcow2",
            fortigateHost="",
            fortigateToken=TOKEN,
        )
    assert graph.resources == []
