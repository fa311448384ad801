"""The lab's picture says what the spec says: every host, address, zone, the VIP, the edge."""

from __future__ import annotations

from pathlib import Path

import pytest

from halab.model.roles import Role
from halab.model.stackconfig import read_stack
from halab.render.picture import lab_graph, write_picture


@pytest.mark.parametrize("stack", ["staging", "dev", "e2e", "tutorial"])
def test_every_address_of_the_plan_is_in_the_picture(stack: str) -> None:
    spec = read_stack(stack).spec(offline=True)
    source = lab_graph(spec).source
    for host in spec.plan.hosts:
        assert f"{host.name}\n{host.role.value}" in source
        for leg in host.legs:
            assert f"{leg.ifname} {leg.address}" in source
    for name, zone in spec.zones.items():
        assert f"{name.value} {zone.cidr}" in source
    assert f"VIP {spec.vip_address}" in source
    if spec.edge.kind.value != "none":
        assert f"public IP {spec.public_address}" in source
    owner = {"linux": "(edge)", "fortigate": "(the FortiGate)"}.get(spec.edge.kind.value)
    assert owner is None or owner in source


def test_the_vip_holder_is_marked_when_known() -> None:
    spec = read_stack("staging").spec(offline=True)
    lbs = [h.name for h in spec.plan.hosts_with_role(Role.LB)]
    assert "held by" not in lab_graph(spec).source
    source = lab_graph(spec, vip_holder=lbs[1]).source
    assert f"held by {lbs[1]}" in source
    assert f'vip -- "{lbs[1]}" [label=MASTER style=bold]' in source


def test_svg_and_dot_are_written(tmp_path: Path) -> None:
    # graphviz is in scripts/apt-packages.txt: the project installs `dot`.
    svg = write_picture(read_stack("staging").spec(offline=True), tmp_path)
    assert svg == tmp_path / "lab.svg"
    assert "<svg" in svg.read_text() and (tmp_path / "lab.dot").exists()
