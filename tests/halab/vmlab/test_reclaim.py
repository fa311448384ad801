"""Leftovers: what a lab has on the host that its state does not know (nothing is run here)."""

from __future__ import annotations

from halab.vmlab.reclaim import Inventory, in_state, leftovers

DEPLOYMENT = {
    "resources": [
        {"type": "libvirt:index/domain:Domain", "outputs": {"name": "hwl-e2e-web-1"}},
        {"type": "libvirt:index/volume:Volume", "outputs": {"name": "hwl-e2e-web-1-root-ab.qcow2"}},
        {"type": "libvirt:index/cloudInitDisk:CloudInitDisk", "outputs": {"name": "hwl-e2e-s.iso"}},
        {"type": "libvirt:index/network:Network", "outputs": {"name": "hwl-e2e-dmz"}},
        {"type": "libvirt:index/pool:Pool", "outputs": {"name": "hwl-e2e"}},
        {"type": "command:remote:Command", "outputs": {"stdout": "ok"}},
        {"type": "pulumi:pulumi:Stack"},
    ]
}


def _host(**names: list[str]) -> Inventory:
    found = Inventory()
    for kind, values in names.items():
        for name in values:
            found.add(kind, name)
    return found


def test_state_inventory_by_kind() -> None:
    known = in_state(DEPLOYMENT)
    assert known.of("domain") == {"hwl-e2e-web-1"}
    assert known.of("volume") == {"hwl-e2e-web-1-root-ab.qcow2", "hwl-e2e-s.iso"}
    assert known.of("pool") == {"hwl-e2e"}


def test_only_the_labs_own_unknown_objects_are_leftovers() -> None:
    host = _host(
        domain=["hwl-e2e-web-1", "hwl-e2e-web-3", "hwl-other-web-1", "someone-elses-vm"],
        volume=["hwl-e2e-web-1-root-ab.qcow2", "hwl-e2e-web-3-root-cd.qcow2", "hwl-e2e-s.iso"],
        network=["hwl-e2e-dmz", "default"],
        pool=["hwl-e2e", "default"],
    )
    assert leftovers("hwl-e2e", host, in_state(DEPLOYMENT)) == [
        ("domain", "hwl-e2e-web-3"),
        ("volume", "hwl-e2e-web-3-root-cd.qcow2"),
    ]


def test_an_empty_state_leaves_the_whole_lab_to_remove_pool_last() -> None:
    host = _host(domain=["hwl-e2e-lb-1"], volume=["hwl-e2e-base.qcow2"], pool=["hwl-e2e"])
    assert leftovers("hwl-e2e", host, Inventory()) == [
        ("domain", "hwl-e2e-lb-1"),
        ("volume", "hwl-e2e-base.qcow2"),
        ("pool", "hwl-e2e"),
    ]
    # A lab whose name another lab's starts with is not taken for it.
    assert leftovers("hwl-e2e", _host(domain=["hwl-e2e2-lb-1"]), Inventory()) == []
