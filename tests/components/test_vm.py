"""LabVm: disk overlay, content-named seed, domain with direct kernel boot and emulation."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pytest
import yaml

from components.storage import LabStorage, LabStorageArgs
from components.vm import LabVm, LabVmArgs, canonical_cmdlines
from halab.model.roles import ZoneName
from halab.model.spec import load_spec
from halab.model.stackconfig import read_stack
from halab.render.hosts import render_host
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
    host = spec.plan.host("web-2")

    def program() -> None:
        storage = LabStorage(
            "storage",
            LabStorageArgs(lab_name=spec.lab_name, pool_path=spec.plan.pool_path, vm=spec.vm),
        )
        ids = {z: pulumi.Output.from_input(f"net-{z.value}") for z in ZoneName}
        seed = pulumi.Output.from_input(render_host(spec, host))
        LabVm(
            "web-2",
            LabVmArgs(
                lab_name=spec.lab_name,
                vm=spec.vm,
                readiness=spec.readiness,
                host=host,
                seed=seed,
                storage=storage,
                network_ids=ids,
            ),
        )

    build(program)
    domain = graph.named("web-2-domain").inputs
    assert domain["type"] == "qemu" and "cpu" not in domain
    assert domain["kernel"] == "storage-kernel-id" and domain["initrd"] == "storage-initrd-id"
    # The shape the provider reads back (keys, then the bare words), so no diff on refresh.
    assert domain["cmdlines"] == [
        {"console": "ttyS0", "net.ifnames": "0", "root": "/dev/vda"},
        {"_": "rw"},
    ]
    # VNC without a listener: the provider's default SPICE is missing from RHEL 9's QEMU.
    assert domain["graphics"] == {"type": "vnc", "listenType": "none"}
    assert domain["networkInterfaces"] == [{"networkId": "net-internal", "mac": host.legs[0].mac}]
    assert domain["disks"] == [{"volumeId": "web-2-root-id"}]
    root = graph.named("web-2-root").inputs
    assert root["baseVolumeId"] == "storage-base-image-id" and root["format"] == "qcow2"
    seed = graph.named("web-2-seed").inputs
    user = yaml.safe_load(seed["userData"])
    assert "packages" not in user and "package_update" not in user
    instance_id = yaml.safe_load(seed["metaData"])["instance-id"]
    assert seed["name"] == f"hwl-e2e-web-2-seed-{instance_id[-12:]}.iso"
    assert root["name"] == f"hwl-e2e-web-2-root-{instance_id[-12:]}.qcow2"
    pool = graph.named("storage-pool").inputs
    # target.path: the top-level path is deprecated (a warning on every preview).
    assert pool["target"] == {"path": "/var/lib/libvirt/images/hwl-e2e"} and "path" not in pool
    assert pool["type"] == "dir"


@pytest.mark.parametrize("readiness", [True, False])
def test_a_new_network_config_is_a_new_instance(readiness: bool) -> None:
    values = {**read_stack("staging").values, "readiness": readiness}
    spec = load_spec(values, stack="staging")
    hosts = [dict(h) for h in values["hosts"]]
    web1 = next(h for h in hosts if h["name"] == "web-1")
    web1["addresses"] = {"internal": "172.20.10.99"}
    other = load_spec({**values, "hosts": hosts}, stack="staging")
    a, b = (render_host(s, s.plan.host("web-1")) for s in (spec, other))
    assert a.instance_id != b.instance_id
    # Only that host: web-2 keeps its instance.
    assert render_host(spec, spec.plan.host("web-2")) == render_host(
        other, other.plan.host("web-2")
    )


def test_user_data_changes_are_a_new_instance_only_without_gates() -> None:
    """With gates, a running VM gets new role files over SSH; without them only a new VM does."""
    for readiness, new_instance in ((True, False), (False, True)):
        values = {**read_stack("staging").values, "readiness": readiness}
        spec = load_spec(values, stack="staging")
        other = load_spec({**values, "healthCheckPath": "/ready"}, stack="staging")
        a = render_host(spec, spec.plan.host("lb-1"))
        b = render_host(other, other.plan.host("lb-1"))
        assert a.user_data != b.user_data
        assert (a.instance_id != b.instance_id) is new_instance


@pytest.mark.parametrize(
    ("line", "shape"),
    [
        (
            "root=/dev/vda rw console=ttyS0 net.ifnames=0",
            [{"console": "ttyS0", "net.ifnames": "0", "root": "/dev/vda"}, {"_": "rw"}],
        ),
        ("quiet ro", [{"_": "quiet ro"}]),
        ("console=ttyS0 console=tty0 a=1", [{"a": "1", "console": "tty0"}, {"console": "ttyS0"}]),
        ("", []),
    ],
)
def test_cmdlines_take_the_shape_the_provider_reads_back(
    line: str, shape: list[dict[str, str]]
) -> None:
    assert canonical_cmdlines(line) == shape
    # Nothing lost or added: the same words the provider joins (sorted) on create.
    words = [
        word
        for part in shape
        for key, value in part.items()
        for word in (value.split() if key == "_" else [f"{key}={value}"])
    ]
    assert sorted(words) == sorted(line.split())
