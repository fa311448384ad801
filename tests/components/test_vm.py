"""LabVm: disk overlay, content-named seed, domain with direct kernel boot and emulation."""

from __future__ import annotations

from pathlib import Path

import pulumi
import yaml

from components.storage import LabStorage, LabStorageArgs
from components.vm import LabVm, LabVmArgs
from halab.render import render_host
from halab.spec import ZoneName, load_spec
from halab.stackconfig import read_stack
from tests.conftest import Graph, build


def test_direct_kernel_boot_under_emulation(graph: Graph, tmp_path: Path) -> None:
    kernel, initrd, image = tmp_path / "vmlinuz", tmp_path / "initrd.img", tmp_path / "disk.qcow2"
    for f in (kernel, initrd, image):
        f.write_bytes(b"x")
    values = {
        **read_stack("staging").values,
        "domainType": "qemu",
        "baseImage": str(image),
        "kernel": str(kernel),
        "initrd": str(initrd),
        "installPackages": False,
    }
    spec = load_spec(values, stack="e2e")
    host = spec.host("web-2")

    def program() -> None:
        storage = LabStorage("storage", LabStorageArgs(spec))
        ids = {z: pulumi.Output.from_input(f"net-{z.value}") for z in ZoneName}
        LabVm(
            "web-2",
            LabVmArgs(spec, host, pulumi.Output.from_input(render_host(spec, host)), storage, ids),
        )

    build(program)
    domain = graph.named("web-2-domain").inputs
    assert domain["type"] == "qemu" and "cpu" not in domain
    assert domain["kernel"] == "storage-kernel-id" and domain["initrd"] == "storage-initrd-id"
    assert domain["cmdlines"] == [
        {"root": "/dev/vda"},
        {"_": "rw"},
        {"console": "ttyS0"},
        {"net.ifnames": "0"},
    ]
    assert domain["networkInterfaces"] == [{"networkId": "net-internal", "mac": host.legs[0].mac}]
    assert domain["disks"] == [{"volumeId": "web-2-root-id"}]
    root = graph.named("web-2-root").inputs
    assert root["baseVolumeId"] == "storage-base-image-id" and root["format"] == "qcow2"
    seed = graph.named("web-2-seed").inputs
    user = yaml.safe_load(seed["userData"])
    assert "packages" not in user and "package_update" not in user
    instance_id = yaml.safe_load(seed["metaData"])["instance-id"]
    assert seed["name"] == f"hwl-e2e-web-2-seed-{instance_id[-12:]}.iso"
    pool = graph.named("storage-pool").inputs
    assert pool == {
        "name": "hwl-e2e",
        "type": "dir",
        "path": "/var/lib/libvirt/images/hwl-e2e",
        "__defaults": [],
    } or (pool["path"] == "/var/lib/libvirt/images/hwl-e2e" and pool["type"] == "dir")


def test_changed_config_is_a_new_seed_name() -> None:
    spec = read_stack("staging").spec()
    other = load_spec(
        {**read_stack("staging").values, "healthCheckPath": "/ready"}, stack="staging"
    )
    a = render_host(spec, spec.host("web-1"))
    b = render_host(other, other.host("web-1"))
    assert a.instance_id != b.instance_id
    # Only what the config touches changes: another web node's seed is the same.
    assert (
        render_host(spec, spec.host("lb-1")).instance_id
        != render_host(other, other.host("lb-1")).instance_id
    )
